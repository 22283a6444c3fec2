"""Grid meshes of the synthetic person in the design frame (cm): skin, hair, neck, torso.

Each mesh is a grid of points [R, C, 3] triangulated two triangles per cell. Per vertex it
carries texture coordinates, the jaw's displacement field (the skin only) and how much it follows
the head's pose rather than the body's (the neck blends from one to the other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from . import shape

SKIN, HAIR, NECK, TORSO = 1, 2, 3, 4
"""Object ids of the meshes (0 is the background)."""


@dataclass
class GridMesh:
    """One grid mesh, rest shape in the design frame (cm)."""

    obj: int
    points: np.ndarray  # [R, C, 3] rest positions, cm
    uv: np.ndarray  # [R, C, 2] texture coordinates of the object's texture
    head_weight: np.ndarray  # [R, C] 1 follows the head pose, 0 the body pose
    axis_z: float  # depth of the vertical axis the surface wraps, to orient normals outward
    cells: np.ndarray | None = None  # [R-1, C-1] bool, cells that exist (None: all)
    jaw: np.ndarray | None = None  # [R, C, 3] displacement per cm of jaw drop

    def triangles(self) -> np.ndarray:
        """Vertex indices [M, 3] of the grid's triangles (two per existing cell)."""
        r, c = self.points.shape[:2]
        idx = np.arange(r * c).reshape(r, c)
        a, b = idx[:-1, :-1], idx[:-1, 1:]
        d, e = idx[1:, :-1], idx[1:, 1:]
        keep = np.ones((r - 1, c - 1), bool) if self.cells is None else self.cells
        t1 = np.stack([a[keep], b[keep], d[keep]], axis=-1)
        t2 = np.stack([b[keep], e[keep], d[keep]], axis=-1)
        return np.concatenate([t1, t2])

    def rest_normals(self) -> np.ndarray:
        """Unit outward normals [R, C, 3] of the rest grid."""
        n = np.cross(np.gradient(self.points, axis=0), np.gradient(self.points, axis=1))
        n *= self.orientation()
        return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)

    def orientation(self) -> float:
        """+1 or -1: the sign that turns (d/d row x d/d col) into the outward normal."""
        p = self.points
        n = np.cross(np.gradient(p, axis=0), np.gradient(p, axis=1))
        radial = p - np.array([0.0, 0.0, self.axis_z])
        radial[..., 1] = 0.0
        return 1.0 if float(np.sum(n * radial)) >= 0 else -1.0


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _rows(lo: float, hi: float, step: float, extra: tuple[float, ...] = ()) -> np.ndarray:
    n = max(2, round((hi - lo) / step) + 1)
    ys = np.union1d(np.linspace(lo, hi, n), np.asarray(extra, dtype=np.float64))
    return ys[(ys >= lo) & (ys <= hi)]


def skin_mesh(step: float) -> GridMesh:
    """The head's skin: the ellipse stack with the facial relief, front 0.62 of a turn.

    Two rows lie exactly on the inner lips, so an opening jaw stretches only the cells between
    them (the mouth's inside is painted there).
    """
    lips = (shape.SLIT_Y - shape.LIP_GAP / 2, shape.SLIT_Y + shape.LIP_GAP / 2)
    ys = _rows(shape.HEAD_TOP, shape.HEAD_BOTTOM, step, lips)
    n_s = max(8, round(1.24 * np.pi * 8.3 / step))
    ss = np.linspace(-0.62 * np.pi, 0.62 * np.pi, n_s)
    s, y = np.meshgrid(ss, ys)
    pts = shape.surface_point(s, y)
    jaw = shape.jaw_field(pts)
    uv = np.stack([s, y], axis=-1)
    return GridMesh(SKIN, pts, uv, np.ones(s.shape), 0.0, None, jaw)


_HAIRLINE = PchipInterpolator(
    [0.0, 0.35, 0.6, 0.8, 0.95, 1.15, 1.35, 1.6, np.pi],
    [-6.4, -6.1, -5.3, -3.8, 0.0, 1.2, 3.8, 7.2, 8.4],
)


def hairline(s: np.ndarray) -> np.ndarray:
    """Lowest y (cm) the hair reaches at angle ``s`` around the head (0 = front)."""
    return _HAIRLINE(np.abs(np.asarray(s, dtype=np.float64)))


def hair_mesh(step: float, volume: float) -> GridMesh:
    """A shell ``volume`` cm outside the skull over the region above :func:`hairline`.

    The rows of every column end exactly on the hairline, which keeps its edge clean; the
    shell thins to 0.04 cm at the edge, where it lies on the skin.
    """
    n_s = max(16, round(2 * np.pi * 8.8 / (1.6 * step)))
    ss = np.linspace(-np.pi, np.pi, n_s)
    n_t = max(8, round(24.0 / (1.6 * step)))
    tt = np.linspace(0.0, 1.0, n_t)
    t, s = np.meshgrid(tt, ss, indexing="ij")
    bottom = hairline(s)
    y = shape.HEAD_TOP + t * (bottom - shape.HEAD_TOP)
    base = shape.base_point(s, y)
    n = np.cross(np.gradient(base, axis=1), np.gradient(base, axis=0))
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    n *= np.sign(np.sum(n * base, axis=-1, keepdims=True) + 1e-12)  # outward from the centre
    thick = 0.04 + (volume - 0.04) * _smoothstep((bottom - y) / 2.5)
    pts = base + thick[..., None] * n
    uv = np.stack([s, t], axis=-1)
    return GridMesh(HAIR, pts, uv, np.ones(s.shape), 0.0)


NECK_AXIS_Z = 1.2
"""Depth (cm) of the neck's axis in the design frame."""


def neck_mesh(step: float) -> GridMesh:
    """An elliptic cylinder from inside the head down into the torso; its top follows the head."""
    ys = _rows(4.0, 25.0, step * 1.5)
    n_s = max(8, round(1.4 * np.pi * 5.0 / (step * 1.5)))
    ss = np.linspace(-0.7 * np.pi, 0.7 * np.pi, n_s)
    s, y = np.meshgrid(ss, ys)
    rx = 5.5 + 0.8 * _smoothstep((y - 14.0) / 6.0)
    rz = 4.9 + 0.5 * _smoothstep((y - 14.0) / 6.0)
    pts = np.stack([rx * np.sin(s), y, NECK_AXIS_Z - rz * np.cos(s)], axis=-1)
    follow = 1.0 - _smoothstep((y - 9.0) / 9.0)
    uv = np.stack([s, y], axis=-1)
    return GridMesh(NECK, pts, uv, follow, NECK_AXIS_Z)


_SHOULDER_TOP = PchipInterpolator(
    [0.0, 5.0, 7.0, 11.0, 16.0, 20.0, 23.0, 25.0],
    [16.4, 15.7, 15.9, 17.2, 19.0, 21.2, 25.0, 34.0],
)


def shoulder_top(x: np.ndarray) -> np.ndarray:
    """y (cm) of the torso's top edge (collar, then shoulders) at ``x``."""
    return _SHOULDER_TOP(np.abs(np.asarray(x, dtype=np.float64)))


TORSO_AXIS_Z = 2.0
"""Depth (cm) of the torso's vertical axis in the design frame."""


def torso_mesh(step: float) -> GridMesh:
    """Shoulders and chest: a wide curved sheet whose top edge rolls back into the shoulders."""
    half = 25.0
    n_x = max(8, round(2 * half / (step * 2.5)))
    xs = np.linspace(-half, half, n_x)
    n_t = max(8, round(36.0 / (step * 2.5)))
    tt = np.linspace(0.0, 1.0, n_t) ** 1.5  # rows denser at the rolled-back top edge
    t, x = np.meshgrid(tt, xs, indexing="ij")
    top = shoulder_top(x)
    y = top + t * (52.0 - top)
    ax, bz = 26.0, 10.5
    u = np.clip(np.abs(x) / ax, 0.0, 0.999)
    z = TORSO_AXIS_Z - bz * np.sqrt(1.0 - u * u)
    roll = 5.0
    d = np.clip(1.0 - (y - top) / roll, 0.0, 1.0)
    z = z + (1.0 - np.sqrt(1.0 - d * d)) * roll * 1.4
    pts = np.stack([x, y, z], axis=-1)
    uv = np.stack([x, y], axis=-1)
    return GridMesh(TORSO, pts, uv, np.zeros(x.shape), TORSO_AXIS_Z)


def build_meshes(step: float = 0.22, hair_volume: float = 1.0) -> list[GridMesh]:
    """All meshes of the person; ``step`` is the skin's grid spacing in cm."""
    return [skin_mesh(step), hair_mesh(step, hair_volume), neck_mesh(step), torso_mesh(step)]
