"""The engine thread: ONE thread owns the :class:`~talkstudio.core.engine.Engine` and every torch
object of the studio's editing session (``docs/design.md``, "Rules of the house").

:class:`EngineClient` lives in the GUI thread and is all the window talks to. It sends requests
to :class:`EngineWorker`, which lives in the engine thread, and re-emits the worker's results.
Render requests go through a one-slot mailbox: a new request replaces one that is still
waiting (latest wins), so a slider drag that produces sixty requests a second renders only as
fast as the engine can and always the newest value. Each result carries the request's frame,
α and sequence number so that the receiver can drop stale ones.

Modes: ``"fast"`` is :meth:`Engine.render_fast` (the edited head region over the cached frame),
``"full"`` is :meth:`Engine.render`, and ``"fast+full"`` renders fast, hands that out, then —
unless a newer request arrived meanwhile — the full frame. ``"ahead"`` is
:meth:`Engine.render_once`, a frame for the playback cache (``app/playback.py``) that keeps no
edit cache in the engine; it is posted only into an empty mailbox (:meth:`EngineClient.
request_ahead`), so it never replaces an interactive request, while any interactive request
replaces a waiting one.

A request that fails is reported by ``failed`` as (:class:`RequestKind`, the exception): the
exception object itself, its frames' local variables cleared in the engine thread, so that the
receiver decides how to word it (:func:`~.jobs.describe_error`) and no torch object of a failed
render lives on outside the engine thread.

Nothing here imports torch at module level: the engine (and torch) are imported in the engine
thread when the first subject opens, after the window has painted.
"""

from __future__ import annotations

import enum
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

import numpy as np
from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Signal, Slot

from talkstudio.core.edit import FrameEdit, frame_edit
from talkstudio.core.errors import TalkstudioError

from .jobs import JobRunner, wait_for

if TYPE_CHECKING:
    from talkstudio.core.blinks import BlinkSchedule
    from talkstudio.core.edit import Edits, TypicalOpening
    from talkstudio.core.engine import Engine, View
    from talkstudio.core.framing import Framing

RenderMode = Literal["fast", "full", "fast+full", "ahead"]
"""How to render a request (see the module docstring)."""
RENDER_MODES: tuple[RenderMode, ...] = get_args(RenderMode)
RenderKind = Literal["fast", "full"]
"""What a result is: the edited head region over the cached frame, or a full frame."""
Alphas: TypeAlias = FrameEdit
"""What a frame is rendered with: its whole frame edit (α, brows, blinks, head motion)."""


class RequestKind(enum.Enum):
    """What the engine thread was asked to do when it failed."""

    OPEN = "open"
    """Open a subject (and drive it)."""
    DRIVE = "drive"
    """Drive the open subject with other speech."""
    RENDER = "render"
    """Render a frame for the preview."""


def _detached(exc: BaseException) -> BaseException:
    """``exc`` with the local variables of its traceback's frames (and its causes') cleared."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
        e = e.__cause__ or e.__context__
    return exc


@dataclass(frozen=True)
class RenderRequest:
    """A frame to render: which, with which α, at which size, how."""

    seq: int
    frame: int
    alphas: Alphas
    size: int
    mode: RenderMode
    view: View = "crop"  # the square, or pasted back into the source video (Engine.render)


@dataclass(frozen=True)
class RenderResult:
    """A rendered frame and the request it answers."""

    seq: int
    frame: int
    alphas: Alphas
    size: int
    kind: RenderKind  # a cached full frame counts as full
    rgb: np.ndarray  # [size, size, 3] uint8; in the source view [H, W, 3]
    ms: float  # engine time of this render
    ahead: bool = False  # rendered for the playback cache ("ahead" mode)
    view: View = "crop"


@dataclass(frozen=True)
class SessionInfo:
    """What the GUI needs to know about the opened subject and its driving clip."""

    subject: Path
    name: str
    lm_world: np.ndarray  # [T, 68, 3] head frame, before edits and synthesised blinks
    audio: np.ndarray  # [S] mono float32 16 kHz
    audio_path: Path | None  # None: the subject's own speech (replay)
    device: str  # "CPU" or "GPU (name)"
    has_stage1: bool
    subject_size: int
    open_ms: float
    typical: TypicalOpening | None = None  # what α > 1 opens closed eyes and mouths by
    blinks: BlinkSchedule | None = None  # how the track synthesises blinks (added by the edits)
    framing: Framing | None = None  # how an export is framed by default (core/framing.py)


def _alphas(values: Any) -> Alphas:
    return frame_edit(values)


class EngineWorker(QObject):
    """Lives in the engine thread; owns the engine. Use it through :class:`EngineClient`."""

    opened = Signal(object)  # SessionInfo
    rendered = Signal(object)  # RenderResult
    failed = Signal(object, object)  # (RequestKind, the exception)
    status = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self._lock = threading.Lock()
        self._pending: RenderRequest | None = None
        self._job_args: tuple[str, str | None, str] | None = None

    # --- mailbox (the client writes, the worker takes) -----------------------------------------
    def post(self, request: RenderRequest) -> bool:
        """Put ``request`` in the mailbox; True when it replaced one still waiting."""
        with self._lock:
            replaced = self._pending is not None
            self._pending = request
        return replaced

    def post_if_empty(self, request: RenderRequest) -> bool:
        """Put ``request`` in the mailbox only when nothing waits there; True when posted."""
        with self._lock:
            if self._pending is not None:
                return False
            self._pending = request
        return True

    def _take(self) -> RenderRequest | None:
        with self._lock:
            req, self._pending = self._pending, None
        return req

    def take_interactive(self) -> RenderRequest | None:
        """Take an interactive request out of the mailbox before it runs (None: none waits)."""
        with self._lock:
            req = self._pending
            if req is None or req.mode == "ahead":
                return None
            self._pending = None
        return req

    def _waiting(self) -> bool:
        """Whether an interactive request waits (a frame for the playback cache does not
        supersede anything)."""
        with self._lock:
            return self._pending is not None and self._pending.mode != "ahead"

    # --- slots (run in the engine thread) --------------------------------------------------------
    @Slot(str, str, str)
    def open_session(self, subject: str, audio: str, device: str) -> None:
        """Open ``subject`` and drive it with ``audio`` ("" = replay its own speech)."""
        t0 = time.perf_counter()
        try:
            from talkstudio.core.engine import Engine

            self.status.emit(f"opening {Path(subject).name}…")
            if self.engine is None or self.engine.subject.root != Path(subject):
                self.release()
                self.engine = Engine.open(subject, device=device)  # replays its own speech
                if audio:
                    self._drive(audio)
            else:  # the same subject again: drive it afresh
                self._drive(audio)
        except Exception as exc:
            self.failed.emit(RequestKind.OPEN, _detached(exc))
            return
        self.opened.emit(self._info(audio, (time.perf_counter() - t0) * 1e3))

    @Slot(str)
    def drive(self, audio: str) -> None:
        """Drive the open subject with ``audio`` ("" = replay its own speech)."""
        if self.engine is None:
            self.failed.emit(
                RequestKind.DRIVE, TalkstudioError("open a subject before loading driving audio")
            )
            return
        t0 = time.perf_counter()
        try:
            self.status.emit(f"predicting the mouth for {Path(audio).name}…" if audio else "")
            self._drive(audio)
        except Exception as exc:
            self.failed.emit(RequestKind.DRIVE, _detached(exc))
            return
        self.opened.emit(self._info(audio, (time.perf_counter() - t0) * 1e3))

    def _drive(self, audio: str) -> None:
        """Stage 1 on ``audio``, or ("") replay the subject's own frames and speech."""
        assert self.engine is not None
        if audio:
            self.engine.drive(audio)
        else:
            self.engine.replay()

    def _info(self, audio: str, ms: float) -> SessionInfo:
        engine = self.engine
        assert engine is not None and engine.track is not None
        dev = engine.device
        if dev.type == "cuda":
            import torch

            device = f"GPU ({torch.cuda.get_device_name(dev)})"
        else:
            device = dev.type.upper()
        return SessionInfo(
            subject=engine.subject.root,
            name=engine.subject.meta.name,
            lm_world=np.asarray(engine.track.before_blinks, np.float32),
            audio=np.asarray(engine.audio, np.float32),
            audio_path=Path(audio) if audio else None,
            device=device,
            has_stage1=engine.stage1 is not None,
            subject_size=engine.subject.meta.size,
            open_ms=ms,
            typical=engine.track.typical,
            blinks=engine.track.blinks,
            framing=engine.framing(),
        )

    @Slot()
    def process(self) -> None:
        """Render the newest request in the mailbox (older ones were replaced)."""
        req = self._take()
        if req is None or self.engine is None:
            return
        engine = self.engine
        try:
            if not 0 <= req.frame < engine.num_frames:
                return  # from a clip that was replaced meanwhile
            if req.mode == "ahead":
                out = engine.render_once(req.frame, req.alphas, req.size, req.view)
                self._emit(req, out.kind, out.rgb, out.ms)
                return
            if req.mode in ("fast", "fast+full"):
                out = engine.render_fast(req.frame, req.alphas, req.size, req.view)
                self._emit(req, out.kind, out.rgb, out.ms)
                if req.mode == "fast" or out.kind != "fast" or self._waiting():
                    return  # already full, or a newer request supersedes the full render
            out = engine.render(req.frame, req.alphas, req.size, req.view)
            self._emit(req, out.kind, out.rgb, out.ms)
        except Exception as exc:
            self.failed.emit(RequestKind.RENDER, _detached(exc))

    @Slot()
    def release(self) -> None:
        """Drop the engine (its torch objects are freed in this thread, its files closed)."""
        if self.engine is not None:
            self.engine.close()
        self.engine = None

    def _emit(self, req: RenderRequest, kind: str, rgb: np.ndarray, ms: float) -> None:
        shown: RenderKind = "fast" if kind == "fast" else "full"
        self.rendered.emit(
            RenderResult(
                req.seq,
                req.frame,
                req.alphas,
                req.size,
                shown,
                rgb,
                float(ms),
                ahead=req.mode == "ahead",
                view=req.view,
            )
        )


class EngineClient(QObject):
    """The GUI thread's handle on the engine thread."""

    opened = Signal(object)  # SessionInfo
    rendered = Signal(object)  # RenderResult
    failed = Signal(object, object)  # (RequestKind, the exception)
    status = Signal(str)
    _open = Signal(str, str, str)
    _drive = Signal(str)
    _wake = Signal()

    def __init__(self, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.size = 256
        """Side of the preview renders in pixels."""
        self.view: View = "crop"
        """How previews show the frame: the square render, or ("source") pasted back into the
        source video's frame as an export in the source framing writes it."""
        self.engine_thread = QThread()
        self.engine_thread.setObjectName("talkstudio-engine")
        self.worker = EngineWorker()
        self.worker.moveToThread(self.engine_thread)
        self._seq = 0
        self.requests = 0
        """Render requests sent so far (interactive ones; not counting :meth:`request_ahead`)."""
        self.ahead_requests = 0
        """Frames asked for by the playback cache (:meth:`request_ahead`)."""
        self.replaced = 0
        """Requests dropped because a newer one replaced them while they waited."""
        self.last_request: RenderRequest | None = None
        self.last_request_at = -float("inf")
        """``time.monotonic()`` when the newest interactive request was sent (-inf: none yet)."""
        self.jobs: list[JobRunner] = []
        queued = Qt.ConnectionType.QueuedConnection
        self._open.connect(self.worker.open_session, queued)
        self._drive.connect(self.worker.drive, queued)
        self._wake.connect(self.worker.process, queued)
        self.worker.opened.connect(self.opened)
        self.worker.rendered.connect(self.rendered)
        self.worker.failed.connect(self.failed)
        self.worker.status.connect(self.status)
        self.engine_thread.start()

    def open_session(self, subject: str | Path, audio: str | Path | None = None) -> None:
        """Open a subject (and drive it with ``audio``; None replays its own speech)."""
        self._open.emit(str(subject), str(audio) if audio else "", self.device)

    def drive(self, audio: str | Path | None) -> None:
        self._drive.emit(str(audio) if audio else "")

    def request(self, frame: int, alphas: Any, mode: RenderMode = "full") -> RenderRequest:
        """Ask for a render; a request still waiting in the mailbox is replaced (latest wins)."""
        if mode not in RENDER_MODES or mode == "ahead":
            raise ValueError(
                f"render mode must be one of fast, full, fast+full, got {mode!r} "
                "(frames for the playback cache go through request_ahead)"
            )
        self._seq += 1
        req = RenderRequest(self._seq, int(frame), _alphas(alphas), self.size, mode, self.view)
        self.requests += 1
        self.last_request = req
        self.last_request_at = time.monotonic()
        if self.worker.post(req):
            self.replaced += 1  # the wake-up posted for the old request will take this one
        else:
            self._wake.emit()
        return req

    def drop_waiting(self) -> RenderRequest | None:
        """Withdraw the interactive request still waiting in the mailbox (playback started:
        its answer would not be shown); returns it, or None."""
        return self.worker.take_interactive()

    def request_ahead(self, frame: int, alphas: Any, size: int) -> RenderRequest | None:
        """Ask for a frame for the playback cache at ``size``, only when no request waits in
        the mailbox (None: not sent; an interactive request goes first)."""
        if size < 1:
            raise ValueError(f"a render size must be a positive number of pixels; got {size}")
        req = RenderRequest(
            self._seq + 1, int(frame), _alphas(alphas), int(size), "ahead", self.view
        )
        if not self.worker.post_if_empty(req):
            return None
        self._seq += 1
        self.ahead_requests += 1
        self._wake.emit()
        return req

    def export(
        self,
        out: str | Path,
        edits: Edits,
        size: int,
        start: int,
        end: int,
        workers: int = 1,
        framing: str | None = None,
        height: int | None = None,
    ) -> JobRunner:
        """An export job on the engine thread (not started); preview renders interleave.
        ``workers`` > 1 renders the frames in that many local processes; ``framing`` "source"
        or "crop" (None: the subject's default, see core/framing.py); ``height`` scales a
        source-framed video (None: the source's size)."""
        worker = self.worker

        def factory() -> Any:
            if worker.engine is None:
                raise RuntimeError("no subject is open")
            return worker.engine.export(
                out,
                edits,
                size=size,
                start=start,
                end=end,
                workers=workers,
                framing=framing,
                height=height,
            )

        job = JobRunner(factory, "export", thread=self.engine_thread, parent=self)
        self.jobs.append(job)
        job.done.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)
        return job

    def shutdown(self, ms: int = 60_000) -> None:
        """Cancel jobs, free the engine in its own thread, stop the thread and wait for it."""
        self.worker._take()  # a render still waiting is dropped
        for job in list(self.jobs):
            job.cancel()
            if job.running:
                wait_for(job.done, ms)
        if self.engine_thread.isRunning():
            QMetaObject.invokeMethod(
                self.worker, "release", Qt.ConnectionType.BlockingQueuedConnection
            )
        self.engine_thread.quit()
        self.engine_thread.wait(ms)
