"""Drawing helpers in a texture over the design frame's (x, y) plane.

A :class:`Canvas` maps centimetres to texels: texel (row, col) has its centre at
``x = X0 + (col + 0.5) / ppc``, ``y = Y0 + (row + 0.5) / ppc``. OpenCV draws with integer
coordinates at texel centres, so a point maps to ``(x - X0) * ppc - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHIFT = 4
"""Fixed-point bits for OpenCV's sub-texel drawing."""


def catmull_rom(points: np.ndarray, per_segment: int = 8, closed: bool = False) -> np.ndarray:
    """A smooth curve [K, 2] through ``points`` [N, 2] (centripetal-free uniform Catmull-Rom)."""
    p = np.asarray(points, dtype=np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    if not closed:
        out.append(p[-1:])
    return np.concatenate(out)


@dataclass(frozen=True)
class Canvas:
    """The texel grid of a texture over x in [x0, x0 + width], y in [y0, y0 + height] (cm)."""

    x0: float = -9.0
    y0: float = -12.0
    width: float = 18.0
    height: float = 24.5
    ppc: float = 32.0  # texels per cm

    @property
    def shape(self) -> tuple[int, int]:
        return round(self.height * self.ppc), round(self.width * self.ppc)

    def texel(self, xy: np.ndarray) -> np.ndarray:
        """Continuous texel coordinates (col, row) [..., 2] of points ``xy`` [..., 2] in cm."""
        return (xy - np.array([self.x0, self.y0])) * self.ppc - 0.5

    def fixed(self, xy: np.ndarray) -> np.ndarray:
        """OpenCV fixed-point polygon [N, 1, 2] int32 for points ``xy`` [N, 2] (cm)."""
        return np.round(self.texel(xy) * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def grid(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """x, y (cm) [h, w] of the texel centres in a window."""
        r = np.arange(rows.start, rows.stop)
        c = np.arange(cols.start, cols.stop)
        x, y = np.meshgrid(self.x0 + (c + 0.5) / self.ppc, self.y0 + (r + 0.5) / self.ppc)
        return x, y

    def window(self, xy: np.ndarray, margin: float) -> tuple[slice, slice]:
        """Texel window covering points ``xy`` [N, 2] plus ``margin`` cm, clipped to the canvas."""
        lo = np.floor(self.texel(xy.min(0) - margin)).astype(int)
        hi = np.ceil(self.texel(xy.max(0) + margin)).astype(int) + 1
        h, w = self.shape
        return slice(max(lo[1], 0), min(hi[1], h)), slice(max(lo[0], 0), min(hi[0], w))

    def coverage(self, poly: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """Anti-aliased coverage in [0, 1] [h, w] of the closed polygon ``poly`` [N, 2] (cm)."""
        h, w = rows.stop - rows.start, cols.stop - cols.start
        mask = np.zeros((h, w), np.uint8)
        pts = self.fixed(poly) - np.array([cols.start, rows.start]) * (1 << SHIFT)
        cv2.fillPoly(mask, [pts.astype(np.int32)], (255,), cv2.LINE_AA, SHIFT)
        return mask.astype(np.float32) / 255.0

    def stroke(self, poly: np.ndarray, rows: slice, cols: slice, width: float) -> np.ndarray:
        """Anti-aliased coverage [h, w] of the open polyline ``poly`` [N, 2], ``width`` cm wide."""
        h, w = rows.stop - rows.start, cols.stop - cols.start
        mask = np.zeros((h, w), np.uint8)
        pts = self.fixed(poly) - np.array([cols.start, rows.start]) * (1 << SHIFT)
        thick = max(1, round(width * self.ppc))
        cv2.polylines(mask, [pts.astype(np.int32)], False, (255,), thick, cv2.LINE_AA, SHIFT)
        return mask.astype(np.float32) / 255.0


def blend(dst: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """In place: ``dst`` [h, w, 3] float = mix of itself and ``colour`` ([3] or [h, w, 3])."""
    a = alpha[..., None]
    dst *= 1.0 - a
    dst += a * colour


def gaussian(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float):
    """exp(-r^2 / 2) of the scaled offset from (cx, cy)."""
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
