"""Benchmark section ``phonetic``: cost of the phonetic audio front end, in × real time.

On the audio of ``../shared/data/German_20s.mp4`` (20 s, German) and ``Obama_5s.wav`` (5 s,
English), each played once:

- ``decode``: PocketSphinx's phone loop alone (:func:`~talkstudio.core.stage1.phonetic.phone_segments`,
  its cache emptied before every repetition);
- ``features``: decode + the per-frame rows (:func:`phonetic_features`);
- ``stage 1``: :func:`~talkstudio.core.stage1.infer.predict` on the ``phonetic`` and the
  ``mel+phonetic`` front ends, and on ``mel`` for comparison: features + free-running decoding of
  an untrained ``preview``-sized model (weights do not change the cost), phone cache emptied;
- ``stage 1, phones cached``: the same clip driven again (the studio's case when only the
  edits change).

Everything runs on one thread: torch's (``$TALKSTUDIO_BENCH_THREADS``, default 1) and
PocketSphinx's (it has one). The ``cpu`` figures are the process's CPU time, which a busy machine
inflates less than the wall clock. Also reported: the share of frames the decoder calls speech
and the phones per second of speech. A quick run uses one second of each clip.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import SHARED_DATA, set_threads

CLIPS = (("German_20s", "German_20s.mp4"), ("Obama_5s", "Obama_5s.wav"))


def _clips(ctx: Context) -> list[tuple[str, np.ndarray]]:
    from talkstudio.core.stage1.features import load_driving_audio

    out = []
    for name, file in CLIPS:
        path = SHARED_DATA / file
        if not path.is_file():
            print(f"phonetic: {path} is absent; its rows are skipped")
            continue
        audio = load_driving_audio(path)
        out.append((name, audio[: ctx.pick(len(audio), 16000)]))
    if not out:  # no footage: a synthetic buzz with pauses stands in
        t = np.arange(5 * 16000) / 16000
        buzz = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 10))
        gate = (np.sin(2 * np.pi * 0.7 * t) > -0.3).astype(np.float64)
        out.append(("synthetic buzz", (0.05 * buzz * gate).astype(np.float32)))
    return out


def _rate(fn, seconds: float, reps: int, before=None) -> tuple[list[float], list[float]]:
    """× real time (wall, cpu) of ``reps`` calls of ``fn``, ``before()`` untimed before each."""
    wall, cpu = [], []
    for _ in range(reps):
        if before is not None:
            before()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(seconds / (time.perf_counter() - t0))
        cpu.append(seconds / max(time.process_time() - c0, 1e-9))
    return wall, cpu


def run(ctx: Context) -> list[Measure]:
    from talkstudio.core.stage1 import phonetic as ph
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.stage1.infer import predict
    from talkstudio.core.stage1.model import Stage1Model

    threads = set_threads()
    reps = ctx.reps
    clear = ph.clear_cache
    measures: list[Measure] = []
    models = {}
    for kind in ("phonetic", "mel+phonetic", "mel"):
        cfg = Stage1Config.from_preset("preview", audio_features=kind)
        models[kind] = Stage1Model(cfg, AudioFrontEnd(cfg).in_dim)
    ph.phone_segments(np.zeros(16000, np.float32))  # load the acoustic model once
    for name, audio in _clips(ctx):
        sec = len(audio) / 16000
        note = f"{sec:.0f} s, {threads} torch thread(s)"
        wall, cpu = _rate(lambda a=audio: ph.phone_segments(a), sec, reps, clear)
        measures.append(Measure(f"{name}: decode", "x realtime", wall, note))
        measures.append(Measure(f"{name}: decode cpu", "x realtime", cpu, "process CPU time"))
        wall, cpu = _rate(lambda a=audio: ph.phonetic_features(a), sec, reps, clear)
        measures.append(Measure(f"{name}: features", "x realtime", wall, "decode + rows"))
        measures.append(Measure(f"{name}: features cpu", "x realtime", cpu, "process CPU time"))
        for kind, model in models.items():
            predict(model, audio[:16000])  # warm-up
            wall, cpu = _rate(lambda a=audio, m=model: predict(m, a), sec, reps, clear)
            what = "untrained preview model, phones decoded afresh"
            measures.append(Measure(f"{name}: stage 1 {kind}", "x realtime", wall, what))
            measures.append(Measure(f"{name}: stage 1 {kind} cpu", "x realtime", cpu))
        model = models["phonetic"]
        wall, _ = _rate(lambda a=audio, m=model: predict(m, a), sec, reps)
        measures.append(
            Measure(f"{name}: stage 1 phonetic, phones cached", "x realtime", wall, "same clip")
        )
        segs = ph.phone_segments(audio)
        feats = ph.features_from_segments(segs, -(-len(audio) // 640))
        speech = ph.speech_mask(feats)
        spoken = sum(s.end - s.start for s in segs if not s.is_silence)
        measures.append(Measure(f"{name}: speech frames", "fraction", [float(speech.mean())]))
        measures.append(
            Measure(
                f"{name}: phones per second of speech",
                "1/s",
                [sum(not s.is_silence for s in segs) / max(spoken, 1e-9)],
            )
        )
    return measures
