"""The one build of the built-in demo subject, however often and from wherever it is asked for.

The demo's media are regenerated on first use (minutes on a CPU, :mod:`talkstudio.core.demo`).
:class:`DemoBuilder` owns that job for the whole window: the welcome page's button, the File
menu, a project that uses the demo and the studio's start all call :meth:`DemoBuilder.open`, and
while a build runs every further call only updates what to open when it is done — there is never
a second build. Progress comes with an ETA (:class:`DemoProgress`) for the welcome page's panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from talkstudio.core.project import ExportSettings

from .images import format_eta
from .jobs import JobRunner, describe_error

Opener = Callable[..., bool]
"""``MainWindow.open_subject(subject, audio, edits, project, export)``."""


@dataclass(frozen=True)
class DemoProgress:
    """Where the build is: ``step`` of ``total`` frames, seconds left (None: not known yet)."""

    step: int
    total: int
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total > 0 else 0.0

    def text(self) -> str:
        if self.total <= 0:
            return "Building the demo subject: starting…"
        return (
            f"Building the demo subject: frame {self.step} of {self.total} "
            f"({100 * self.fraction:.0f} %) · {format_eta(self.eta_s)}"
        )


@dataclass
class _OpenRequest:
    """What to open once the demo is there (the latest request wins)."""

    audio: Path | None = None
    edits: Any = None
    project: Path | None = None
    export: ExportSettings | None = None


class DemoBuilder(QObject):
    """Builds the demo subject at most once at a time and opens it when it is ready.

    ``state`` is "idle" (not built, or not known), "building", "ready" or "failed".
    """

    stateChanged = Signal(str)  # noqa: N815 (Qt signal naming)
    progressed = Signal(object)
    """A :class:`DemoProgress` while building."""
    ready = Signal(object)
    """The demo subject folder (a :class:`Path`), after a build or a check that found it."""
    failed = Signal(str)

    def __init__(
        self,
        opener: Opener,
        cache: str | Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._opener = opener
        self._cache = cache
        self.job: JobRunner | None = None
        self.builds = 0
        """Build jobs started so far (a job that finds the demo built counts too)."""
        self.state = "idle"
        self.path: Path | None = None
        self.last: DemoProgress | None = None
        self._pending: _OpenRequest | None = None
        self._t0 = 0.0
        self._step0 = 0

    @property
    def building(self) -> bool:
        return self.job is not None and self.job.running

    def refresh(self) -> None:
        """Look (cheaply) whether the demo is built, for the buttons; starts nothing."""
        from talkstudio.core.demo import demo_built

        if not self.building:
            self._set_state("ready" if demo_built(self._cache) else "idle")

    def open(
        self,
        audio: str | Path | None = None,
        edits: Any = None,
        project: Path | None = None,
        export: ExportSettings | None = None,
    ) -> None:
        """Open the demo (with these session inputs) once it is built; build it if need be.

        While a build runs this only replaces what is opened at its end.
        """
        self._pending = _OpenRequest(Path(audio) if audio else None, edits, project, export)
        self.build()

    def build(self) -> JobRunner | None:
        """Start the build unless one is running; the running or new job (None on no start)."""
        if self.building:
            return self.job
        cache = self._cache

        def factory() -> Any:
            from talkstudio.core.demo import ensure_demo_job

            return ensure_demo_job(cache)

        self.builds += 1
        self.last = None
        self._t0, self._step0 = time.monotonic(), -1
        job = JobRunner(factory, "demo", parent=self)
        self.job = job
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        job.cancelled.connect(lambda: self._set_state("idle"))
        self._set_state("building")
        job.start()
        return job

    def cancel(self) -> None:
        """Stop the build (nothing half-built is kept) and forget what was to be opened."""
        self._pending = None
        if self.job is not None:
            self.job.cancel()

    def _progress(self, p: Any) -> None:
        now = time.monotonic()
        if self._step0 < 0:  # the pace is measured from the first record on
            self._t0, self._step0 = now, p.step
        done = p.step - self._step0
        eta = (now - self._t0) / done * (p.total - p.step) if done > 0 and p.total else None
        self.last = DemoProgress(p.step, p.total, eta)
        self.progressed.emit(self.last)

    def _finished(self, path: object) -> None:
        self.path = Path(str(path))
        self._set_state("ready")
        self.ready.emit(self.path)
        pending, self._pending = self._pending, None
        if pending is not None:
            self._opener(self.path, pending.audio, pending.edits, pending.project, pending.export)

    def _failed(self, error: BaseException) -> None:
        self._pending = None
        self._set_state("failed")
        self.failed.emit(describe_error(error))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)
