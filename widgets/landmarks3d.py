"""The 3D landmark viewport: the 68 edited landmarks of the current frame, in the head frame.

A view of an :class:`~.state.EditState` (pyqtgraph.opengl). The eye groups and the mouth are drawn
in their factor's colour, the rest grey, with lines along each group's contour. It follows the
playhead and the α values live. Drag orbits, the wheel zooms (GLViewWidget).

Display axes: the head frame has x toward the subject's left (image right), y down and z toward
the back of the head. The viewport draws (x, z, −y): up is −y so the face is upright, and the
default camera looks at the face from the front like the real camera.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyqtgraph.opengl as gl
from OpenGL import GL
from pyqtgraph import Vector
from PySide6.QtWidgets import QWidget

from talkstudio.core import landmarks as lm

from .palette import ALPHA_COLORS, NEUTRAL_COLOR
from .state import EditState

GROUP_OF_POINTS = {
    "left_eye": lm.LEFT_EYE,
    "right_eye": lm.RIGHT_EYE,
    "mouth": lm.MOUTH,
}
"""Points drawn in each factor's colour."""

CONTOURS: tuple[tuple[tuple[int, ...], bool], ...] = (
    (lm.JAW, False),
    (lm.RIGHT_BROW, False),
    (lm.LEFT_BROW, False),
    (tuple(range(27, 31)), False),  # nose bridge
    (tuple(range(31, 36)), False),  # nostrils
    (lm.RIGHT_EYE, True),
    (lm.LEFT_EYE, True),
    (lm.OUTER_LIPS, True),
    (lm.INNER_LIPS, True),
)
"""(points, closed) of every contour line."""

POINTS_ON_TOP = {
    GL.GL_DEPTH_TEST: False,
    GL.GL_BLEND: True,
    GL.GL_CULL_FACE: False,
    "glBlendFunc": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA),
}
"""GL state of the points: blended, and drawn over the contour lines that pass through them."""


def to_display(points: np.ndarray) -> np.ndarray:
    """Head-frame ``points`` [..., 3] to display axes (x, z, −y) [..., 3]: upright, facing −y."""
    p = np.asarray(points, dtype=np.float32)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def _segments() -> np.ndarray:
    """Index pairs [S, 2] of every contour segment."""
    pairs = []
    for idx, closed in CONTOURS:
        ring = list(idx) + ([idx[0]] if closed else [])
        pairs += list(itertools.pairwise(ring))
    return np.array(pairs, dtype=np.int64)


def _point_colors() -> np.ndarray:
    """RGBA in [0, 1] per landmark [68, 4]."""
    colors = np.tile(np.array([*NEUTRAL_COLOR, 255], np.float32) / 255, (lm.NUM_LANDMARKS, 1))
    for name, idx in GROUP_OF_POINTS.items():
        colors[list(idx)] = np.array([*ALPHA_COLORS[name], 255], np.float32) / 255
    return colors


class Landmarks3D(gl.GLViewWidget):
    """Orbitable 3D view of the current frame's edited landmarks."""

    POINT_SIZE = 9.0

    def __init__(self, state: EditState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setBackgroundColor((24, 26, 30))
        self.setMinimumSize(200, 200)
        self._segments = _segments()  # [S, 2]
        colors = _point_colors()
        seg_colors = colors[self._segments[:, 0]].copy()
        seg_colors[:, 3] = 0.75
        self._line_colors = np.repeat(seg_colors, 2, axis=0)  # [2S, 4]
        self.grid = gl.GLGridItem(color=(255, 255, 255, 36))
        self.grid.setSize(2.0, 2.0)
        self.grid.setSpacing(0.2, 0.2)
        self.grid.translate(0.0, 0.0, -0.9)
        self.addItem(self.grid)
        self.lines = gl.GLLinePlotItem(mode="lines", width=1.5, antialias=True)
        self.lines.setGLOptions("translucent")
        self.addItem(self.lines)
        self.scatter = gl.GLScatterPlotItem(size=self.POINT_SIZE, pxMode=True, color=colors)
        self.scatter.setGLOptions(POINTS_ON_TOP)
        self.addItem(self.scatter)
        self._colors = colors
        self.reset_view()
        state.frameChanged.connect(self.refresh)
        state.alphasChanged.connect(self.refresh)
        state.trackChanged.connect(self._track_changed)
        self.refresh()

    def reset_view(self) -> None:
        """Look at the face from the front, slightly from above, the face filling the view."""
        self.setCameraPosition(distance=self._fit_distance(), elevation=10.0, azimuth=-90.0)
        self.opts["center"] = self._centre()

    def _fit_distance(self) -> float:
        """Camera distance at which the track's extent fills about 75 % of the view's height."""
        track = self.state.track
        extent = 1.6  # a face is about 1.6 head units (16 cm) from brow to chin
        if track is not None and len(track):
            pts = track.reshape(-1, 3)
            extent = float(np.max(np.ptp(pts[:, :2], axis=0)))
        half_fov = np.radians(self.opts["fov"] / 2)
        return 0.5 * extent / np.tan(half_fov) / 0.75

    def displayed_points(self) -> np.ndarray:
        """Positions drawn now, in display axes [68, 3] (or [0, 3] without a track)."""
        return np.asarray(self.scatter.pos, dtype=np.float32).reshape(-1, 3)

    def refresh(self) -> None:
        """Draw the current frame's edited landmarks."""
        points = self.state.edited_landmarks()
        if points is None:
            self.scatter.setData(pos=np.zeros((0, 3), np.float32))
            self.lines.setData(pos=np.zeros((0, 3), np.float32), color=(1, 1, 1, 1))
            return
        disp = to_display(points)  # [68, 3]
        self.scatter.setData(pos=disp, color=self._colors)
        self.lines.setData(pos=disp[self._segments.reshape(-1)], color=self._line_colors)

    def _centre(self) -> Vector:
        track = self.state.track
        if track is None or len(track) == 0:
            return Vector(0.0, 0.0, 0.0)
        c = to_display(track.reshape(-1, 3).mean(axis=0))
        return Vector(float(c[0]), float(c[1]), float(c[2]))

    def _track_changed(self) -> None:
        self.reset_view()
        self.refresh()
