"""Long jobs off the GUI thread: a core job generator stepped in a worker thread (docs/design.md "Long jobs are generators").

A core job is a generator that yields :class:`~talkstudio.core.progress.Progress` records and
returns its result. :class:`JobRunner` makes the generator *in* a worker thread (so the heavy
imports of the factory run there too), advances it one record per event of that thread's loop,
and reports through signals in the GUI thread: ``progress``, then exactly one of ``finished``
(the returned value), ``failed`` (the exception) or ``cancelled``, then ``done``.

Stepping by events, not in a ``for`` loop, lets other work of the same thread interleave: an
export runs on the engine's own thread (the one that owns the torch objects) and preview
renders still get their turn between two exported frames. Cancelling closes the generator in
its thread between two records, so the job's own cleanup (``GeneratorExit``: remove a partial
file, keep a checkpoint) runs there and never on the GUI thread.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QEventLoop, QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from talkstudio.core.errors import TalkstudioError

JobFactory = Callable[[], Generator[Any, None, Any]]
_LIVE: set[tuple[QThread, QObject]] = set()
"""Threads of running jobs (with their steppers), kept alive until the thread has finished."""


def describe_error(exc: BaseException) -> str:
    """One message for the user: ours as is, anything else with its type and a short trace."""
    if isinstance(exc, TalkstudioError):
        return str(exc)
    trace = "".join(traceback.format_exception(exc, limit=-3)).strip()
    return f"{type(exc).__name__}: {exc}\n\n{trace}"


class _Stepper(QObject):
    """Lives in the worker thread and advances the generator one record per event."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    _again = Signal()

    def __init__(self, factory: JobFactory, cancel: threading.Event) -> None:
        super().__init__()
        self._factory = factory
        self._cancel = cancel
        self._gen: Generator[Any, None, Any] | None = None
        self._again.connect(self._step, Qt.ConnectionType.QueuedConnection)

    @Slot()
    def start(self) -> None:
        try:
            self._gen = self._factory()
        except Exception as exc:
            self.failed.emit(exc)
            return
        self._step()

    @Slot()
    def _step(self) -> None:
        gen = self._gen
        if gen is None:
            return
        if self._cancel.is_set():
            self._gen = None
            try:
                gen.close()  # the job's own cleanup runs here, in the worker thread
            except Exception as exc:
                self.failed.emit(exc)
                return
            self.cancelled.emit()
            return
        try:
            record = next(gen)
        except StopIteration as stop:
            self._gen = None
            self.finished.emit(stop.value)
            return
        except Exception as exc:
            self._gen = None
            self.failed.emit(exc)
            return
        self.progress.emit(record)
        self._again.emit()  # queued: events that arrived meanwhile go first


class JobRunner(QObject):
    """Runs one job generator in a worker thread; signals arrive in the runner's (GUI) thread.

    ``thread``: run in this existing thread (e.g. the engine's); None starts a thread of its
    own that ends with the job.
    """

    progress = Signal(object)
    """A :class:`Progress` record."""
    finished = Signal(object)
    """The job's return value."""
    failed = Signal(object)
    """The job raised: the exception (``describe_error`` words it where it is shown)."""
    cancelled = Signal()
    """:meth:`cancel` took effect: the generator was closed between two records."""
    done = Signal()
    """After ``finished``, ``failed`` or ``cancelled``."""

    def __init__(
        self,
        factory: JobFactory,
        name: str = "job",
        thread: QThread | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._cancel = threading.Event()
        self._own_thread = thread is None
        self._thread = thread if thread is not None else QThread()
        if self._own_thread:
            self._thread.setObjectName(f"talkstudio-{name}")
        self._stepper = _Stepper(factory, self._cancel)
        self._stepper.moveToThread(self._thread)
        self._running = False
        self.outcome = ""
        """"finished", "failed" or "cancelled" once done; "" before."""
        self.result: Any = None
        self.error: BaseException | None = None
        s = self._stepper
        if self._own_thread:
            # the thread ends with the job even if this runner is gone by then; until it ended,
            # the thread and the stepper are kept alive here (never destroyed while running)
            thread = self._thread
            for ending in (s.finished, s.failed, s.cancelled):
                ending.connect(thread.quit, Qt.ConnectionType.DirectConnection)
            _LIVE.add((thread, s))
            thread.finished.connect(lambda: _LIVE.discard((thread, s)))
        cancel = self._cancel
        self.destroyed.connect(lambda *_: cancel.set())  # a job whose runner is gone stops
        s.progress.connect(self.progress)
        s.finished.connect(self._on_finished)
        s.failed.connect(self._on_failed)
        s.cancelled.connect(self._on_cancelled)

    @property
    def running(self) -> bool:
        return self._running

    @property
    def job_thread(self) -> QThread:
        """The thread the job runs in (not the runner's own, which :meth:`thread` gives)."""
        return self._thread

    def start(self) -> None:
        """Start the job (once)."""
        if self._running or self.outcome:
            return
        self._running = True
        if self._own_thread:
            self._thread.start()
        invoke_queued(self._stepper, "start")

    def cancel(self) -> None:
        """Ask the job to stop at its next record (its generator is closed in its thread)."""
        self._cancel.set()

    def wait(self, ms: int = 60_000) -> bool:
        """Run the event loop until the job is done (or ``ms`` pass); True when it is done."""
        if self._running:
            wait_for(self.done, ms)
        return not self._running

    def _end(self, outcome: str) -> None:
        self._running = False
        self.outcome = outcome
        if self._own_thread:
            self._thread.quit()
            self._thread.wait()
        self.done.emit()

    def _on_finished(self, value: object) -> None:
        self.result = value
        self.finished.emit(value)
        self._end("finished")

    def _on_failed(self, error: BaseException) -> None:
        self.error = error
        self.failed.emit(error)
        self._end("failed")

    def _on_cancelled(self) -> None:
        self.cancelled.emit()
        self._end("cancelled")


class OwnsJob:
    """For a page or dialog that runs at most one :class:`JobRunner` at a time, as ``self.job``
    (None when idle; the owner clears it when the job is done)."""

    job: JobRunner | None

    def cancel_job(self) -> None:
        """Ask the running job to stop; it ends in its own thread and reports ``done``."""
        if self.job is not None:
            self.job.cancel()

    def cancel_jobs(self) -> None:
        """Cancel the running job and wait until its thread has ended (on closing or leaving)."""
        if self.job is not None:
            self.job.cancel()
            self.job.wait()


def invoke_queued(obj: QObject, method: str) -> None:
    """Call the slot ``method`` of ``obj`` in ``obj``'s thread (queued)."""
    QMetaObject.invokeMethod(obj, method, Qt.ConnectionType.QueuedConnection)


def wait_for(signal: Any, ms: int) -> None:
    """Run a local event loop until ``signal`` fires or ``ms`` pass."""
    loop = QEventLoop()
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    signal.connect(loop.quit)
    timer.start(ms)
    loop.exec()
    timer.stop()
    signal.disconnect(loop.quit)
