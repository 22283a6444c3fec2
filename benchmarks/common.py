"""Shared helpers of the head benchmarks (``benches/head.py``) and ``build_scripts/table3.py``.

The subject and model they use:

- ``HEAD_BENCH_SUBJECT=/path/to/subject``: a subject folder; its trained head model
  (``models/head``) is used when present, else one is trained with ``HEAD_BENCH_STEPS``
  (default 600) steps of the preview preset into ``bench_results/head_model``;
- unset: a synthetic subject (8 s at 256², seed 0) is written to ``bench_results/head_subject``
  once and reused.

Torch runs on one thread (``HEAD_BENCH_THREADS``, default 1): on a shared, loaded machine more
threads make small tensor ops much slower, not faster.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench_results"


def setup_threads() -> int:
    n = int(os.environ.get("HEAD_BENCH_THREADS", "1"))
    torch.set_num_threads(n)
    return n


def bench_subject() -> Path:
    """The subject folder to benchmark on (see the module docstring)."""
    given = os.environ.get("HEAD_BENCH_SUBJECT")
    if given:
        return Path(given)
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    root = RESULTS / "head_subject"
    subject = root / "subject"
    if not (subject / "tracks.npz").is_file():
        write_synthetic(root, SynthConfig(seed=0, seconds=8.0, size=256), video=False)
    return subject


def train_model(subject: Path, out: Path, steps: int, **overrides: object) -> tuple[Path, float]:
    """Train the preview preset for ``steps`` into ``out`` (fresh); return (folder, CPU seconds)."""
    import shutil

    from talkstudio.core.head import HeadConfig, train_head
    from talkstudio.core.progress import run_job

    if out.exists():
        shutil.rmtree(out)
    cfg = HeadConfig.from_preset("preview", steps=steps, **overrides)  # type: ignore[arg-type]
    t0 = time.process_time()
    run_job(train_head(subject, cfg, "cpu", out_dir=out, resume=False))
    return out, time.process_time() - t0


def bench_model(subject: Path) -> Path:
    """A trained head model folder for ``subject`` (trained here when there is none)."""
    own = subject / "models" / "head"
    if (own / "model.safetensors").is_file():
        return own
    out = RESULTS / "head_model"
    if not (out / "model.safetensors").is_file():
        train_model(subject, out, int(os.environ.get("HEAD_BENCH_STEPS", "600")))
    return out
