"""Parallel export: frames per second of one export split over processes, on the built-in demo
subject at 256² driven by its own speech (``PARALLEL_BENCH_FRAMES`` frames, default 12).

- **1 process × 1 thread**: the serial export with one torch thread (the unit of work);
- **1 process × 2 threads**: the serial export with two torch threads;
- **2 workers × 1 thread**: ``Engine.export(workers=2, threads=1)``, two local processes;
- **Ray 2 CPUs × 1 thread**: ``Engine.export(ray=...)`` on a local Ray cluster started here
  (``ray.init(num_cpus=2)``), tasks of one CPU; skipped with a note when Ray is not installed.

Each as frames per second over the whole export job (worker start and model loading included,
encoding in the calling process) and from its first frame on (the steady rate); the scaling
efficiency of a configuration with P cores is its frames/s over P times that of one process with
one thread. A quick run exports 4 frames at 64² once.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.bench import Context, Measure
from benchmarks.common import log


def _fps(export, frames: int, reps: int) -> tuple[list[float], list[float]]:
    """Frames/s of ``reps`` runs of the export job ``export()``: over the whole job, and from
    its first frame on (the steady rate, without starting workers and loading models)."""
    whole, steady = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        first = None
        for _ in export():
            first = first or time.perf_counter()
        t1 = time.perf_counter()
        whole.append(frames / (t1 - t0))
        steady.append((frames - 1) / (t1 - first) if first and t1 > first else 0.0)
    return whole, steady


def run(ctx: Context) -> list[Measure]:
    import torch

    from talkstudio.core.demo import ensure_demo_subject
    from talkstudio.core.engine import Engine
    from talkstudio.core.timing import SAMPLES_PER_FRAME

    size = ctx.pick(256, 64)
    frames = ctx.pick(int(os.environ.get("PARALLEL_BENCH_FRAMES", "12")), 4)
    reps = ctx.pick(min(ctx.reps, 3), 1)
    engine = Engine.open(ensure_demo_subject(), device="cpu")
    engine.drive(engine.subject.load_audio()[: frames * SAMPLES_PER_FRAME])
    assert engine.num_frames == frames
    scratch = Path(tempfile.mkdtemp(prefix="parallel-bench-", dir=ctx.results))
    out = scratch / "out.mp4"
    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    note = f"{frames} frames at {size}², demo subject, load average {load:.1f} at start"

    def serial(n: int):
        def go():
            torch.set_num_threads(n)
            return engine.export(out, size=size)

        return go

    results: dict[str, tuple[list[float], list[float]]] = {}
    try:
        log("parallel", "1 process × 1 thread")
        results["1 process × 1 thread"] = _fps(serial(1), frames, reps)
        log("parallel", "1 process × 2 threads")
        results["1 process × 2 threads"] = _fps(serial(2), frames, reps)
        torch.set_num_threads(1)
        log("parallel", "2 workers × 1 thread")
        results["2 workers × 1 thread"] = _fps(
            lambda: engine.export(out, size=size, workers=2, threads=1), frames, reps
        )
        try:
            import ray
        except ImportError:
            ray = None
            log("parallel", 'Ray is not installed (pip install "ray==2.60.*"): no Ray row')
        if ray is not None:
            log("parallel", "Ray local cluster, 2 CPUs")
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                results["Ray 2 CPUs × 1 thread"] = _fps(
                    lambda: engine.export(out, size=size, ray="auto", threads=1), frames, reps
                )
            finally:
                ray.shutdown()
    finally:
        torch.set_num_threads(threads)
        out.unlink(missing_ok=True)
        scratch.rmdir()

    cores = {"1 process × 1 thread": 1}
    measures = []
    for kind, index in (("whole job", 0), ("from the first frame", 1)):
        ones = results["1 process × 1 thread"][index]
        base = sorted(ones)[len(ones) // 2]
        for name, runs in results.items():
            p = cores.get(name, 2)
            samples = runs[index]
            eff = sorted(samples)[len(samples) // 2] / (p * base)
            measures.append(
                Measure(
                    f"{name}: frames/s, {kind}",
                    "fps",
                    samples,
                    f"scaling efficiency {eff:.2f} on {p} core(s); {note}",
                    {"efficiency": eff, "cores": p, "load": load},
                )
            )
    return measures
