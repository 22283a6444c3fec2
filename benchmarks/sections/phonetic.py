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
  edits change);
- ``reference``: decoding speed, stage 1 (with PyTorch's autoregressive loop) and the language
  rows with :data:`~talkstudio.core.stage1.phonetic.REFERENCE_SETTINGS`, the slower decoder
  setting the shipped one is compared with;
- ``stage 1 loop``: the audio encoder and the free-running decoding alone (features ready), in
  the NumPy kernel (the CPU default) and in PyTorch;
- ``lattice``: the phone-lattice search alone and stage 1 ``mel+phonetic`` with phone posteriors
  (``phone_lattice_scale`` 0.02, :mod:`~talkstudio.core.stage1.phone_lattice`), caches emptied;
- ``ppg``: the acoustic model's frame-by-frame phone posteriors alone
  (:func:`~talkstudio.core.stage1.ppg.ppg_features`) and stage 1 ``mel+phonetic`` with them
  appended (``ppg_scale`` 0.5), phone cache emptied.

With espeak-ng installed, the decoder's output on synthetic speech (16 kHz, 0.5 s of silence
either side, spoken by espeak-ng's ``en-us``, ``de`` and ``es`` voices):

- ``viseme accuracy``: English only, the share of speech frames whose main viseme class is the
  one of a forced alignment of the known text (PocketSphinx's own aligner with the wheel's
  dictionary: same acoustic model, so an optimistic reference for timing, a fair one for which
  phones were said);
- ``closed-lips frames per second``: for sentences with bilabials (p, b, m) and sentences
  without, in each language: how well the lips are told apart through the English phone loop;
- ``speech / silence agreement``: frames the decoder calls speech among loud frames (within
  20 dB of the loud ones) and silence among the inserted silences.

Everything runs on one thread: torch's (``$TALKSTUDIO_BENCH_THREADS``, default 1) and
PocketSphinx's (it has one). The ``cpu`` figures are the process's CPU time, which a busy machine
inflates less than the wall clock. Also reported: the share of frames the decoder calls speech
and the phones per second of speech, and how the speech frames agree with the clip's energy (loud
frames called speech, quiet ones called silence). A quick run uses one second of each clip.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import SHARED_DATA, set_threads

CLIPS = (("German_20s", "German_20s.mp4"), ("Obama_5s", "Obama_5s.wav"))
SENTENCES = {
    "en-us": (
        ("my mother bought a blue map", "please bring me both maps", "bob made an apple pie"),
        ("she said that it is here", "the cat sat on the red rug", "we will go to the hotel"),
    ),
    "de": (
        ("meine Mutter backt Brot", "bitte bring mir Milch mit", "Papa mag blaue Blumen"),
        ("der Hund liegt auf der Straße", "sie sagt es ist heute kalt", "das Kind isst Kuchen"),
    ),
    "es": (
        ("mi madre compra pan", "papá bebe mucha agua", "buenos días mamá"),
        ("el niño tiene un gato", "hace calor en la ciudad", "ella dice que sí"),
    ),
}
"""Per espeak-ng voice: sentences with bilabials, and sentences without."""


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


def _speak(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by espeak-ng, mono float32 16 kHz, 0.5 s of silence either side."""
    import io
    import subprocess
    from math import gcd

    import soundfile as sf
    from scipy.signal import resample_poly

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-z", "--stdout", text], capture_output=True, check=True
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    g = gcd(16000, rate)
    pad = np.zeros(8000, np.float32)
    return np.concatenate([pad, resample_poly(audio, 16000 // g, rate // g), pad])


def _aligned_visemes(audio: np.ndarray, text: str, frames: int) -> np.ndarray | None:
    """Main viseme class per frame [frames] of a forced alignment of ``text``, or None."""
    from pocketsphinx import Decoder

    from talkstudio.core.stage1 import phonetic as ph

    pcm = ph.decoder_input(audio).tobytes()
    dec = Decoder(loglevel="FATAL")
    try:
        dec.set_align_text(text.lower())
        for second in (False, True):
            if second:
                dec.set_alignment()
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
    except RuntimeError:
        return None
    hop, off = ph.DECODER_HOP, ph.DECODER_OFFSET
    segs = [
        ph.PhoneSegment(
            p.name, (off + hop * p.start) / 16000, (off + hop * (p.start + p.duration)) / 16000
        )
        for w in dec.get_alignment().words()
        for p in w
    ]
    return ph.viseme_coverage(segs, frames).argmax(axis=1)


def _languages(
    measures: list[Measure], ctx: Context, voices: tuple[str, ...] = tuple(SENTENCES), tag: str = ""
) -> None:
    import shutil

    from talkstudio.core.stage1 import phonetic as ph

    if shutil.which("espeak-ng") is None:
        print("phonetic: espeak-ng is absent; the language rows are skipped")
        return
    pbm = ph.VISEMES.index("PBM")
    for voice in voices:
        lips, free = SENTENCES[voice]
        rates: dict[bool, list[float]] = {True: [], False: []}
        loud_ok, quiet_ok, accuracy = [], [], []
        for has_lips, texts in ((True, lips), (False, free)):
            for text in texts[: ctx.pick(3, 1)]:
                audio = _speak(text, voice)
                feats = ph.phonetic_features(audio)
                t = len(feats)
                rows = np.zeros(t * 640)
                rows[: len(audio)] = audio
                rms = np.sqrt((rows.reshape(t, 640) ** 2).mean(1))
                inner = np.zeros(t, bool)
                inner[1 : 8000 // 640 - 1] = True
                inner[-(8000 // 640) + 2 : -1] = True
                loud = rms > 0.1 * np.percentile(rms[~inner], 90)
                speech = ph.speech_mask(feats)
                loud_ok.append(float(speech[loud].mean()))
                quiet_ok.append(float((~speech[inner]).mean()))
                rates[has_lips].append(
                    float((feats[:, pbm] >= 0.5).sum() / (len(audio) / 16000 - 1))
                )
                if voice == "en-us":
                    ref = _aligned_visemes(audio, text, t)
                    if ref is not None:
                        said = ref != 0
                        accuracy.append(
                            float((feats[:, : ph.NUM_VISEMES].argmax(1) == ref)[said].mean())
                        )
        lang = voice.split("-")[0] + tag
        if accuracy:
            measures.append(
                Measure(
                    f"{lang}: viseme accuracy",
                    "fraction",
                    accuracy,
                    "per sentence, vs forced alignment",
                )
            )
        measures.append(
            Measure(
                f"{lang}: closed-lips frames/s, with p b m",
                "1/s",
                rates[True],
                "espeak-ng " + voice,
            )
        )
        measures.append(Measure(f"{lang}: closed-lips frames/s, without", "1/s", rates[False]))
        measures.append(Measure(f"{lang}: loud frames called speech", "fraction", loud_ok))
        measures.append(Measure(f"{lang}: silent frames called silence", "fraction", quiet_ok))


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
        predict(model, audio)  # the phones of this clip into the cache
        wall, _ = _rate(lambda a=audio, m=model: predict(m, a), sec, reps)
        measures.append(
            Measure(f"{name}: stage 1 phonetic, phones cached", "x realtime", wall, "same clip")
        )
        segs = ph.phone_segments(audio)
        feats = ph.features_from_segments(segs, -(-len(audio) // 640))
        speech = ph.speech_mask(feats)
        spoken = sum(s.end - s.start for s in segs if not s.is_silence)
        measures.append(Measure(f"{name}: speech frames", "fraction", [float(speech.mean())]))
        rows = np.zeros(len(feats) * 640)
        rows[: len(audio)] = audio
        rms = np.sqrt((rows.reshape(len(feats), 640) ** 2).mean(1))
        level = np.percentile(rms, 90)
        loud, quiet = rms > 0.1 * level, rms < 0.03 * level
        measures.append(
            Measure(
                f"{name}: loud frames called speech",
                "fraction",
                [float(speech[loud].mean())],
                f"{loud.sum()} frames within 20 dB of the loud ones",
            )
        )
        if quiet.any():
            measures.append(
                Measure(
                    f"{name}: quiet frames called silence",
                    "fraction",
                    [float((~speech[quiet]).mean())],
                    f"{quiet.sum()} frames 30 dB or more below the loud ones",
                )
            )
        measures.append(
            Measure(
                f"{name}: phones per second of speech",
                "1/s",
                [sum(not s.is_silence for s in segs) / max(spoken, 1e-9)],
            )
        )
    _languages(measures, ctx)
    _reference_setting(measures, ctx, _clips(ctx), models["mel+phonetic"])
    _lattice_rows(measures, ctx, _clips(ctx))
    _ppg_rows(measures, ctx, _clips(ctx))
    return measures


def _ppg_rows(measures: list[Measure], ctx: Context, clips: list[tuple[str, np.ndarray]]) -> None:
    """Speed of the acoustic model's phone posteriors, alone and inside stage 1."""
    from talkstudio.core.stage1 import phonetic as ph
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.stage1.infer import predict
    from talkstudio.core.stage1.model import Stage1Model
    from talkstudio.core.stage1.ppg import ppg_features

    cfg = Stage1Config.from_preset("preview", audio_features="mel+phonetic", ppg_scale=0.5)
    model = Stage1Model(cfg, AudioFrontEnd(cfg).in_dim)
    for name, audio in clips:
        sec = len(audio) / 16000
        predict(model, audio[:16000])  # warm-up: the acoustic model is read
        _, cpu = _rate(lambda a=audio: ppg_features(a, None, 0.5), sec, ctx.reps)
        measures.append(Measure(f"{name}: phone posteriors cpu, ppg", "x realtime", cpu))
        _, cpu = _rate(lambda a=audio: predict(model, a), sec, ctx.reps, ph.clear_cache)
        what = "phonetic rows and phone posteriors, phones decoded afresh"
        measures.append(Measure(f"{name}: stage 1 mel+phonetic cpu, ppg", "x realtime", cpu, what))


def _lattice_rows(
    measures: list[Measure], ctx: Context, clips: list[tuple[str, np.ndarray]]
) -> None:
    """Speed of the phone-lattice search and of stage 1 with its phone posteriors."""
    from talkstudio.core.stage1 import phone_lattice as pl
    from talkstudio.core.stage1 import phonetic as ph
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.stage1.infer import predict
    from talkstudio.core.stage1.model import Stage1Model

    def clear() -> None:
        ph.clear_cache()
        pl.clear_cache()

    cfg = Stage1Config.from_preset(
        "preview", audio_features="mel+phonetic", phone_lattice_scale=0.02
    )
    model = Stage1Model(cfg, AudioFrontEnd(cfg).in_dim)
    for name, audio in clips:
        sec = len(audio) / 16000
        predict(model, audio[:16000])  # warm-up: the lattice decoder is made
        _, cpu = _rate(lambda a=audio: pl.lattice_decode(a), sec, ctx.reps, clear)
        measures.append(Measure(f"{name}: decode cpu, lattice", "x realtime", cpu))
        _, cpu = _rate(lambda a=audio: predict(model, a), sec, ctx.reps, clear)
        what = "phone posteriors from the lattice, decoded afresh"
        measures.append(
            Measure(f"{name}: stage 1 mel+phonetic cpu, lattice", "x realtime", cpu, what)
        )


def _reference_setting(
    measures: list[Measure], ctx: Context, clips: list[tuple[str, np.ndarray]], model
) -> None:
    """Decode and stage-1 speed and the language rows with the slower reference decoder
    settings (full phone trigrams, four Gaussians per codebook: docs/phonetic.md), and the
    autoregressive loop alone (features ready) in NumPy and in PyTorch."""
    import torch

    from talkstudio.core.stage1 import infer
    from talkstudio.core.stage1 import phonetic as ph
    from talkstudio.core.stage1.features import AudioFrontEnd

    fe = AudioFrontEnd(model.config)
    before = dict(ph.DECODER_SETTINGS)
    ph.DECODER_SETTINGS.clear()
    ph.DECODER_SETTINGS.update(ph.REFERENCE_SETTINGS)
    try:
        for name, audio in clips:
            sec = len(audio) / 16000
            _, cpu = _rate(lambda a=audio: ph.phone_segments(a), sec, ctx.reps, ph.clear_cache)
            measures.append(Measure(f"{name}: decode cpu, reference", "x realtime", cpu))
            _, cpu = _rate(
                lambda a=audio: infer.generate(
                    model, torch.from_numpy(fe(a))[None], kernel="torch"
                ),
                sec,
                ctx.reps,
                ph.clear_cache,
            )
            measures.append(
                Measure(
                    f"{name}: stage 1 mel+phonetic cpu, reference",
                    "x realtime",
                    cpu,
                    "reference decoding, PyTorch loop",
                )
            )
        _languages(measures, ctx, tag=", reference")
    finally:
        ph.DECODER_SETTINGS.clear()
        ph.DECODER_SETTINGS.update(before)
        ph.clear_cache()
    for name, audio in clips:
        sec = len(audio) / 16000
        feats = torch.from_numpy(fe(audio))[None]
        for kernel in ("numpy", "torch"):
            _, cpu = _rate(
                lambda f=feats, k=kernel: infer.generate(model, f, kernel=k), sec, ctx.reps
            )
            measures.append(
                Measure(
                    f"{name}: stage 1 loop cpu, {kernel}",
                    "x realtime",
                    cpu,
                    "audio encoder + free-running decoding",
                )
            )
