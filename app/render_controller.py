"""Keeps the preview in step with the edit state: asks the engine thread for renders and shows
the answers that are still current.

Triggers (collected for one turn of the event loop, then sent as one request):

- a slider being dragged changes α → ``"fast"`` (the edited head region over the cached frame);
- a finished change (slider released, spin box, keyframe button, undo/redo, keyframe move that
  changes the current value) → ``"fast+full"``: the fast render first, the full frame after;
- the playhead moves → ``"full"`` (a new frame has nothing cached to edit over).

While playing, the playhead's moves ask for nothing (``hold``): the playback cache
(``app/playback.py``) shows cached frames then, and frames rendered for it ("ahead" results) are
not this controller's. A full request whose frame, α and size the playback cache holds is
answered from there at once (``cached``).

A result is shown only when it is for the current frame and newer than the one shown; a full
result must also match the current α (a newer request is on its way otherwise). Fast results
whose α lags behind a drag are shown while the slider is down: they are the newest picture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from talkstudio.core.edit import NEUTRAL_EDIT, FrameEdit
from talkstudio.widgets.alpha_panel import AlphaPanel
from talkstudio.widgets.preview import Preview
from talkstudio.widgets.state import EditState

from .worker import EngineClient, RenderMode, RenderResult

Pending = RenderMode | Literal[""]
"""The render collected so far this turn ("": none)."""
_ORDER: dict[Pending, int] = {"": 0, "fast": 1, "full": 2, "fast+full": 3}


def merge_modes(a: Pending, b: Pending) -> Pending:
    """The mode that does what both ``a`` and ``b`` ask for."""
    if {a, b} == {"fast", "full"}:
        return "fast+full"
    return a if _ORDER[a] >= _ORDER[b] else b


class RenderController(QObject):
    """Connects an :class:`EditState` to an :class:`EngineClient` and a :class:`Preview`."""

    shown = Signal(object)  # RenderResult
    """A result was put on the preview."""
    dropped = Signal(object)  # RenderResult
    """A result arrived stale and was not shown."""

    def __init__(
        self,
        state: EditState,
        client: EngineClient,
        preview: Preview,
        panel: AlphaPanel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.client = client
        self.preview = preview
        self.panel = panel
        self.active = False
        """Requests are sent only while a session is open."""
        self.before = False
        """Show the frame as rendered without edits (:data:`NEUTRAL_EDIT`): the "before" of a
        before/after comparison."""
        self._mode: Pending = ""
        self._last_seq = 0
        self._last_request: tuple[tuple[int, tuple[float, ...], int, str], RenderMode] | None = None
        self.last_shown: RenderResult | None = None
        self.hold: Callable[[], bool] = lambda: False
        """True while playback shows frames itself (the playhead's moves ask for nothing)."""
        self.cached: Callable[[int, FrameEdit, int], tuple[np.ndarray, float] | None] = (
            lambda _f, _a, _s: None
        )
        """A cached full frame of (frame, frame edit, size) and what it cost to render, or None."""
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self.flush)
        state.alphasChanged.connect(self._alphas_changed)
        state.frameChanged.connect(self._frame_changed)
        panel.editCommitted.connect(self._committed)
        client.rendered.connect(self._rendered)

    def dragging(self) -> bool:
        """True while any α slider is held down."""
        return any(row.slider.isSliderDown() for row in self.panel.rows.values())

    def _frame_changed(self, _frame: int) -> None:
        self.schedule("full")

    def _committed(self, _name: str) -> None:
        self.schedule("fast+full")

    def _alphas_changed(self) -> None:
        self.schedule("fast" if self.dragging() else "fast+full")

    def schedule(self, mode: RenderMode) -> None:
        """Ask for a render of ``mode`` at the end of this turn of the event loop (nothing while
        playback shows frames itself)."""
        if not self.active or self.hold():
            return
        self._mode = merge_modes(self._mode, mode)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        """Send the collected request now.

        A fast render already asked for the same frame, α and size is not asked for again:
        a release right after the drag's last tick asks only for the full frame.
        """
        self._flush_timer.stop()
        mode, self._mode = self._mode, ""
        if not mode or not self.active or self.hold() or self.state.num_frames == 0:
            return  # nothing asked, nothing open, or playing (playback shows frames itself)
        alphas = self.wanted_edit()
        key = (self.state.frame, alphas, self.client.size, self.client.view)
        last = self._last_request
        if last is not None and last[0] == key and last[1] in ("fast", "fast+full"):
            if mode == "fast":
                return
            if mode == "fast+full":
                mode = "full"
        if mode == "full":
            hit = self.cached(self.state.frame, alphas, key[2])
            if hit is not None:
                rgb, ms = hit
                self._show(
                    RenderResult(
                        self._last_seq,
                        self.state.frame,
                        alphas,
                        key[2],
                        "full",
                        rgb,
                        ms,
                        view=self.client.view,
                    )
                )
                return
        self._last_request = (key, mode)
        self.client.request(self.state.frame, alphas, mode)

    def wanted_edit(self) -> FrameEdit:
        """What the preview shows the current frame with: its edits, or none (``before``)."""
        return NEUTRAL_EDIT if self.before else self.state.frame_edit()

    def set_before(self, on: bool) -> None:
        """Show the unedited frame (``on``) or the edited one, rendered anew or from the cache."""
        if on != self.before:
            self.before = on
            self.schedule("full")

    def current(self, result: RenderResult) -> bool:
        """Whether ``result`` may be shown now."""
        if result.frame != self.state.frame or result.seq < self._last_seq:
            return False
        if result.view != self.client.view:
            return False  # rendered before the view changed
        same_alphas = np.allclose(result.alphas, self.wanted_edit(), atol=1e-4)
        if result.kind == "full":
            return bool(same_alphas)
        return bool(same_alphas) or self.dragging()

    def _rendered(self, result: RenderResult) -> None:
        if result.ahead:
            return  # the playback cache's
        if not self.active or self.hold() or not self.current(result):
            self.dropped.emit(result)
            return
        self._show(result)

    def _show(self, result: RenderResult) -> None:
        self._last_seq = result.seq
        self.last_shown = result
        self.preview.show_frame(result.rgb, result.ms, result.kind)
        self.shown.emit(result)

    def reset(self) -> None:
        """Forget what was shown (a new session)."""
        self._last_seq = 0
        self._last_request = None
        self.last_shown = None
        self._mode = ""
        self.preview.clear()
