"""Progress records that long work in ``core`` yields, and helpers to drive such generators.

A long job is a generator: it yields :class:`Progress` records and *returns* its result
(``StopIteration.value``). Closing the generator (``gen.close()``) between two steps cancels it;
jobs write through :mod:`core.atomic`, so a cancel never leaves a half-written file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

R = TypeVar("R")
Job = Generator["Progress", None, R]


@dataclass
class Progress:
    """One step of a long job."""

    stage: str
    """What is running, e.g. "track", or a trainer's ``core.presets.TRAIN_STAGE[part]``."""
    step: int
    """Steps done so far in this stage."""
    total: int
    """Steps in this stage (0 when unknown)."""
    message: str = ""
    """A line for a human."""
    losses: dict[str, float] = field(default_factory=dict)
    """The training loss and its terms at this step, by name ("loss" is the total)."""
    preview: np.ndarray | None = None
    """An optional RGB uint8 [H, W, 3] image to show (a render, a contact sheet)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Other named values at this step that are not terms of the loss: validation scores
    (LMD, PSNR, correlation) and counters (samples per ray, grid occupancy)."""

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


def run_job(job: Job[R], on_progress: Callable[[Progress], Any] | None = None) -> R:
    """Drive ``job`` to its end, passing each record to ``on_progress``; return its result."""
    while True:
        try:
            record = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(record)


class Eta:
    """Estimates the remaining seconds of a stage from the pace so far."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def remaining(self, step: int, total: int) -> float | None:
        if step <= 0 or total <= 0:
            return None
        elapsed = time.monotonic() - self._start
        return elapsed / step * max(total - step, 0)
