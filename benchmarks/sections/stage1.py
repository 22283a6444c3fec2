"""Stage 1 (audio → 37 landmarks): validation LMD vs the mean-landmark baseline, training time,
free-running inference speed, and linear fusion vs biased cross-attention per training step.

Subjects: a rendered synthetic subject (``core.synthetic``, 20 s at 64², made here), and the real
``German_20s`` and ``May_5s`` from ``$TALKSTUDIO_SUBJECTS`` or ``../subjects`` beside the
repository (copied to a temporary folder without their models, which stay untouched); when those
are absent and ``../shared/data`` has the videos, they are preprocessed there first (noted). Training runs use the ``preview`` preset on the CPU, one
per seed (``min(reps, 3)`` seeds); LMD is pixels at 512² on the validation split (last 10 %),
free-running. Torch threads: ``$TALKSTUDIO_BENCH_THREADS`` (default 1: on a shared machine one
thread is much faster for this small model; the note says so). Times are wall clock; the
``cpu`` measures are the process's CPU time, which a busy machine inflates less. A quick run
trains 4 steps on a 4 s synthetic subject (no real subjects), runs inference on 2 s of audio
and times 50-frame windows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import SHARED_DATA, SUBJECTS

QUICK_TRAINING = {"steps": 4, "val_every": 2}
"""Stage 1 preset overrides of a quick run."""


def _threads() -> int:
    return int(os.environ.get("TALKSTUDIO_BENCH_THREADS", "1"))


def _real_subject(name: str, scratch: Path) -> tuple[Path | None, str]:
    base = SUBJECTS
    if (base / name / "subject.json").is_file():  # copied: its own models stay untouched
        shutil.copytree(base / name, scratch / name, ignore=shutil.ignore_patterns("models"))
        return scratch / name, f"{base / name}"
    video = SHARED_DATA / f"{name}.mp4"
    if not video.is_file():
        return None, f"skipped: no {base / name} and no {video}"
    from talkstudio.core.preprocess import preprocess
    from talkstudio.core.progress import run_job

    out = run_job(preprocess(video, scratch / name))
    return out, f"preprocessed here from {video.name}"


def _train(subject: Path, seed: int, **overrides: object) -> tuple[float, float, object]:
    """(wall s, cpu s, result) of one preview training run from scratch."""
    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.train import train_stage1

    shutil.rmtree(subject / "models" / "stage1", ignore_errors=True)
    cfg = Stage1Config.from_preset("preview", seed=seed, cpu_threads=_threads(), **overrides)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_job(train_stage1(subject, cfg, "cpu", resume=False))
    return time.perf_counter() - t0, time.process_time() - c0, result


def _quality(
    measures: list[Measure],
    tag: str,
    subject: Path,
    seeds: int,
    note: str,
    overrides: dict[str, object],
) -> None:
    from talkstudio.core.stage1.infer import load_stage1
    from talkstudio.core.stage1.metrics import evaluate
    from talkstudio.core.subject import Subject

    walls, cpus, lmd, base, ratio, corr, lively, own = [], [], [], [], [], [], [], []
    for seed in range(seeds):
        wall, cpu, result = _train(subject, seed, **overrides)
        s = result.scores  # type: ignore[attr-defined]
        subj = Subject.open(subject)
        own.append(evaluate(load_stage1(subj), subj, own_level=True).lmd_ratio)
        walls.append(wall)
        cpus.append(cpu)
        lmd.append(s.lmd)
        base.append(s.lmd_baseline)
        ratio.append(s.lmd_ratio)
        corr.append(s.corr)
        lively.append(s.opening_ratio)
    frames = result.scores.frames  # type: ignore[attr-defined]
    measures += [
        Measure(f"{tag}: val LMD", "px@512", lmd, f"{frames} val frames, free-running; {note}"),
        Measure(f"{tag}: val LMD mean-landmark baseline", "px@512", base),
        Measure(
            f"{tag}: LMD / baseline", "ratio", ratio, "validation audio at the recording's gain"
        ),
        Measure(f"{tag}: LMD / baseline, own level", "ratio", own, "val audio normalised alone"),
        Measure(f"{tag}: mouth-opening correlation", "r", corr, "baseline: 0 (constant)"),
        Measure(f"{tag}: opening std pred/track", "ratio", lively),
        Measure(f"{tag}: preview training", "s", walls, f"{len(walls)} seeds, wall clock"),
        Measure(f"{tag}: preview training cpu", "s", cpus, "process CPU time"),
    ]


def _inference(
    measures: list[Measure], subject: Path | None, reps: int, tiles: int, decode_s: int
) -> None:
    """Free-running inference on ``tiles`` copies of 5 s of speech; decoding ``decode_s`` s."""
    import torch

    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.features import AudioFrontEnd, load_driving_audio
    from talkstudio.core.stage1.infer import generate, generate_uncached, load_stage1, predict
    from talkstudio.core.stage1.model import Stage1Model

    if subject is not None and (subject / "models" / "stage1" / "config.json").is_file():
        model, where = load_stage1(subject), "trained German_20s model"
    else:
        model, where = Stage1Model(Stage1Config(), 4 * 80 + 6), "untrained model"
    wav = SHARED_DATA / "Obama_5s.wav"
    if wav.is_file():
        audio, src = load_driving_audio(wav), "Obama_5s.wav (16 kHz stereo)"
    else:
        audio, src = 0.1 * np.random.default_rng(0).standard_normal(5 * 16000), "noise"
    audio = np.tile(audio, tiles).astype(np.float32)  # about 20 s in a full run
    seconds = len(audio) / 16000
    predict(model, audio[:16000])
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        predict(model, audio)
        wall.append(seconds / (time.perf_counter() - t0))
        cpu.append(seconds / (time.process_time() - c0))
    note = f"{seconds:.0f} s of {src}, {where}, features + KV-cached decoding"
    measures.append(Measure("inference speed (wall)", "x realtime", wall, note))
    measures.append(Measure("inference speed (cpu)", "x realtime", cpu, "process CPU time"))
    feats = torch.from_numpy(AudioFrontEnd(model.config)(audio[: decode_s * 16000]))[None]
    cached, plain = [], []
    for _ in range(max(1, min(reps, 3))):
        t0 = time.perf_counter()
        generate(model, feats)
        cached.append(decode_s / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        generate_uncached(model, feats)
        plain.append(decode_s / (time.perf_counter() - t0))
    measures.append(Measure(f"decode {decode_s} s, KV cache", "x realtime", cached, "decoder only"))
    measures.append(
        Measure(f"decode {decode_s} s, no cache", "x realtime", plain, "O(T²) reference")
    )


def _fusion_step_time(measures: list[Measure], reps: int, frames: int) -> None:
    """Seconds per training iteration (batch 1, a ``frames`` window, forward + backward + AdamW),
    both fusions in one run, interleaved so both see the same machine load."""
    import torch

    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.model import Stage1Model
    from talkstudio.core.stage1.train import smooth_l1

    runs = {}
    for fusion in ("linear", "biased_cross_attention"):
        torch.manual_seed(0)
        model = Stage1Model(Stage1Config(fusion=fusion), 4 * 80 + 6)
        runs[fusion] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))
    feats = torch.randn(1, frames, 4 * 80 + 6)
    prev, target = 0.01 * torch.randn(1, frames, 37, 3), 0.01 * torch.randn(1, frames, 37, 3)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for rep in range(reps * 4 + 2):
        for fusion, (model, opt) in runs.items():
            t0 = time.perf_counter()
            loss = smooth_l1(model(feats, prev), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if rep >= 2:
                times[fusion].append((time.perf_counter() - t0) * 1000)
    dec: dict[str, list[float]] = {k: [] for k in runs}
    lm_feats = torch.randn(1, frames, 64, requires_grad=True)
    audio = torch.randn(1, frames, 64, requires_grad=True)
    for rep in range(reps * 4 + 2):
        for fusion, (model, _) in runs.items():
            t0 = time.perf_counter()
            model.decoder(lm_feats, model.decoder.prepare(audio)).sum().backward()
            if rep >= 2:
                dec[fusion].append((time.perf_counter() - t0) * 1000)
    lin, ca = times["linear"], times["biased_cross_attention"]
    note = f"batch 1 × {frames} frames, fwd+bwd+AdamW"
    measures.append(Measure("train iteration, linear fusion", "ms", lin, note))
    measures.append(Measure("train iteration, biased cross-attention", "ms", ca, note))
    ratio = [a / b for a, b in zip(lin, ca)]
    measures.append(Measure("linear / cross-attention", "ratio", ratio, "paper: 66.69/85.19=0.78"))
    dl, dc = dec["linear"], dec["biased_cross_attention"]
    measures.append(Measure("decoder alone, linear fusion", "ms", dl, f"fwd+bwd, {frames} frames"))
    measures.append(
        Measure("decoder alone, cross-attention", "ms", dc, f"fwd+bwd, {frames} frames")
    )
    measures.append(
        Measure("decoder alone linear / cross", "ratio", [a / b for a, b in zip(dl, dc)])
    )


def run(ctx: Context) -> list[Measure]:
    import torch

    torch.set_num_threads(_threads())
    reps = ctx.reps
    overrides: dict[str, object] = ctx.pick({}, QUICK_TRAINING)
    measures: list[Measure] = []
    seeds = max(1, min(reps, 3))
    scratch = Path(tempfile.mkdtemp(prefix="talkstudio_stage1_bench_"))
    try:
        from talkstudio.core.synthetic import SynthConfig, write_synthetic

        seconds = ctx.pick(20.0, 4.0)
        synth = write_synthetic(
            scratch / "synth", SynthConfig(seed=0, seconds=seconds, size=64), False
        )
        tag, note = f"synthetic {seconds:g} s", "core.synthetic seed 0"
        _quality(measures, tag, synth.subject_dir, seeds, note, overrides)
        german: Path | None = None
        for name, runs in ctx.pick((("German_20s", seeds), ("May_5s", 1)), ()):
            found, note = _real_subject(name, scratch)
            if found is not None:
                _quality(measures, name, found, runs, note, overrides)
            else:
                measures.append(Measure(name, "-", [float("nan")], note))
            german = found if name == "German_20s" else german
        _inference(measures, german, reps, ctx.pick(4, 1), ctx.pick(5, 2))
        _fusion_step_time(measures, reps, ctx.pick(200, 50))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return measures
