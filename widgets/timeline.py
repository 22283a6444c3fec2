"""The timeline: the driving audio's waveform, the playhead and the keyframe lanes.

A view of an :class:`~.state.EditState`. x is time in seconds (rulers in seconds below and frames
above); the waveform fills y ∈ [-1, 1] and one keyframe lane per channel sits below it (α1, α2,
α3, brows, head motion, blink). Wheel zooms and drag pans in time only; a click seeks; the
playhead drags; a diamond is selected by a click, moved by a drag (one undoable move) and
deleted with Delete or Backspace; a double click on a lane keys that channel's current value at
that frame (on the blink lane: inserts a blink); a mostly vertical drag of a diamond on a value
lane sets that key's value on the lane's curve scale (one undoable step), so α3's lane edits the
mouth's amplitude over time as a curve.

Each value lane also draws its channel's interpolated value as a curve (the unedited value on
the lane's dashed line, the channel's ends at ±``CURVE_HALF_HEIGHT``; α3's curve is the mouth's
amplitude over time), the blink lane shows one diamond per inserted blink, and keys past the
clip's end (kept from a longer driving clip) are counted at the lane's right end. Below the plot a scroll bar pans a zoomed view, and
"Follow" (the playhead) pages the view along when the playhead leaves it.

A thin bar along the top shows which frames the playback cache holds (green: full size, blue:
low-resolution proxies; :meth:`Timeline.set_cached`), and a shaded band the in/out range that
"Render preview of range" renders (:meth:`Timeline.set_marks`).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, QThreadPool, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QScrollBar, QToolButton, QVBoxLayout, QWidget

from talkstudio.core.edit import ALPHA_NAMES, CHANNEL_NAMES, CHANNELS, CURVE_CHANNELS
from talkstudio.core.timing import FPS

from .palette import CHANNEL_COLORS, CHANNEL_LABELS, PLAYHEAD_COLOR, WAVEFORM_COLOR
from .state import EditState
from .timeline_items import (
    BeyondEndMarker,
    FramesAxis,
    KeyframeLane,
    SecondsAxis,
    TimelineViewBox,
    ValueCurve,
)
from .waveform import EnvelopePyramid

LANES = (*ALPHA_NAMES, *CURVE_CHANNELS, "blink")
"""The channels with a lane, top to bottom."""
LANE_Y = {n: -1.7 - 0.7 * i for i, n in enumerate(LANES)}
"""y of each channel's keyframe lane (the waveform fills [-1, 1])."""
CURVE_HALF_HEIGHT = 0.3
"""How far (in y) the value curve swings from its lane's line at α = 0 and α = 2."""
Y_RANGE = (LANE_Y[LANES[-1]] - 0.4, 1.15)
CACHE_Y = {"proxy": 1.1, "full": 1.1}
"""y of the cached-range bar (above the waveform's peak; full-size runs drawn over proxies)."""
CACHE_COLORS = {"proxy": (90, 130, 230), "full": (90, 210, 120)}
MIN_SPAN_FRAMES = 2
"""Narrowest zoom, in frames (two frames show single samples on a wide timeline)."""
SYNC_BUILD_SAMPLES = 60 * 16_000
"""Audio up to this long gets its envelope at once (~10 ms); longer audio in a pool thread."""


class _Relay(QObject):
    """Carries a finished envelope from the pool thread to the GUI thread (queued)."""

    built = Signal(object, object)  # (audio it was built from, EnvelopePyramid)


class Timeline(QWidget):
    """Waveform, playhead and keyframe lanes of one :class:`EditState`."""

    waveformReady = Signal()  # noqa: N815 (Qt signal naming)
    """The envelope of new audio is ready and drawn (at once for short audio, later for long)."""

    def __init__(self, state: EditState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.fps = FPS
        self._selected: tuple[str, int] | None = None
        self._pyramid: EnvelopePyramid | None = None
        self._gain = 1.0
        self._relay = _Relay(self)
        self._relay.built.connect(self._pyramid_built)

        self.view = TimelineViewBox()
        axes = {"bottom": SecondsAxis("bottom"), "top": FramesAxis("top", fps=self.fps)}
        self.plot = pg.PlotWidget(viewBox=self.view, axisItems=axes)
        self.plot.setBackground((28, 30, 34))
        item = self.plot.getPlotItem()
        item.hideButtons()
        item.showAxis("top")
        item.setMenuEnabled(False)
        left = item.getAxis("left")
        left.setTicks([[(0.0, "audio"), *((LANE_Y[n], CHANNEL_LABELS[n]) for n in LANES)], []])
        left.setWidth(86)
        for axis in ("left", "top", "bottom"):
            item.getAxis(axis).setTextPen(pg.mkPen(200, 200, 200))
        self.view.setYRange(*Y_RANGE, padding=0)
        self.view.setDefaultPadding(0.0)
        for name in LANES:
            band = pg.InfiniteLine(pos=LANE_Y[name], angle=0, movable=False)
            band.setPen(pg.mkPen(*CHANNEL_COLORS[name], 90, width=1, style=Qt.PenStyle.DashLine))
            self.view.addItem(band)
        self.view.addItem(
            pg.InfiniteLine(pos=0.0, angle=0, movable=False, pen=pg.mkPen(*WAVEFORM_COLOR, 110))
        )

        self.wave = pg.PlotCurveItem(pen=pg.mkPen(*WAVEFORM_COLOR, width=1))
        self.view.addItem(self.wave)
        self.cache_bars = {
            kind: pg.PlotCurveItem(pen=pg.mkPen(*CACHE_COLORS[kind], width=5)) for kind in CACHE_Y
        }
        for z, bar in enumerate(self.cache_bars.values()):
            bar.setZValue(5 + z)
            self.view.addItem(bar)
        self.cached: dict[str, list[tuple[int, int]]] = {"proxy": [], "full": []}
        """[start, end) frame runs drawn on the cache bar, by kind."""
        self.marks: tuple[int, int] | None = None
        self.marks_band = pg.LinearRegionItem(
            (0.0, 0.0), movable=False, brush=pg.mkBrush(255, 255, 255, 28)
        )
        self.marks_band.setZValue(-5)
        self.marks_band.hide()
        self.view.addItem(self.marks_band)
        self.lanes = {
            n: KeyframeLane(
                n, LANE_Y[n], CHANNEL_COLORS[n], self._marker_clicked, self._move, self.fps
            )
            for n in LANES
        }
        for lane in self.lanes.values():
            lane.setZValue(10)
            self.view.addItem(lane)
        self.curves = {
            n: ValueCurve(
                LANE_Y[n],
                CHANNEL_COLORS[n],
                CHANNELS[n].lo,
                CHANNELS[n].hi,
                CHANNELS[n].neutral,
                CURVE_HALF_HEIGHT,
            )
            for n in CHANNEL_NAMES
            if n != "blink"  # blinks are events, not a value between keys
        }
        for n, curve in self.curves.items():  # a vertical drag of a key edits its value
            self.lanes[n].curve = curve
            self.lanes[n].on_value = self._set_key_value
        """The interpolated value of each factor, drawn along its lane."""
        self.beyond = {n: BeyondEndMarker(LANE_Y[n], CHANNEL_COLORS[n]) for n in LANES}
        """Per lane: how many keys lie past the clip's last frame."""
        items: list[pg.GraphicsObject] = [*self.curves.values(), *self.beyond.values()]
        for item in items:
            item.setZValue(8)
            self.view.addItem(item)
        self.playhead = pg.InfiniteLine(
            pos=0.0,
            angle=90,
            movable=True,
            pen=pg.mkPen(*PLAYHEAD_COLOR, width=2),
            hoverPen=pg.mkPen(255, 140, 140, width=3),
        )
        self.playhead.setZValue(20)
        self.view.addItem(self.playhead)

        self.scrollbar = QScrollBar(Qt.Orientation.Horizontal)
        self.scrollbar.setToolTip("Pan the zoomed timeline (the wheel zooms)")
        self.scrollbar.valueChanged.connect(self._scrolled)
        self.follow_button = QToolButton()
        self.follow_button.setText("Follow")  # short: the bottom docks fit a 760-px window
        self.follow_button.setCheckable(True)
        self.follow_button.setChecked(True)
        self.follow_button.setToolTip(
            "Follow the playhead: page a zoomed view along when the playhead leaves it"
        )
        self.fit_button = QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Show the whole clip")
        self.fit_button.clicked.connect(lambda: self.set_visible_range(0.0, self.duration))
        scroll_row = QHBoxLayout()
        scroll_row.setContentsMargins(2, 0, 2, 2)
        scroll_row.addWidget(self.scrollbar, 1)
        scroll_row.addWidget(self.fit_button)
        scroll_row.addWidget(self.follow_button)
        self._syncing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plot, 1)
        layout.addLayout(scroll_row)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumHeight(230)

        self.playhead.sigPositionChanged.connect(self._playhead_dragged)
        self.view.sigClicked.connect(self._clicked)
        self.view.sigXRangeChanged.connect(self._redraw_wave)
        self.view.sigXRangeChanged.connect(self._sync_scrollbar)
        self.view.sigResized.connect(self._redraw_wave)
        state.frameChanged.connect(self._frame_changed)
        state.keyframesChanged.connect(self._keys_changed)
        state.audioChanged.connect(self._audio_changed)
        state.trackChanged.connect(self._length_changed)
        self._audio_changed()
        for name in LANES:
            self._keys_changed(name)

    # --- geometry helpers (also used by tests to aim the mouse) --------------------------------
    @property
    def duration(self) -> float:
        """Seconds covered by the clip (at least one frame)."""
        return max(self.state.num_frames, 1) / self.fps

    def x_of_frame(self, frame: float) -> float:
        return frame / self.fps

    def frame_of_x(self, x: float) -> int:
        return int(np.clip(np.floor(x * self.fps), 0, max(self.state.num_frames - 1, 0)))

    def widget_pos(self, x: float, y: float) -> QPointF:
        """Position in ``self.plot``'s viewport of view point (x seconds, y)."""
        scene = self.view.mapViewToScene(QPointF(x, y))
        return QPointF(self.plot.mapFromScene(scene))

    def marker_x(self, name: str) -> np.ndarray:
        """x (seconds) of the diamonds drawn on ``name``'s lane."""
        return np.asarray(self.lanes[name].getData()[0], dtype=float)

    def visible_range(self) -> tuple[float, float]:
        (x0, x1), _ = self.view.viewRange()
        return float(x0), float(x1)

    def set_visible_range(self, t0: float, t1: float) -> None:
        self.view.setXRange(t0, t1, padding=0)

    def curve_y(self, name: str, x: float) -> float:
        """y of ``name``'s drawn value curve at ``x`` seconds (where its line is on screen)."""
        xs, ys = self.curves[name].getData()
        return float(np.interp(x, xs, ys))

    # --- the scroll bar -------------------------------------------------------------------------
    def _sync_scrollbar(self) -> None:
        """Size and place the scroll bar's handle on the visible range (in frames)."""
        x0, x1 = self.visible_range()
        span = max(round((x1 - x0) * self.fps), 1)
        last = max(self.state.num_frames - span, 0)
        self._syncing = True
        self.scrollbar.setRange(0, last)
        self.scrollbar.setPageStep(span)
        self.scrollbar.setSingleStep(max(span // 10, 1))
        self.scrollbar.setValue(round(x0 * self.fps))
        self.scrollbar.setEnabled(last > 0)
        self.fit_button.setEnabled(last > 0)
        self._syncing = False

    def _scrolled(self, value: int) -> None:
        if self._syncing:
            return
        x0, x1 = self.visible_range()
        start = value / self.fps
        self.set_visible_range(start, start + (x1 - x0))

    # --- the playback cache and the in/out range ---------------------------------------------
    def set_cached(self, full: list[tuple[int, int]], proxy: list[tuple[int, int]]) -> None:
        """Draw the cached frames: runs [start, end) at full size and at proxy size."""
        self.cached = {"full": list(full), "proxy": list(proxy)}
        for kind, runs in self.cached.items():
            if not runs:
                self.cache_bars[kind].setData([], [])
                continue
            xs = np.array([[s / self.fps, e / self.fps] for s, e in runs], float).reshape(-1)
            ys = np.full(len(xs), CACHE_Y[kind])
            self.cache_bars[kind].setData(xs, ys, connect="pairs")

    def set_marks(self, marks: tuple[int, int] | None) -> None:
        """Show the in/out range [start, end) in frames (None hides it)."""
        self.marks = marks
        if marks is None:
            self.marks_band.hide()
            return
        self.marks_band.setRegion((marks[0] / self.fps, marks[1] / self.fps))
        self.marks_band.show()

    # --- selection and keyboard ----------------------------------------------------------------
    @property
    def selected(self) -> tuple[str, int] | None:
        """(factor, frame) of the selected keyframe, or None."""
        return self._selected

    def select(self, name: str, frame: int) -> None:
        """Select the keyframe of ``name`` at ``frame``."""
        self._selected = (name, int(frame))
        self._show_selection()

    def clear_selection(self) -> None:
        self._selected = None
        self._show_selection()

    def _show_selection(self) -> None:
        for n, lane in self.lanes.items():
            chosen = self._selected[1] if self._selected and self._selected[0] == n else None
            lane.show_keys(self._key_frames(n), chosen)

    def move_selected(self, frame: int) -> None:
        """Move the selected keyframe to ``frame`` (undoable)."""
        if self._selected is not None:
            self._move(self._selected[0], self._selected[1], frame)

    def delete_selected(self) -> None:
        """Delete the selected keyframe (undoable)."""
        if self._selected is not None:
            name, frame = self._selected
            self._selected = None
            self.state.delete_keyframe(name, frame)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._selected:
            self.delete_selected()
            event.accept()
            return
        super().keyPressEvent(event)

    # --- reactions -----------------------------------------------------------------------------
    def _marker_clicked(self, name: str, frame: int) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)  # so that Delete reaches us
        self.select(name, frame)

    def _key_frames(self, name: str) -> list[int]:
        return [f for f, _ in self.state.keyframes(name)]

    def _move(self, name: str, old: int, new: int) -> None:
        self._selected = (name, int(np.clip(new, 0, max(self.state.num_frames - 1, 0))))
        self.state.move_keyframe(name, old, new)
        self.select(*self._selected)

    def _set_key_value(self, name: str, frame: int, value: float) -> None:
        spec = CHANNELS[name]
        value = float(np.clip(round(value, 2), spec.lo, spec.hi))
        if value != self.state.value(name, frame) or not self.state.has_keyframe(name, frame):
            self.state.set_keyframe(name, frame, value)
        self.select(name, frame)

    def _keys_changed(self, name: str) -> None:
        frames = self._key_frames(name)
        if self._selected and self._selected[0] == name and self._selected[1] not in frames:
            self._selected = None
        sel = self._selected[1] if self._selected and self._selected[0] == name else None
        self.lanes[name].show_keys(frames, sel)
        if name in self.curves:
            self.curves[name].show_keys(self.state.keyframes(name), self.state.num_frames)
        self.beyond[name].show_keys(frames, self.state.num_frames)

    def _clicked(self, x: float, y: float, double: bool) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        frame = self.frame_of_x(x)
        if double:
            lane = min(LANES, key=lambda n: abs(LANE_Y[n] - y))
            if abs(LANE_Y[lane] - y) < 0.35:
                if lane == "blink":
                    self.state.insert_blink(frame)
                else:
                    self.state.set_keyframe(lane, frame, self.state.value(lane, frame))
                self.select(lane, frame)
                return
        self.clear_selection()
        self.state.set_frame(frame)

    def _playhead_dragged(self) -> None:
        frame = round(self.playhead.value() * self.fps)
        self.state.set_frame(frame)
        self._show_playhead(self.state.frame)

    def _frame_changed(self, frame: int) -> None:
        self._show_playhead(frame)
        x = self.x_of_frame(frame)
        x0, x1 = self.visible_range()
        if self.follow_button.isChecked() and not x0 <= x <= x1:  # page the view along
            span = x1 - x0
            start = float(np.clip(x - 0.1 * span, 0.0, max(self.duration - span, 0.0)))
            self.set_visible_range(start, start + span)

    def _show_playhead(self, frame: int) -> None:
        x = self.x_of_frame(frame)
        if abs(self.playhead.value() - x) > 1e-9:
            self.playhead.blockSignals(True)
            self.playhead.setValue(x)
            self.playhead.blockSignals(False)

    def _length_changed(self) -> None:
        d = self.duration
        self.view.setLimits(xMin=0.0, xMax=d, minXRange=MIN_SPAN_FRAMES / self.fps, maxXRange=d)
        self.playhead.setBounds((0.0, max(d - 1.0 / self.fps, 0.0)))
        for lane in self.lanes.values():
            lane.max_frame = max(self.state.num_frames - 1, 0)
        for name in self.lanes:
            self._keys_changed(name)  # the curves end, and keys fall past the end, elsewhere
        self.set_visible_range(0.0, d)
        self._sync_scrollbar()
        self._show_playhead(self.state.frame)

    def _audio_changed(self) -> None:
        audio = self.state.audio
        rate = self.state.sample_rate
        self._pyramid = None
        self._length_changed()
        self._redraw_wave()
        if audio is None or len(audio) == 0:
            return
        if len(audio) <= SYNC_BUILD_SAMPLES:
            self._pyramid_built(audio, EnvelopePyramid(audio, rate))
            return
        relay = self._relay

        def build() -> None:  # in a pool thread: numpy releases the GIL while it reduces
            pyramid = EnvelopePyramid(audio, rate)
            with contextlib.suppress(RuntimeError):  # the timeline was closed meanwhile
                relay.built.emit(audio, pyramid)

        QThreadPool.globalInstance().start(build)

    def _pyramid_built(self, audio: np.ndarray, pyramid: EnvelopePyramid) -> None:
        if audio is not self.state.audio:  # the audio changed again meanwhile
            return
        self._pyramid = pyramid
        self._gain = 0.95 / max(pyramid.peak, 1e-6)
        self._redraw_wave()
        self.waveformReady.emit()

    def _redraw_wave(self) -> None:
        if self._pyramid is None:
            self.wave.setData([], [])
            return
        x0, x1 = self.visible_range()
        width = max(int(self.view.width()), 1)
        env = self._pyramid.envelope(x0, x1, width)
        self.wave.setData(env.x, env.y * self._gain, connect="pairs" if env.pairs else "all")
