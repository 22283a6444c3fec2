"""Graphics items of the timeline: the time rulers, its view box, the keyframe lanes, the
interpolated value curve of each lane and the marker of keys past the clip's end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

from talkstudio.core.timing import FPS


class SecondsAxis(pg.AxisItem):
    """Ruler in seconds (x is in seconds): "12.5 s", or "m:ss" past a minute."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        decimals = 0 if spacing >= 1 else (1 if spacing >= 0.1 else 2)
        out = []
        for v in values:
            if v >= 60 and spacing >= 1:
                out.append(f"{int(v // 60)}:{round(v % 60):02d}")
            else:
                out.append(f"{v:.{decimals}f} s")
        return out


class FramesAxis(pg.AxisItem):
    """Ruler in frames on the same seconds axis: ticks only at whole frames."""

    def __init__(self, orientation: str, fps: int = FPS, **kwargs: object) -> None:
        super().__init__(orientation, **kwargs)
        self.fps = fps

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        levels = super().tickValues(minVal * self.fps, maxVal * self.fps, size)
        out = []
        for spacing, values in levels:
            if spacing < 1:  # no ticks between frames
                continue
            out.append((spacing / self.fps, [v / self.fps for v in values]))
        return out

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [str(round(v * self.fps)) for v in values]


class TimelineViewBox(pg.ViewBox):
    """A view box that pans and zooms in x only, and reports clicks (seek) and double clicks."""

    sigClicked = Signal(float, float, bool)  # noqa: N815 (Qt signal naming)
    """(x, y, double) of a left click on empty space, in view coordinates."""

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=True, y=False)

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        self.sigClicked.emit(p.x(), p.y(), bool(ev.double()))


class ValueCurve(pg.PlotCurveItem):
    """The interpolated value of one keyframed factor, drawn along its lane.

    A value ``v`` in [``lo``, ``hi``] is drawn at ``y + (v - mid) / (hi - lo) * 2 * half_height``
    (``mid``: the value with no edit, on the lane's line). Values are linear between keys and held
    before the first and after the last, so the keys and the clip's two ends are the whole curve.
    """

    def __init__(
        self,
        y: float,
        color: tuple[int, int, int],
        lo: float,
        hi: float,
        mid: float,
        half_height: float,
        fps: int = FPS,
    ) -> None:
        super().__init__(pen=pg.mkPen(*color, 220, width=2))
        self.y, self.lo, self.hi, self.mid = y, lo, hi, mid
        self.half_height = half_height
        self.fps = fps

    def y_of(self, value: float | np.ndarray) -> np.ndarray:
        """Where ``value`` is drawn on the lane (view y)."""
        v = np.clip(np.asarray(value, dtype=float), self.lo, self.hi)
        return self.y + (v - self.mid) / (self.hi - self.lo) * 2.0 * self.half_height

    def value_of(self, y: float) -> float:
        """The value drawn at view ``y`` (the inverse of :meth:`y_of`, clamped to the range)."""
        v = self.mid + (y - self.y) / (2.0 * self.half_height) * (self.hi - self.lo)
        return float(np.clip(v, self.lo, self.hi))

    def show_keys(self, keys: list[tuple[int, float]], num_frames: int) -> None:
        """Draw the curve through ``keys`` (sorted (frame, value)) over frames [0, num_frames)."""
        end = max(num_frames, 1) / self.fps
        inside = [(f, v) for f, v in keys if f < num_frames]
        if not keys:
            xs, vs = np.array([0.0, end]), np.array([self.mid, self.mid])
        else:
            frames = np.array([f for f, _ in keys], float)
            values = np.array([v for _, v in keys], float)
            xs = np.array([0.0, *(f / self.fps for f, _ in inside), end])
            vs = np.interp(np.minimum(xs * self.fps, max(num_frames - 1, 0)), frames, values)
        self.setData(xs, self.y_of(vs))


class BeyondEndMarker(pg.TextItem):
    """ "N keys after the end ▸" at the right end of a lane whose keys lie past the clip."""

    def __init__(self, y: float, color: tuple[int, int, int], fps: int = FPS) -> None:
        super().__init__("", color=color, anchor=(1.0, 0.5))
        self.y = y
        self.fps = fps
        self.count = 0
        self.hide()

    def show_keys(self, frames: list[int], num_frames: int) -> None:
        beyond = [f for f in frames if f >= num_frames]
        self.count = len(beyond)
        if not beyond:
            self.hide()
            return
        keys = "key" if len(beyond) == 1 else "keys"
        self.setText(f"{len(beyond)} {keys} after the end ▸")
        self.setToolTip(
            f"frames {', '.join(map(str, beyond[:6]))}{'…' if len(beyond) > 6 else ''}: past the "
            f"driving audio's last frame ({max(num_frames - 1, 0)}), so they have no effect; a "
            "longer driving clip uses them, and the factor's Reset in the α panel removes them"
        )
        self.setPos(max(num_frames, 1) / self.fps, self.y)
        self.show()


class KeyframeLane(pg.ScatterPlotItem):
    """The keyframe diamonds of one channel on one horizontal lane; click selects, drag moves.

    It shows what it is given by :meth:`show_keys` (the state's keyframes); a drag moves the
    grabbed diamond on screen only and reports the move when the mouse is released, through
    ``on_select(name, frame)`` and ``on_move(name, old, new)``. With a ``curve`` (the lane's
    :class:`ValueCurve`) and ``on_value``, a mostly vertical drag edits the key's value instead:
    the diamond follows the mouse along the curve's scale and the release reports
    ``on_value(name, frame, value)``.
    """

    SIZE = 13

    def __init__(
        self,
        name: str,
        y: float,
        color: tuple[int, int, int],
        on_select: Callable[[str, int], None],
        on_move: Callable[[str, int, int], None],
        fps: int = FPS,
        curve: ValueCurve | None = None,
        on_value: Callable[[str, int, float], None] | None = None,
    ) -> None:
        super().__init__(pxMode=True)
        self.curve = curve
        self.on_value = on_value
        self._lift: float | None = None  # view y of the diamond while its value is dragged
        self.name = name
        self.y = y
        self.color = color
        self.fps = fps
        self._on_select = on_select
        self._on_move = on_move
        self._frames: list[int] = []
        self._selected: int | None = None
        self._drag: tuple[int, int] | None = None  # (grabbed frame, frame under the mouse)
        self.max_frame = 0

    def show_keys(self, frames: list[int], selected: int | None) -> None:
        self._frames = list(frames)
        self._selected = selected
        self._redraw()

    def _redraw(self) -> None:
        frames = list(self._frames)
        if self._drag is not None and self._drag[0] in frames:
            frames[frames.index(self._drag[0])] = self._drag[1]
        active = self._drag[1] if self._drag is not None else self._selected
        spots = []
        for f in frames:
            chosen = f == active
            lifted = chosen and self._lift is not None
            spots.append(
                {
                    "pos": (f / self.fps, self._lift if lifted else self.y),
                    "size": self.SIZE + 4 if chosen else self.SIZE,
                    "symbol": "d",
                    "brush": pg.mkBrush(*self.color),
                    "pen": pg.mkPen("w", width=2) if chosen else pg.mkPen(20, 20, 20, width=1),
                    "data": f,
                }
            )
        self.setData(spots)

    def _frame_under(self, pos: QPointF) -> int | None:
        hits = self.pointsAt(pos)
        return int(hits[0].data()) if len(hits) else None

    def mouseClickEvent(self, ev: Any) -> None:
        frame = None
        if ev.button() == Qt.MouseButton.LeftButton:
            frame = self._frame_under(ev.pos())
        if frame is None:
            ev.ignore()
            return
        ev.accept()
        self._on_select(self.name, frame)

    def mouseDragEvent(self, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        if ev.isStart():
            frame = self._frame_under(ev.buttonDownPos())
            if frame is None:
                ev.ignore()
                return
            self._drag = (frame, frame)
            self._on_select(self.name, frame)
        if self._drag is None:
            ev.ignore()
            return
        ev.accept()
        if self._lift is None and self._value_drag(ev):
            self._lift = self.y
        if self._lift is not None and self.curve is not None:
            self._lift = float(self.curve.y_of(self.curve.value_of(ev.pos().y())))
            if ev.isFinish():
                frame, value = self._drag[0], self.curve.value_of(self._lift)
                self._drag, self._lift = None, None
                if self.on_value is not None:
                    self.on_value(self.name, frame, value)  # the state answers with show_keys
                self._redraw()
            else:
                self._redraw()
            return
        x = ev.pos().x()
        under = int(np.clip(round(x * self.fps), 0, self.max_frame))
        self._drag = (self._drag[0], under)
        if ev.isFinish():
            old, new = self._drag
            self._drag = None
            if new != old:
                self._on_move(self.name, old, new)  # the state answers with show_keys
            else:
                self._redraw()
        else:
            self._redraw()

    def _value_drag(self, ev: Any) -> bool:
        """Whether this drag edits the key's value: the lane has a curve and the mouse went
        more up or down than sideways since the press (decided once, after 3 pixels)."""
        if self.curve is None or self.on_value is None:
            return False
        d = ev.screenPos() - ev.buttonDownScreenPos()
        return abs(d.y()) > max(abs(d.x()), 3.0)
