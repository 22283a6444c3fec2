"""Playback from a frame cache: renders ahead of the playhead on the engine thread and, while
playing, shows the newest cached frame at or before the playhead (``docs/design.md``,
"Playback").

:class:`PlaybackCache` owns a :class:`~talkstudio.core.frame_cache.FrameCache` and asks
:func:`~talkstudio.core.frame_cache.plan_next` what to render next, one request at a time,
through :meth:`EngineClient.request_ahead` (which never replaces an interactive request). While
paused, what the user does comes first: no frame is rendered ahead while an α slider is held,
while an interactive render is on its way, nor until :data:`QUIET_MS` after the last one was
asked for or answered, so a drag, a scrub or the next slider move finds the engine thread free
instead of waiting behind a frame rendered ahead (a frame already rendering is not cut short).
While playing it puts cached frames on the preview itself (the :class:`RenderController` holds its
requests then): the exact frame when it is cached at full size, else its proxy, else the newest
frame before it within :data:`HOLD_FRAMES` — a held or low-resolution frame is said so on the
preview ("rendering ahead …"), and nothing older than that is ever shown as current. When
playback stops the controller refines the frame it stopped on.

Edits invalidate the cached frames whose α changed; a new track, new audio or closing the
session empties the cache. :meth:`render_range` renders a range at full size for smooth
playback (the cached ranges are drawn on the timeline).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from talkstudio.core.edit import frame_edit_rows
from talkstudio.core.frame_cache import (
    Alphas,
    CachedFrame,
    FrameCache,
    PlanInput,
    plan_next,
    proxy_size,
)
from talkstudio.widgets.preview import Preview
from talkstudio.widgets.state import EditState, PlaybackState
from talkstudio.widgets.timeline import Timeline

from .render_controller import RenderController
from .worker import EngineClient, RenderRequest, RenderResult

HOLD_FRAMES = 25
"""A cached frame up to this many frames (1 s) before the playhead may stand in for it."""
PUMP_MS = 200
"""How often the cache looks for work when nothing else woke it."""
FAILED_PAUSE_S = 5.0
"""Rendering ahead waits this long after a failed render before it asks again."""
LOST_REQUEST_S = 60.0
"""A render-ahead request with no answer for this long is taken as lost (asked again)."""
QUIET_MS = 500.0
"""While paused, rendering ahead waits until no interactive render was asked for or answered
for this long (the user is still dragging, scrubbing or about to edit again)."""


class PlaybackCache(QObject):
    """Render-ahead frame cache and cached playback for one studio window."""

    displayed = Signal(int, int, int)
    """While playing, a cached frame was put on the preview: (playhead, frame shown, its size)."""
    cacheChanged = Signal()  # noqa: N815 (Qt signal naming)
    """Frames were added to or dropped from the cache."""
    rangeReady = Signal(int, int)  # noqa: N815 (Qt signal naming)
    """Every frame of the range asked for by :meth:`render_range` is cached at full size."""
    noteChanged = Signal(str)  # noqa: N815 (Qt signal naming)
    """The "rendering ahead" line for the user ("" when playback shows every frame)."""

    def __init__(
        self,
        state: EditState,
        playback: PlaybackState,
        client: EngineClient,
        preview: Preview,
        controller: RenderController,
        cache: FrameCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.playback = playback
        self.client = client
        self.preview = preview
        self.controller = controller
        self.cache = cache if cache is not None else FrameCache()
        self.active = False
        """Renders ahead only while a session is open."""
        self.range: tuple[int, int] | None = None
        """[start, end) asked for by :meth:`render_range`, rendered at full size first."""
        self.full_ms = 1000.0
        self.proxy_ms = 150.0
        """Running estimates of what a full-size and a proxy render cost (ms)."""
        self.note = ""
        self.quiet_ms = QUIET_MS
        """See :data:`QUIET_MS`."""
        self._inflight: RenderRequest | None = None
        self._inflight_t = 0.0
        self._shown: tuple[int, int] | None = None  # (frame, size) on the preview while playing
        self._range_done = True
        self._interactive_seq = 0  # the newest interactive result seen
        self._interactive_t = -float("inf")  # time.monotonic() when it arrived
        self._alphas: list[Alphas] | None = None  # alphas_at's table
        self._resume_at = 0.0  # no render ahead before this time.monotonic() (after a failure)
        self._timer = QTimer(self)
        self._timer.setInterval(PUMP_MS)
        self._timer.timeout.connect(self.pump)
        self._timer.start()
        controller.hold = lambda: playback.playing
        controller.cached = self._cached_full
        client.rendered.connect(self._rendered)
        client.failed.connect(self._failed)
        state.frameChanged.connect(self._frame_changed)
        state.keyframesChanged.connect(self._edited)
        state.trackChanged.connect(self.clear)
        state.audioChanged.connect(self.clear)
        playback.playingChanged.connect(self._playing_changed)

    # --- what is cached --------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.client.size

    @property
    def proxy(self) -> int:
        return proxy_size(self.client.size)

    def alphas_at(self, frame: int) -> Alphas:
        """The frame edit of ``frame`` under the current edits (α, brows, blinks, head motion),
        as render requests carry it (a table of the whole clip, made again after each edit)."""
        n = self.state.num_frames
        if self._alphas is None or len(self._alphas) != n:
            self._alphas = frame_edit_rows(self.state.frame_edits()) if n else []
        if 0 <= frame < n:
            return self._alphas[frame]
        return self.state.frame_edit(frame)

    def ranges(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """[start, end) runs cached at full size, and at proxy size, under the current edits."""
        return self.cache.ranges(self.size, self.alphas_at), self.cache.ranges(
            self.proxy, self.alphas_at
        )

    def range_cached(self, start: int, end: int) -> bool:
        return all(self.cache.has(f, self.size, self.alphas_at) for f in range(start, end))

    def _cached_full(
        self, frame: int, alphas: Alphas, size: int
    ) -> tuple[np.ndarray, float] | None:
        e = self.cache.get(frame, size, alphas)
        return None if e is None else (e.rgb, e.ms)

    # --- requests ----------------------------------------------------------------------------------
    def render_range(self, start: int, end: int) -> None:
        """Render frames [start, end) at full size ahead of anything else (clamped to the clip)."""
        n = self.state.num_frames
        start, end = max(int(start), 0), min(int(end), n)
        if end <= start:
            raise ValueError(f"the preview range {start}..{end} holds no frame of the clip")
        self.range = (start, end)
        self._range_done = False
        self._check_range()
        self.pump()

    def clear(self) -> None:
        """Forget every cached frame and the range (a new clip, or the session closed)."""
        self._alphas = None
        self.cache.clear()
        self.range = None
        self._range_done = True
        self._inflight = None
        self._shown = None
        self.cacheChanged.emit()

    def _interactive_busy(self) -> bool:
        last = self.client.last_request
        return last is not None and last.seq > self._interactive_seq

    def interacting(self) -> bool:
        """Whether interactive renders have the engine thread now: an α slider is held, an
        interactive render is on its way, or one was asked for or answered less than
        :attr:`quiet_ms` ago."""
        if self.controller.dragging() or self._interactive_busy():
            return True
        last = max(self.client.last_request_at, self._interactive_t)
        return (time.monotonic() - last) * 1000.0 < self.quiet_ms

    def pump(self) -> None:
        """Send the next render-ahead request when the engine thread has nothing else to do
        (while paused: nor will have soon, see :meth:`interacting`)."""
        if self._inflight is not None:
            if time.monotonic() - self._inflight_t < LOST_REQUEST_S:
                return
            self._inflight = None
        if not self.active or self.state.num_frames == 0 or self.client.jobs:
            return  # nothing open, or an export has the engine thread
        if time.monotonic() < self._resume_at:
            return
        if not self.playback.playing and self.interacting():
            return  # what the user does is rendered first; the timer pumps again later
        job = plan_next(
            PlanInput(
                playhead=self.state.frame,
                num_frames=self.state.num_frames,
                size=self.size,
                playing=self.playback.playing,
                full_ms=self.full_ms,
                proxy_ms=self.proxy_ms,
                fps=self.playback.fps,
                range=self.range,
                loop=self.playback.loop,
            ),
            self.cache,
            self.alphas_at,
        )
        if job is None:
            return
        req = self.client.request_ahead(job.frame, self.alphas_at(job.frame), job.size)
        if req is not None:
            self._inflight = req
            self._inflight_t = time.monotonic()

    def _rendered(self, result: RenderResult) -> None:
        inflight = self._inflight
        if inflight is not None and result.seq >= inflight.seq:
            self._inflight = None  # answered, or replaced by a newer (interactive) request
        if not result.ahead:
            self._interactive_seq = max(self._interactive_seq, result.seq)
            self._interactive_t = time.monotonic()
            self.pump()
            return
        if not self.active or result.frame >= self.state.num_frames:
            return
        if result.view != self.client.view:
            self.pump()  # rendered before the view changed
            return
        full = result.size == self.size
        estimate = self.full_ms if full else self.proxy_ms
        estimate = 0.7 * estimate + 0.3 * result.ms
        if full:
            self.full_ms = estimate
        else:
            self.proxy_ms = estimate
        if result.alphas != self.alphas_at(result.frame):
            self.pump()  # edited while it rendered
            return
        entry = CachedFrame(result.frame, result.size, result.alphas, result.rgb, result.ms)
        self.cache.put(entry, playhead=self.state.frame)
        self.cacheChanged.emit()
        self._check_range()
        if self.playback.playing:
            self._show_at(self.state.frame)
        self.pump()

    def _failed(self, *_: object) -> None:
        """A request failed in the engine thread (its error is shown by the session): neither
        it nor a render ahead is waited for any more; rendering ahead resumes after
        :data:`FAILED_PAUSE_S`."""
        self._inflight = None
        self._resume_at = time.monotonic() + FAILED_PAUSE_S
        last = self.client.last_request
        if last is not None:
            self._interactive_seq = max(self._interactive_seq, last.seq)

    def _check_range(self) -> None:
        if self.range is not None and not self._range_done and self.range_cached(*self.range):
            self._range_done = True
            self.rangeReady.emit(*self.range)

    # --- playing -----------------------------------------------------------------------------------
    def _frame_changed(self, frame: int) -> None:
        if self.playback.playing and self.active:
            self._show_at(frame)
            self.pump()

    def _show_at(self, head: int) -> None:
        """Put the best cached frame for playhead ``head`` on the preview, and say what it is."""
        entry = self.cache.best_at_or_before(
            head, (self.size, self.proxy), self.alphas_at, head - HOLD_FRAMES
        )
        if entry is None:
            behind = "" if self._shown is None else f" · holding frame {self._shown[0]}"
            self._set_note(f"rendering ahead… no frame ready yet{behind}")
            return
        key = (entry.frame, entry.size)
        if key != self._shown:
            self._shown = key
            kind = "full" if entry.size == self.size else "proxy"
            self.preview.show_frame(entry.rgb, entry.ms, kind)
        self.displayed.emit(head, entry.frame, entry.size)
        if entry.frame == head and entry.size == self.size:
            self._set_note("")
        elif entry.frame == head:
            self._set_note("rendering ahead · low-resolution proxy")
        else:
            proxy = " proxy" if entry.size != self.size else ""
            self._set_note(
                f"rendering ahead · showing{proxy} frame {entry.frame} ({head - entry.frame} behind)"
            )

    def _set_note(self, text: str) -> None:
        if text != self.note:
            self.note = text
            self.preview.set_note(text)
            self.noteChanged.emit(text)

    def _playing_changed(self, playing: bool) -> None:
        self._shown = None
        if playing:
            dropped = self.client.drop_waiting()  # a seek's full render: not shown while playing
            if dropped is not None:
                self._interactive_seq = max(self._interactive_seq, dropped.seq)
            self._show_at(self.state.frame)
        else:
            self._set_note("")
            self.controller.schedule("full")  # the frame it stopped on, refined
        self.pump()

    def _edited(self, _name: str) -> None:
        self._alphas = None
        if self.cache.invalidate(self.alphas_at):
            self._shown = None
            self._range_done = self.range is None
            self.cacheChanged.emit()
        self.pump()


class PreviewRange(QObject):
    """The in/out marks (I, O) on the timeline and "Render preview of range", which renders the
    marked frames — the whole clip when nothing is marked — at full size for smooth playback."""

    def __init__(
        self, window: QMainWindow, cache: PlaybackCache, timeline: Timeline, menu: QMenu | None
    ) -> None:
        super().__init__(window)
        self.window = window
        self.cache = cache
        self.timeline = timeline
        self.state = cache.state

        def action(text: str, slot: Callable[[], object], key: str, tip: str) -> QAction:
            act = QAction(text, window)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.setStatusTip(tip)
            act.setToolTip(tip)
            act.triggered.connect(slot)
            window.addAction(act)
            return act

        self.mark_in = action("Mark &in", self._mark_in, "I", "Start the range at the playhead")
        self.mark_out = action("Mark &out", self._mark_out, "O", "End the range at the playhead")
        self.clear_marks = action(
            "C&lear in/out", self.clear, "Alt+X", "Forget the marked range (the whole clip)"
        )
        self.render = action(
            "&Render preview of range",
            self.render_preview,
            "Ctrl+Shift+R",
            "Render the marked range (else the whole clip) at full size for smooth playback",
        )
        if menu is not None:
            menu.addSeparator()
            for act in (self.mark_in, self.mark_out, self.clear_marks, self.render):
                menu.addAction(act)
        cache.rangeReady.connect(self._ready)
        self.state.trackChanged.connect(self.clear)

    def actions(self) -> tuple[QAction, ...]:
        return (self.mark_in, self.mark_out, self.clear_marks, self.render)

    def marks(self) -> tuple[int, int] | None:
        return self.timeline.marks

    def _mark_in(self) -> None:
        n, f, marks = self.state.num_frames, self.state.frame, self.marks()
        end = marks[1] if marks else n
        self.timeline.set_marks((f, end if end > f else n))

    def _mark_out(self) -> None:
        f, marks = self.state.frame + 1, self.marks()
        start = marks[0] if marks else 0
        self.timeline.set_marks((start if start < f else 0, f))

    def clear(self) -> None:
        self.timeline.set_marks(None)

    def target(self) -> tuple[int, int]:
        """The frames "Render preview of range" renders: the marks, else the whole clip."""
        return self.marks() or (0, self.state.num_frames)

    def render_preview(self) -> None:
        if self.state.num_frames == 0:
            return
        start, end = self.target()
        self.cache.render_range(start, end)
        self.window.statusBar().showMessage(
            f"rendering frames {start}–{end - 1} at {self.cache.size}² for smooth playback…"
        )

    def _ready(self, start: int, end: int) -> None:
        self.window.statusBar().showMessage(
            f"frames {start}–{end - 1} are rendered: they play smoothly", 5000
        )
