"""Where the time of one final frame goes (head NeRF + torso + encode), per stage and size.

``python -m benchmarks render-profile`` renders frames of a trained subject through
``Engine.render_once`` (what an export runs per frame) at 128², 256² and 512² and splits each
frame's wall time into stages by timing the functions that do them (exclusive times: a stage's
own time, without the stages it calls):

- **ray setup**: pixel centres and camera rays;
- **sampling**: ray/box bounds, sample positions, occupancy-grid lookups (``sample_rays``; on
  the fast path ``occupied_box`` and each round's ``_scan``);
- **hash grid**: the multi-resolution hash encoding of the sample positions;
- **landmark code**: the Gaussian landmark encoding (Eq. 8a) of the samples;
- **MLPs**: the rest of the field (first layer with the code, density and colour MLPs, SH);
- **compositing**: the march's rounds (Eq. 4-5, early termination; ``march`` or ``_march_part``)
  and the head-over-plate image;
- **torso/refiner**: the torso network, or the refiner where the subject has one;
- **other**: what is left of the frame (landmark edits, conversions to uint8);
- **encode**: one frame written to an H.264 ``Mp4Writer`` (timed apart, after the frames).

Then ``Engine.export`` of the clip's first ``--reps`` frames at 256² and 512², ms per frame
(render, torso, encode), fast and reference path back to back.

Each figure is the median over ``--reps`` frames spread over the clip (after one warm-up). The
frame is measured on the fast render path (``HeadConfig.fast_render``, the default) and, for the
total, on the reference path (``fast_render=False``) side by side; PSNR of both against the real
validation frames (full frame, 256²) is printed too.

Subject: ``$TALKSTUDIO_PROFILE_SUBJECT``, else ``../subjects/German_20s`` when its head and torso
are trained, else the built-in demo subject (which a quick run always uses, at 64² and 128²).
Torch threads: ``$TALKSTUDIO_BENCH_THREADS`` (default 1).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import log, set_threads, subject_from_env

STAGES = (
    "ray setup",
    "sampling",
    "hash grid",
    "landmark code",
    "MLPs",
    "compositing",
    "torso/refiner",
    "other",
)


class StageClock:
    """Exclusive wall time per stage: a timed call's time minus the timed calls inside it."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[float] = []  # time of timed children, per open call

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - t0
                inner = self._stack.pop()
                self.totals[stage] += spent - inner
                if self._stack:
                    self._stack[-1] += spent

        return timed

    def reset(self) -> None:
        self.totals.clear()


@contextmanager
def instrumented(engine: Any, clock: StageClock) -> Iterator[None]:
    """Time the stages of ``engine``'s final frames into ``clock`` (patches undone on exit)."""
    from talkstudio.core.head import fast_march, renderer

    field = engine.head.field
    patches: list[tuple[Any, str, Any]] = [
        (renderer, "pixel_centers", "ray setup"),
        (renderer, "camera_rays", "ray setup"),
        (renderer, "sample_rays", "sampling"),
        (fast_march, "occupied_box", "sampling"),
        (fast_march, "_scan", "sampling"),
        (renderer, "march", "compositing"),
        (fast_march, "_march_part", "compositing"),
        (renderer, "compose", "compositing"),
        (field.grid, "forward", "hash grid"),
        (field.encoding, "forward", "landmark code"),
        (field, "forward", "MLPs"),
        (field, "density", "MLPs"),
        (field, "color", "MLPs"),
        (engine, "torso", "torso/refiner"),
    ]
    if getattr(engine, "refiner", None) is not None:
        patches.append((engine.refiner, "frame", "torso/refiner"))
    saved = []
    for owner, name, stage in patches:
        fn = getattr(owner, name)
        saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, clock.wrap(stage, fn))
    try:
        yield
    finally:
        for owner, name, old in reversed(saved):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)


_MISSING = object()


def _frame_profile(
    engine: Any, frames: list[int], size: int
) -> tuple[dict[str, list[float]], list[float]]:
    """Per-stage ms and total ms of each of ``frames`` at ``size`` (after one warm-up)."""
    clock = StageClock()
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    totals: list[float] = []
    engine.render_once(frames[0], size=size)
    with instrumented(engine, clock):
        for i in frames:
            clock.reset()
            clock.wrap("other", lambda i=i: engine.render_once(i, size=size))()
            total = sum(clock.totals.values()) * 1e3
            totals.append(total)
            for stage in STAGES:
                per_stage[stage].append(clock.totals.get(stage, 0.0) * 1e3)
    return per_stage, totals


def _totals(engine: Any, frames: list[int], size: int) -> tuple[list[float], list[float]]:
    """Wall ms and CPU ms (this process, all threads) of each of ``frames`` at ``size`` without
    instrumentation (after a warm-up). On a shared, loaded machine the CPU time is the steadier
    figure of the work done."""
    engine.render_once(frames[0], size=size)
    wall, cpu = [], []
    for i in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        engine.render_once(i, size=size)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return wall, cpu


def _encode_ms(engine: Any, frames: list[int], size: int) -> list[float]:
    """ms per frame written to an H.264 file (the frames rendered before, not timed)."""
    from talkstudio.core.media import Mp4Writer

    rgbs = [engine.render_once(i, size=size).rgb for i in frames]
    out = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Mp4Writer(Path(tmp) / "profile.mp4", size, size) as writer,
    ):
        for _ in range(2):  # the encoder buffers its first frames: time a second pass too
            for rgb in rgbs:
                t0 = time.perf_counter()
                writer.write(rgb)
                out.append((time.perf_counter() - t0) * 1e3)
    return out


def _export_measures(engine: Any, count: int, sizes: tuple[int, ...], note: str) -> list[Measure]:
    """ms per frame of ``Engine.export`` of the clip's first ``count`` frames (one process, the
    torch threads set here), fast path and reference path back to back."""
    from benchmarks.sections.engine import _export

    config = engine.head.config
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for fast in (True, False):
                config.fast_render = fast
                label = "fast path" if fast else "reference path"
                engine.render_once(0, size=size)  # warm-up
                ms = _export(engine, Path(tmp) / f"e{size}.mp4", size, end=count)
                ms = ms[-count:]  # a framing notice may come before the first frame
                out.append(Measure(f"export at {size}², {label}", "ms/frame", ms, note))
    config.fast_render = True
    return out


def validation_psnr(engine: Any, size: int, count: int) -> float:
    """Mean PSNR (dB) of ``count`` final frames (``Engine.render_once``: head and torso or
    refiner) of the validation split against the real ones, rendered from their tracked
    landmarks and poses at ``size``; the engine replays its own clip afterwards."""
    import dataclasses

    import cv2

    from talkstudio.core.metrics import psnr

    subject = engine.subject
    val = list(subject.meta.val_range)
    picks = np.array([val[int(k)] for k in np.linspace(0, len(val) - 1, count).round()])
    tracks = subject.tracks
    engine.track = dataclasses.replace(
        engine.track,
        lm_world=tracks.lm_world[picks].astype(np.float32),
        pose=tracks.pose[picks].astype(np.float32),
        eye_ratio=tracks.eye_ratio[picks].astype(np.float32),
        ref_index=picks,
        unblinked=None,
    )
    scores = []
    try:
        for k, i in enumerate(picks):
            rgb = engine.render_once(k, size=size).rgb
            real = cv2.resize(
                subject.load_frame(int(i)), (size, size), interpolation=cv2.INTER_AREA
            )
            scores.append(psnr(rgb.astype(np.float32) / 255, real.astype(np.float32) / 255))
    finally:
        engine.replay()
    return float(np.mean(scores))


def _subject(quick: bool) -> tuple[Path, str]:
    from talkstudio.core.demo import ensure_demo_subject

    if not quick:
        given = subject_from_env("TALKSTUDIO_PROFILE_SUBJECT")
        if all((given / "models" / p / "config.json").is_file() for p in ("head", "torso")):
            return given, given.name
        log("render-profile", f"{given} has no trained head and torso: using the demo subject")
    return ensure_demo_subject(), "the demo subject"


def run(ctx: Context) -> list[Measure]:
    from talkstudio.core.engine import Engine

    threads = set_threads(1)
    subject, name = _subject(ctx.quick)
    engine = Engine.open(subject, device="cpu")
    count = max(1, ctx.reps)
    spread = np.linspace(0, engine.num_frames - 1, count + 2).round().astype(int)[1:-1]
    frames = [int(i) for i in spread]
    note = f"{name}, CPU, {threads} thread(s), {count} frame(s)"
    config = engine.head.config
    measures: list[Measure] = []
    for size in ctx.pick((128, 256, 512), (64, 128)):
        log("render-profile", f"{size}²: profiling {count} frame(s)")
        config.fast_render = True
        per_stage, totals = _frame_profile(engine, frames, size)
        for stage in STAGES:
            measures.append(Measure(f"{size}² {stage}", "ms", per_stage[stage]))
        measures.append(Measure(f"{size}² encode", "ms", _encode_ms(engine, frames[:3], size)))
        fast, fast_cpu = _totals(engine, frames, size)
        config.fast_render = False
        reference, reference_cpu = _totals(engine, frames, size)
        config.fast_render = True
        speedup = statistics.median(reference) / statistics.median(fast)
        cpu_speedup = statistics.median(reference_cpu) / statistics.median(fast_cpu)
        measures += [
            Measure(f"{size}² frame (profiled)", "ms", totals, note),
            Measure(f"{size}² frame, fast path", "ms", fast, f"{speedup:.2f}x the reference"),
            Measure(f"{size}² frame, reference path", "ms", reference, "fast_render=False"),
            Measure(f"{size}² frame CPU, fast path", "ms", fast_cpu, f"{cpu_speedup:.2f}x"),
            Measure(f"{size}² frame CPU, reference path", "ms", reference_cpu),
        ]
    measures += _export_measures(engine, count, ctx.pick((256, 512), (64,)), note)
    psnr_size = ctx.pick(256, 64)
    psnr_frames = ctx.pick(8, 1)
    for fast_render in (True, False):
        config.fast_render = fast_render
        label = "fast path" if fast_render else "reference path"
        value = validation_psnr(engine, psnr_size, psnr_frames)
        measures.append(
            Measure(
                f"PSNR {psnr_size}² vs validation frames, {label}",
                "dB",
                [value],
                f"{psnr_frames} validation frame(s), full frame",
            )
        )
    config.fast_render = True
    return measures
