"""What the resumable trainers (head NeRF, torso UNet, stage 1) share.

A run folder holds one checkpoint (core.checkpoint): weights + ``config.json`` whose meta has the
``step`` the weights reached, and the optimizer's train state whose info has the same ``step``.
:func:`save_checkpoint` writes both (each file atomically; weights first), :func:`restore` reads
them back; when the two steps disagree (a run stopped between the two writes, or a damaged train
state) it keeps the weights and starts the optimizer moments afresh. :class:`TrainLoop` is the
step bookkeeping of a trainer that saves every few steps, at the end and when it is cancelled.

    subject, folder, dev = open_run(subject_dir, "torso", config, device, out_dir)
    start = restore(folder, "torso", net, opt, network_check(folder, "torso", config, parse))
    loop = TrainLoop(start, config.steps, config.checkpoint_every, save)
    with loop:
        for step in loop:
            ...  # one optimizer step
            yield Progress(stage, step, config.steps, loop.done(step, loss))
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import torch

from .checkpoint import (
    load_config,
    load_into,
    load_model,
    load_train_state,
    save_model,
    save_train_state,
)
from .errors import CheckpointError, DeviceError
from .progress import Eta
from .subject import Subject


class DecayConfig(Protocol):
    """What :func:`half_decay_lr` reads of a part's config."""

    @property
    def steps(self) -> int: ...

    @property
    def lr(self) -> float: ...

    @property
    def lr_final_fraction(self) -> float: ...


def half_decay_lr(config: DecayConfig, step: int) -> float:
    """Constant for the first half, then linear decay to lr × lr_final_fraction (the torso and
    the refiner)."""
    half = config.steps / 2
    if config.steps <= 1 or step < half:
        return config.lr
    t = min(1.0, (step - half) / max(half, 1.0))
    return config.lr * (1.0 - t * (1.0 - config.lr_final_fraction))


def local_processes(device: torch.device) -> int:
    """Processes worth running side by side for work split into large independent pieces (whole
    frames to render): two on the CPU when torch has at least two threads (they are shared
    out), else one; one on a GPU. On 2 cores two one-thread processes render a frame sequence
    about 1.5× faster than one process with two threads. (Training steps are not such work:
    a head step is bound by per-operation overhead, and a team of processes splitting it was
    no faster, docs/design.md "Head".)"""
    if device.type != "cpu":
        return 1
    return min(2, torch.get_num_threads())


PARALLEL_FROM = 8
"""Pieces of work left from which :func:`process_map`'s processes pay for their start (a few
seconds each: torch is imported and the model loaded again)."""

_worker_state: Any = None
"""What a :func:`process_map` worker's ``setup`` returned."""


def _start_worker(threads: int, setup: Callable[..., Any], args: tuple[Any, ...]) -> None:
    global _worker_state
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the parent, which stops us
    torch.set_num_threads(threads)
    _worker_state = setup(*args)


def _work_in_worker(work: Callable[[Any, Any], Any], item: Any) -> Any:
    return work(_worker_state, item)


def process_map(
    setup: Callable[..., Any],
    args: tuple[Any, ...],
    work: Callable[[Any, Any], Any],
    items: Sequence[Any],
    workers: int,
    state: Any,
) -> Generator[Any, None, None]:
    """``work(state, item)`` of each of ``items``, in order: here on ``state`` when ``workers``
    is 1 or fewer than :data:`PARALLEL_FROM` items are left, else in ``workers`` spawned
    processes (each with its share of torch's threads) whose state is ``setup(*args)``, made
    once per process. ``setup`` and ``work`` are module-level functions (they are pickled by
    name). Closing the iterator drops the items not started and waits for those being worked
    on."""
    if workers <= 1 or len(items) < PARALLEL_FROM:
        for item in items:
            yield work(state, item)
        return
    threads = max(1, torch.get_num_threads() // workers)
    ctx = mp.get_context("spawn")  # no fork of a process that runs torch threads (or Qt)
    with ProcessPoolExecutor(workers, ctx, _start_worker, (threads, setup, args)) as pool:
        futures = [pool.submit(_work_in_worker, work, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0: leave as is), then restore the setting."""
    before = torch.get_num_threads()
    if n > 0 and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class RunConfig(Protocol):
    """What :func:`open_run` and :func:`network_check` need of a part's config."""

    @property
    def seed(self) -> int: ...

    def check(self) -> None: ...

    def architecture(self) -> dict[str, Any]: ...


@dataclass
class TrainResult:
    """What a finished (or already complete) training run left behind."""

    model_dir: Path
    """Folder of model.safetensors + config.json."""
    steps: int
    """Optimizer steps the saved model has had."""
    seconds: float
    """Wall-clock seconds of this call's training steps."""
    final_loss: float
    """Mean loss over the last steps of this call (nan when no step ran)."""


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cpu", "cuda" or "cuda:N" as given.

    An unknown name, or CUDA on a machine without a usable CUDA GPU, raises
    :class:`DeviceError` saying what to use instead.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {str(device)!r}: use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {str(device)!r}: CUDA is not available on this machine; use the CPU "
            "(--device cpu) or auto, which takes the GPU when there is one"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s); "
            "use --device cuda (the first) or auto"
        )
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {str(device)!r} is not supported: use auto, cpu or cuda")
    return dev


def open_run(
    subject_dir: str | os.PathLike[str],
    kind: str,
    config: RunConfig,
    device: str | torch.device,
    out_dir: str | os.PathLike[str] | None,
) -> tuple[Subject, Path, torch.device]:
    """Check ``config``, open the subject, pick the run folder and the device, seed torch."""
    config.check()
    dev = resolve_device(device)
    subject = Subject.open(Path(subject_dir))
    folder = Path(out_dir) if out_dir is not None else subject.model_dir(kind)
    torch.manual_seed(config.seed)
    return subject, folder, dev


def network_check(
    folder: Path, what: str, config: RunConfig, parse: Callable[[dict[str, Any]], RunConfig]
) -> Callable[[dict[str, Any]], None]:
    """A ``check`` for :func:`restore`: refuse a checkpoint whose architecture is not ``config``'s.

    ``parse`` turns the saved config dict into a config; the error names every differing field
    as ``name saved (now current)``.
    """

    def check(saved_dict: dict[str, Any]) -> None:
        saved, now = parse(saved_dict).architecture(), config.architecture()
        if saved == now:
            return
        diff = ", ".join(
            f"{k} {saved[k]!r} (now {v!r})" for k, v in now.items() if saved.get(k) != v
        )
        raise CheckpointError(
            f"{folder} holds a {what} model trained with another network: {diff}. Train with "
            f"the same preset to continue it, or delete {folder} to train from scratch."
        )

    return check


def restore(
    folder: Path,
    kind: str,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    check: Callable[[dict[str, Any]], None],
) -> int:
    """Load a previous run's weights and optimizer from ``folder``; return its step (0: none).

    ``check`` sees the saved config dict first and raises :class:`CheckpointError` when it does
    not fit. A damaged or unloadable checkpoint raises :class:`CheckpointError` saying to delete
    ``folder`` to start over. Optimizer state of another step than the weights', or none that
    loads, is dropped: the weights are kept and the moments start again.
    """
    if not (folder / "config.json").is_file():
        return 0
    try:
        raw = load_config(folder, kind)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (to start over, delete {folder})") from exc
    check(raw.get("config", {}))
    try:
        state, raw = load_model(folder, kind)
        load_into(model, state, str(folder / "model.safetensors"))
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (to start over, delete {folder})") from exc
    step = int(raw.get("meta", {}).get("step", 0))
    info = load_train_state(folder, opt)
    if info is None or int(info.get("step", -1)) != step:
        opt.state.clear()  # weights and optimizer disagree: keep the weights, restart moments
    return step


def save_checkpoint(
    folder: Path,
    kind: str,
    model: torch.nn.Module,
    config: Mapping[str, Any],
    opt: torch.optim.Optimizer,
    step: int,
    meta: Mapping[str, Any],
    info: Mapping[str, Any],
) -> None:
    """Weights + ``config`` with ``meta`` and ``step``, then the optimizer with ``info`` and
    ``step``: what :func:`restore` reads back."""
    save_model(folder, kind, model.state_dict(), config, {**meta, "step": step})
    save_train_state(folder, opt, {**info, "step": step})


class TrainLoop:
    """Steps ``start + 1 .. total`` of a training job, saved every ``every`` steps and at the last.

    Used as a context around the loop, it also saves the step reached when the job (a
    generator) is closed between steps, unless that step was saved already; so a cancel keeps
    what was learnt, and Resume continues from the cancelled step. Every yield in the loop
    body must come after that step's optimizer step. Stage 1, the head and the torso all run
    their steps in this loop (with :func:`open_run`, :func:`restore` and
    :func:`save_checkpoint`).
    """

    def __init__(self, start: int, total: int, every: int, save: Callable[[int], None]) -> None:
        self.start, self.total, self.every, self.save = start, total, every, save
        self.step = start
        """The step running or last run."""
        self.saved = start
        """The last step saved (``start``: the checkpoint the run resumed from, or none)."""
        self.recent: list[float] = []
        """Losses of the last 20 steps."""
        self._eta = Eta()
        self._t0 = time.perf_counter()

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start + 1, self.total + 1):
            self.step = step
            yield step

    def _due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.total

    def done(self, step: int, loss: float) -> str:
        """Record ``step``'s loss, save when due; the progress line (loss and time left)."""
        self.recent = [*self.recent[-19:], loss]
        if self._due(step):
            self.save(step)
            self.saved = step
        left = self._eta.remaining(step - self.start, self.total - self.start)
        return f"loss {loss:.4g}" + (f", {left:.0f} s left" if left else "")

    @property
    def seconds(self) -> float:
        """Wall-clock seconds since the loop was made."""
        return time.perf_counter() - self._t0

    @property
    def final_loss(self) -> float:
        """Mean of the last 20 losses (nan when no step ran)."""
        return float(np.mean(self.recent)) if self.recent else float("nan")

    def __enter__(self) -> TrainLoop:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cancelled = kind is not None and issubclass(kind, GeneratorExit)
        if cancelled and self.step > self.saved:
            self.save(self.step)  # cancelled: keep what was learnt
            self.saved = self.step
