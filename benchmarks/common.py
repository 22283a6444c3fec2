"""What several benchmark sections and scripts share: paths, the torch thread setting, subjects.

The head subject and model (``sections/head.py`` and ``scripts/table3.py``):

- ``HEAD_BENCH_SUBJECT=/path/to/subject``: a subject folder; its trained head model
  (``models/head``) is used when present, else one is trained with ``HEAD_BENCH_STEPS``
  (default 600) steps of the preview preset into ``<results>/head_model``;
- unset: a synthetic subject (8 s at 256², seed 0) is written to ``<results>/head_subject``
  once and reused.

Torch runs on one thread by default (``$TALKSTUDIO_BENCH_THREADS``; the head sections also read
``HEAD_BENCH_THREADS``): on a shared, loaded machine more threads make small tensor ops much
slower, not faster.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench_results"
SHARED_DATA = REPO.parent / "shared" / "data"
"""The real footage (``German_20s.mp4``, ``May_5s.mp4``, ``Obama_5s.wav``) when it is there."""
SUBJECTS = Path(os.environ.get("TALKSTUDIO_SUBJECTS", REPO.parent / "subjects"))
"""Preprocessed (and trained) real subjects, e.g. ``German_20s``."""


def set_threads(default: int = 1, variable: str = "TALKSTUDIO_BENCH_THREADS") -> int:
    """Set torch's thread count from ``$variable`` (else ``default``); returns it."""
    import torch

    n = int(os.environ.get(variable, str(default)))
    torch.set_num_threads(n)
    return n


def subject_from_env(variable: str, name: str = "German_20s") -> Path:
    """``$variable`` when set, else the real subject ``name`` in :data:`SUBJECTS`."""
    env = os.environ.get(variable)
    return Path(env) if env else SUBJECTS / name


def log(section: str, text: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    import sys

    print(f"[{section}] {text}", file=sys.stderr, flush=True)


def setup_threads() -> int:
    """The head sections' thread setting: ``HEAD_BENCH_THREADS``, default 1."""
    return set_threads(1, "HEAD_BENCH_THREADS")


def bench_subject(results: Path = RESULTS, seconds: float = 8.0, size: int = 256) -> Path:
    """The head subject folder to benchmark on (see the module docstring)."""
    given = os.environ.get("HEAD_BENCH_SUBJECT")
    if given:
        return Path(given)
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    root = results / "head_subject"
    subject = root / "subject"
    if not (subject / "tracks.npz").is_file():
        write_synthetic(root, SynthConfig(seed=0, seconds=seconds, size=size), video=False)
    return subject


def train_model(subject: Path, out: Path, steps: int, **overrides: object) -> tuple[Path, float]:
    """Train the preview preset for ``steps`` into ``out`` (fresh); return (folder, CPU seconds)."""
    from talkstudio.core.head import HeadConfig, train_head
    from talkstudio.core.progress import run_job

    if out.exists():
        shutil.rmtree(out)
    cfg = HeadConfig.from_preset("preview", steps=steps, **overrides)  # type: ignore[arg-type]
    t0 = time.process_time()
    run_job(train_head(subject, cfg, "cpu", out_dir=out, resume=False))
    return out, time.process_time() - t0


def bench_model(subject: Path, results: Path = RESULTS, **overrides: object) -> Path:
    """A trained head model folder for ``subject`` (trained here when there is none). With
    ``overrides`` (a quick run's steps and sizes) a fresh model is always trained."""
    own = subject / "models" / "head"
    if not overrides and (own / "model.safetensors").is_file():
        return own
    out = results / "head_model"
    if overrides or not (out / "model.safetensors").is_file():
        steps = overrides.pop("steps", None) or os.environ.get("HEAD_BENCH_STEPS", "600")
        train_model(subject, out, int(steps), **overrides)  # type: ignore[call-overload]
    return out


def studio_subject(results: Path = RESULTS) -> tuple[Path, str]:
    """A trained subject for the studio section and the screenshots, and a note saying which:
    ``$TALKSTUDIO_STUDIO_SUBJECT`` when set; else the built-in demo subject when it ships; else
    a synthetic subject trained here (:func:`build_bench_subject`)."""
    from talkstudio.core.demo import demo_resources, ensure_demo_subject

    env = os.environ.get("TALKSTUDIO_STUDIO_SUBJECT")
    if env:
        return Path(env), f"subject {env}"
    if (demo_resources() / "demo.json").is_file():
        return ensure_demo_subject(), "the built-in demo subject"
    return build_bench_subject(results / "studio_subject"), (
        "synthetic 8 s subject, head 400 / torso 300 steps"
    )


def build_bench_subject(root: Path) -> Path:
    """Make (once) a synthetic subject (8 s, 256²) trained with shortened preview runs (head 400
    steps, torso 300 steps at base width 16; no stage 1: the clip replays its own speech)."""
    from talkstudio.core.head.config import HeadConfig
    from talkstudio.core.head.train import train_head
    from talkstudio.core.progress import run_job
    from talkstudio.core.subject import Subject
    from talkstudio.core.synthetic import SynthConfig, write_synthetic
    from talkstudio.core.torso.config import TorsoConfig
    from talkstudio.core.torso.train import train_torso

    subject = root / "subject"
    if not (subject / "tracks.npz").is_file():
        log("studio", f"writing a synthetic subject into {root}")
        root.mkdir(parents=True, exist_ok=True)
        cfg = SynthConfig(seed=7, seconds=8.0, size=256, name="studio-bench")
        subject = write_synthetic(root, cfg, video=False).subject_dir

    def show(p) -> None:
        if p.step % 50 == 0 or p.step == p.total:
            log("studio", f"{p.stage} {p.step}/{p.total} {p.message}")

    if not Subject.open(subject).has_model("head"):
        run_job(train_head(subject, HeadConfig.from_preset("preview", steps=400)), show)
    if not Subject.open(subject).has_model("torso"):
        torso = TorsoConfig.from_preset("preview", base_width=16, steps=300)
        run_job(train_torso(subject, torso), show)
    return subject
