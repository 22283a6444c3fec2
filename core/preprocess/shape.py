"""The subject's mean 3D shape: perspective-corrected meshes, Procrustes alignment, head frame.

MediaPipe gives each frame's mesh as image pixels plus a relative depth in the same scale, a
weak-perspective description. :func:`unproject_mesh` turns it into a camera-frame shape for a
focal length ``f`` (up to the frame's unknown scale): a vertex at pixel ``(u, v)`` with relative
depth ``z`` lies at depth ``Z0 (1 + z / f)`` on its ray, where ``Z0`` is the depth of MediaPipe's
depth origin; in units of ``Z0 / f`` the point is ``((u - cx)(1 + z/f), (v - cy)(1 + z/f), z + f)``.
Generalised Procrustes over the frames' stable (skull-fixed) vertices then gives the mean shape,
and :func:`head_frame` fixes the head frame of ``core.geometry`` on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import OUTER_EYE_DISTANCE
from .ibug68 import mesh_to_ibug68


def unproject_mesh(mesh: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame shapes [T, N, 3] (units Z0/f per frame) of meshes [T, N, 3] in pixels."""
    f = float(K[0, 0])
    depth = 1.0 + mesh[..., 2:3] / f  # [T, N, 1]
    uv = (mesh[..., :2] - K[:2, 2]) * depth
    return np.concatenate([uv, mesh[..., 2:3] + f], axis=-1)


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s R src + t`` (Umeyama), batched over leading axes.

    ``src``, ``dst``: [..., N, 3] (broadcastable). Returns scale [...], R [..., 3, 3], t [..., 3].
    """
    ms, md = src.mean(-2, keepdims=True), dst.mean(-2, keepdims=True)
    a, b = src - ms, dst - md
    a, b = np.broadcast_arrays(a, b)
    cov = np.einsum("...ni,...nj->...ij", b, a)  # [..., 3, 3]
    u, sv, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))  # [...]
    fix = np.ones(sv.shape)
    fix[..., 2] = d
    rot = (u * fix[..., None, :]) @ vt
    scale = (sv * fix).sum(-1) / np.maximum((a**2).sum((-1, -2)), 1e-12)
    t = md[..., 0, :] - scale[..., None] * np.einsum("...ij,...j->...i", rot, ms[..., 0, :])
    return scale, rot, t


def apply_similarity(
    scale: np.ndarray, rot: np.ndarray, t: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """``s R x + t`` for points ``x`` [..., N, 3] and a batch of similarities."""
    return scale[..., None, None] * np.einsum("...ij,...nj->...ni", rot, x) + t[..., None, :]


@dataclass
class Alignment:
    """Generalised Procrustes result: ``aligned[t] = scale[t] * R[t] @ shapes[t] + t[t]``."""

    mean: np.ndarray  # [N, 3] mean shape in the reference's units
    scale: np.ndarray  # [T]
    rot: np.ndarray  # [T, 3, 3]
    trans: np.ndarray  # [T, 3]
    aligned: np.ndarray  # [T, N, 3]


def procrustes_mean(shapes: np.ndarray, stable: np.ndarray, iters: int = 4) -> Alignment:
    """Align ``shapes`` [T, N, 3] on the vertices ``stable`` and average (generalised Procrustes).

    The reference starts as the shape closest to the median and becomes the mean of the aligned
    stable vertices; its scale is kept at the first reference's so the mean does not shrink.
    """
    ref = np.median(shapes[:, stable], axis=0)  # [S, 3]
    for _ in range(iters):
        scale, rot, trans = similarity(shapes[:, stable], ref)
        stable_aligned = apply_similarity(scale, rot, trans, shapes[:, stable])
        new = stable_aligned.mean(0)
        s, r, t = similarity(new, ref)  # keep the reference's placement and scale
        ref = apply_similarity(np.asarray(s), r, t, new)
    scale, rot, trans = similarity(shapes[:, stable], ref)
    aligned = apply_similarity(scale, rot, trans, shapes)
    return Alignment(aligned.mean(0), scale, rot, trans, aligned)


@dataclass
class HeadFrame:
    """Similarity taking mean-shape coordinates into the head frame: ``s R (x - origin)``."""

    scale: float
    rot: np.ndarray  # [3, 3], rows are the head axes in the source coordinates
    origin: np.ndarray  # [3]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Head-frame coordinates [..., N, 3] of ``x`` [..., N, 3]."""
        return self.scale * (x - self.origin) @ self.rot.T


def head_frame(mean_mesh: np.ndarray) -> HeadFrame:
    """The head frame of ``core.geometry`` fixed on a mean mesh [478, 3] given in the camera
    frame of the typical video frame (the Procrustes reference, the median shape).

    Origin: centroid of the 68 iBUG points. x: subject's left, along the eye corners
    (36→45 plus 39→42). y: the camera's down direction in the typical frame, made orthogonal to
    x: a speaker addresses the camera, so the typical view is "looking straight into it". (The
    anatomical alternative, nasion → chin, tilts by 15-20 degrees on some faces because the
    tracker's chin depth varies.) z = x × y points from the face to the back of the head.
    Scale: outer eye corners 0.9 units apart.
    """
    lm = mesh_to_ibug68(mean_mesh)  # [68, 3]
    x = (lm[45] - lm[36]) + (lm[42] - lm[39])
    x /= np.linalg.norm(x)
    y = np.array([0.0, 1.0, 0.0])
    y = y - x * (x @ y)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    scale = OUTER_EYE_DISTANCE / float(np.linalg.norm(lm[45] - lm[36]))
    return HeadFrame(scale, np.stack([x, y, z]), lm.mean(0))


def head_box(mean_mesh: np.ndarray) -> np.ndarray:
    """The head NeRF's box [[xmin, ymin, zmin], [xmax, ymax, zmax]] in head units.

    Grown from the mean mesh [478, 3] (head frame), which covers the face from chin to upper
    forehead: sideways by 25 % of the face width (ears, hair), upward by 60 % of the face
    height (skull, hair) and downward by 25 % (under the jaw), forward by 10 % of the width, and
    back to a head depth of 1.3 face widths.
    """
    lo, hi = mean_mesh.min(0), mean_mesh.max(0)
    w, h = hi[0] - lo[0], hi[1] - lo[1]
    box_lo = [lo[0] - 0.25 * w, lo[1] - 0.6 * h, lo[2] - 0.1 * w]
    box_hi = [hi[0] + 0.25 * w, hi[1] + 0.25 * h, lo[2] + 1.3 * w]
    return np.array([box_lo, box_hi])
