"""A triangle rasteriser with a z-buffer, in NumPy.

Pixel (col, row) is covered by a triangle when its centre (col + 0.5, row + 0.5) lies inside the
projected triangle (core.geometry's pixel convention). The nearest covering triangle wins.
Barycentric weights are perspective-correct, so attributes interpolate as on the 3D surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Fragments:
    """The visible surface per covered pixel."""

    pixel: np.ndarray  # [P] flat pixel index row * width + col, increasing
    tri: np.ndarray  # [P] index of the visible triangle
    bary: np.ndarray  # [P, 3] perspective-correct barycentric weights
    depth: np.ndarray  # [P] camera-frame z of the visible point
    height: int
    width: int

    def interpolate(self, tris: np.ndarray, attr: np.ndarray) -> np.ndarray:
        """Per-vertex ``attr`` [N, C] at the visible points -> [P, C]."""
        corner = attr[tris[self.tri]]  # [P, 3, C]
        return np.einsum("pk,pkc->pc", self.bary, corner)


def _candidates(
    xy: np.ndarray,
    inv_z: np.ndarray,
    tris: np.ndarray,
    ids: np.ndarray,
    lo: np.ndarray,
    nw: int,
    nh: int,
) -> tuple[np.ndarray, ...]:
    """Test the nw x nh pixel window at ``lo`` [m, 2] (col, row) of each triangle ``ids`` [m].

    The barycentric weights are affine in the pixel: w = w(lo) + dw/dcol * dx + dw/drow * dy.
    """
    t = tris[ids]
    p0, p1, p2 = xy[t[:, 0]], xy[t[:, 1]], xy[t[:, 2]]  # [m, 2]
    e1, e2 = p1 - p0, p2 - p0
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # [m]
    start = lo + 0.5 - p0  # first pixel centre relative to p0
    # weights of p1 and p2 (w1, w2) by Cramer's rule; w0 = 1 - w1 - w2
    w1_0 = (start[:, 0] * e2[:, 1] - start[:, 1] * e2[:, 0]) / area
    w2_0 = (e1[:, 0] * start[:, 1] - e1[:, 1] * start[:, 0]) / area
    w1_dc, w1_dr = e2[:, 1] / area, -e2[:, 0] / area
    w2_dc, w2_dr = -e1[:, 1] / area, e1[:, 0] / area
    dx = np.tile(np.arange(nw, dtype=np.float64), nh)[None]  # [1, nw*nh]
    dy = np.repeat(np.arange(nh, dtype=np.float64), nw)[None]
    w1 = w1_0[:, None] + w1_dc[:, None] * dx + w1_dr[:, None] * dy  # [m, n*n]
    w2 = w2_0[:, None] + w2_dc[:, None] * dx + w2_dr[:, None] * dy
    w0 = 1.0 - w1 - w2
    eps = -1e-9
    rows, cols = np.nonzero((w0 >= eps) & (w1 >= eps) & (w2 >= eps))
    b = np.stack([w0[rows, cols], w1[rows, cols], w2[rows, cols]], -1)
    b = np.clip(b, 0.0, None) * inv_z[t[rows]]  # perspective correction
    s = b.sum(-1)
    pix = lo[rows] + np.stack([cols % nw, cols // nw], -1)
    return ids[rows], pix, b / s[:, None], 1.0 / s


def rasterize(
    xy: np.ndarray, depth: np.ndarray, tris: np.ndarray, height: int, width: int
) -> Fragments:
    """Rasterise triangles ``tris`` [M, 3] over vertices at pixels ``xy`` [N, 2], depth [N].

    Triangles with a vertex behind ``z = 1e-3`` are dropped. Windows are bucketed by the
    triangle's pixel bounding box, so small triangles cost a few candidate pixels each.
    """
    inv_z = 1.0 / np.maximum(depth, 1e-9)
    t0, t1, t2 = tris[:, 0], tris[:, 1], tris[:, 2]
    ok = (depth[t0] > 1e-3) & (depth[t1] > 1e-3) & (depth[t2] > 1e-3)
    p0, p1, p2 = xy[t0], xy[t1], xy[t2]  # [M, 2] each
    lo = np.ceil(np.minimum(np.minimum(p0, p1), p2) - 0.5).astype(np.int64)
    hi = np.floor(np.maximum(np.maximum(p0, p1), p2) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.array([width - 1, height - 1]))
    ext = hi - lo + 1
    ok &= (ext[:, 0] > 0) & (ext[:, 1] > 0)
    # bucket by the window's width and height, each rounded up to a power of two
    shift = np.ceil(np.log2(np.maximum(ext, 1))).astype(np.int64)  # [M, 2]
    key = np.where(ok, shift[:, 0] * 64 + shift[:, 1], -1)
    out: list[tuple[np.ndarray, ...]] = []
    for k in np.unique(key[key >= 0]):
        sel = np.nonzero(key == k)[0]
        nw, nh = 1 << int(k // 64), 1 << int(k % 64)
        tri, pix, b, z = _candidates(xy, inv_z, tris, sel, lo[sel], nw, nh)
        keep = (pix[:, 0] <= hi[tri, 0]) & (pix[:, 1] <= hi[tri, 1])
        out.append((tri[keep], pix[keep], b[keep], z[keep]))
    if not out:
        empty = np.zeros(0, np.int64)
        return Fragments(empty, empty, np.zeros((0, 3)), np.zeros(0), height, width)
    tri = np.concatenate([o[0] for o in out])
    pix = np.concatenate([o[1] for o in out])
    bary = np.concatenate([o[2] for o in out])
    z = np.concatenate([o[3] for o in out])
    flat = pix[:, 1] * width + pix[:, 0]
    # z-buffer: the nearest candidate of every pixel; among exact ties the last one listed
    zbuf = np.full(height * width, np.inf)
    np.minimum.at(zbuf, flat, z)
    win = np.nonzero(z == zbuf[flat])[0]
    owner = np.full(height * width, -1, np.int64)
    owner[flat[win]] = win
    pixel = np.nonzero(owner >= 0)[0]
    k = owner[pixel]
    return Fragments(pixel, tri[k], bary[k], z[k], height, width)
