"""What ``talkstudio train stage1|head|torso|refiner`` share.

The part's config from ``--preset``/``--steps`` (a bad setting is said on stderr: exit 2), the
training job with a progress line for the records ``shown`` picks, and the ``saved ...`` line
at the end. Ctrl+C cancels the job between two steps, as the GUI's Cancel does: the trainer
saves the step it reached and the same command later continues from there (a second Ctrl+C
stops at once). With ``--ray`` the same trainer runs on a Ray cluster
(:mod:`talkstudio.core.remote_training`) and its records and checkpoints come back here.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from talkstudio.core.progress import Job, Progress
    from talkstudio.core.training import TrainResult


class _Config(Protocol):
    @property
    def steps(self) -> int: ...


C = TypeVar("C", bound=_Config)
R = TypeVar("R", bound="TrainResult")
T = TypeVar("T")


def part_config(args: argparse.Namespace, part: str, from_preset: Callable[..., C]) -> C | None:
    """``part``'s config of ``--preset`` with ``--steps`` (when given, 0 included) on top and
    its preview images off (the terminal shows none, and each costs a render); None after
    saying on stderr what is wrong with the settings."""
    overrides = {"steps": args.steps} if args.steps is not None else {}
    try:
        config = from_preset(args.preset, **overrides)
    except ValueError as exc:  # core.errors.ConfigError
        print(f"talkstudio train {part}: {exc}", file=sys.stderr)
        return None
    if getattr(config, "preview_every", 0):  # a terminal shows no preview images: render none
        config = config.replace(preview_every=0)  # type: ignore[attr-defined]
    return config


def train_part(
    args: argparse.Namespace,
    part: str,
    from_preset: Callable[..., C],
    train: Callable[[Any, C, Any], Job[R]],
    shown: Callable[[Progress, int], bool],
) -> R | None:
    """Train ``part`` of ``args.subject``; None (after saying why) when the settings are bad.

    ``shown(record, every)`` says whether a progress record gets its ``[stage] step/total
    message`` line; ``every`` is the step interval giving about twenty lines.
    """
    config = part_config(args, part, from_preset)
    if config is None:
        return None
    every = max(1, config.steps // 20)

    def show(p: Progress) -> None:
        if shown(p, every):
            values = ", ".join(f"{k} {v:.4g}" for k, v in p.metrics.items())
            tail = f" ({values})" if values else ""
            print(f"[{p.stage}] {p.step}/{p.total} {p.message}{tail}", flush=True)

    if getattr(args, "ray", None):  # the same trainer in a Ray actor; checkpoints come back
        from talkstudio.core.remote_training import train_on_ray

        threads = getattr(args, "threads", None) or 1
        job = train_on_ray(
            part, args.subject, config, device=args.device, address=args.ray, threads=threads
        )
    else:
        job = train(args.subject, config, args.device)
    result = run_cancellable(job, show, part)
    print(f"saved {result.model_dir} ({result.steps} steps, {result.seconds:.1f} s this run)")
    return result


def run_cancellable(
    job: Generator[Progress, None, T], show: Callable[[Progress], None], part: str
) -> T:
    """Drive ``job`` like ``core.progress.run_job``; on Ctrl+C close it at the next record (the
    trainer saves the step reached) and raise KeyboardInterrupt. A second Ctrl+C raises at once."""
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"talkstudio train {part}: stopping after this step (Ctrl+C again: at once)",
              file=sys.stderr, flush=True)  # fmt: skip

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        while True:
            try:
                record = next(job)
            except StopIteration as end:
                return end.value
            show(record)
            if stop.is_set():
                job.close()  # the trainer saves the step it reached
                print(
                    f"talkstudio train {part}: cancelled at step {record.step}; what was learnt "
                    "is saved, run the same command to continue",
                    file=sys.stderr,
                    flush=True,
                )
                raise KeyboardInterrupt
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
