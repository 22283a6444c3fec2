"""Rigid head pose per frame, the head-frame landmarks ``L_world``, and the focal length.

Method (paper Sec. IV-A with the face mesh in place of the 3DMM):

1. The frames' meshes are unprojected for the focal length (``shape.unproject_mesh``), aligned
   by generalised Procrustes on the stable vertices, and averaged: the subject's mean shape,
   put into the head frame (``shape.head_frame``).
2. Per frame, perspective PnP of the mean shape's stable vertices against their tracked 2D
   positions (OpenCV's iterative Levenberg-Marquardt, started from the Procrustes pose) gives
   the head-to-camera pose.
3. ``L_world``: the frame's own unprojected mesh, scaled onto the posed mean shape (its depth
   along the camera rays), brought into the head frame by the inverse pose — expression kept,
   motion removed.
4. Poses are smoothed over time with a Savitzky-Golay filter (zero lag) on rotation vectors
   (relative to the mean rotation) and translations; L_world with a shorter one, eyes excluded
   so that blinks keep their depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.signal import savgol_filter
from scipy.spatial.transform import Rotation

from ..landmarks import LEFT_EYE, RIGHT_EYE
from .ibug68 import mesh_map, mesh_to_ibug68
from .shape import head_frame, procrustes_mean, unproject_mesh


def intrinsics(size: int, focal: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """K [3, 3] for a square ``size`` image; the principal point is ``centre`` (u, v) in pixels,
    by default the image's centre."""
    cx, cy = (size / 2.0, size / 2.0) if centre is None else centre
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])


def pose_matrices(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """[T, 4, 4] rigid transforms from rotations [T, 3, 3] and translations [T, 3]."""
    out = np.zeros((len(rot), 4, 4))
    out[:, :3, :3] = rot
    out[:, :3, 3] = trans
    out[:, 3, 3] = 1.0
    return out


@dataclass
class RigidFit:
    """Mean shape and per-frame poses for one focal length."""

    K: np.ndarray  # [3, 3]
    mean_mesh: np.ndarray  # [478, 3] head frame
    rot: np.ndarray  # [T, 3, 3] head-to-camera
    trans: np.ndarray  # [T, 3]
    rms: np.ndarray  # [T] RMS reprojection error (px) of the stable vertices
    shapes: np.ndarray  # [T, 478, 3] unprojected meshes (camera frame up to scale)


def fit_rigid(mesh: np.ndarray, K: np.ndarray) -> RigidFit:
    """Mean shape (Procrustes) and PnP poses of meshes [T, 478, 3] (pixels) for intrinsics K."""
    stable = mesh_map().stable_vertices
    shapes = unproject_mesh(mesh, K)  # [T, 478, 3]
    align = procrustes_mean(shapes, stable)
    frame = head_frame(align.mean)
    mean_mesh = frame.apply(align.mean)  # [478, 3]
    # Procrustes pose, exact for the frame's own shape. With aligned = s R C + t and
    # head = h R_h (aligned - o), the camera-frame shape (Z0/f) C is rigid in head units when
    # Z0/f = h s: X = R^T R_h^T head + h R^T (o - t).
    rot0 = np.einsum("tji,kj->tik", align.rot, frame.rot)
    trans0 = frame.scale * np.einsum("tji,tj->ti", align.rot, frame.origin - align.trans)
    obj = np.ascontiguousarray(mean_mesh[stable])  # [S, 3]
    no_dist = np.zeros(4)
    rot = np.empty_like(rot0)
    trans = np.empty_like(trans0)
    rms = np.empty(len(mesh))
    for t in range(len(mesh)):
        img = np.ascontiguousarray(mesh[t, stable, :2])
        rvec, _ = cv2.Rodrigues(rot0[t])
        tvec = trans0[t].reshape(3, 1).copy()
        ok, rvec, tvec = cv2.solvePnP(
            obj, img, K, no_dist, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
        )
        if not ok or tvec[2, 0] <= 0:
            rvec, _ = cv2.Rodrigues(rot0[t])
            tvec = trans0[t].reshape(3, 1)
        proj, _ = cv2.projectPoints(obj, rvec, tvec, K, no_dist)
        rms[t] = np.sqrt(((proj[:, 0] - img) ** 2).sum(-1).mean())
        rot[t] = cv2.Rodrigues(rvec)[0]
        trans[t] = tvec[:, 0]
    return RigidFit(K, mean_mesh, rot, trans, rms, shapes)


def world_landmarks(fit: RigidFit) -> np.ndarray:
    """L_world [T, 68, 3]: each frame's own shape in the head frame (inverse pose)."""
    stable = mesh_map().stable_vertices
    posed = np.einsum("tij,nj->tni", fit.rot, fit.mean_mesh[stable]) + fit.trans[:, None]
    own = fit.shapes[:, stable]  # [T, S, 3]
    depth_scale = (own * posed).sum((1, 2)) / (own * own).sum((1, 2))  # [T]
    cam = mesh_to_ibug68(fit.shapes) * depth_scale[:, None, None]  # [T, 68, 3] camera frame
    return np.einsum("tji,tnj->tni", fit.rot, cam - fit.trans[:, None])


def _window(n: int, window: int) -> int:
    """Largest odd window <= ``window`` that fits ``n`` samples (1 = no smoothing)."""
    w = min(window, n if n % 2 else n - 1)
    return w if w >= 5 else 1


def smooth_poses(rot: np.ndarray, trans: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Savitzky-Golay (order 2, zero lag) on rotation vectors about the mean rotation and on
    translations; returns smoothed rot [T, 3, 3], trans [T, 3]."""
    w = _window(len(rot), window)
    if w == 1:
        return rot.copy(), trans.copy()
    mean = Rotation.from_matrix(rot).mean()
    rvec = (mean.inv() * Rotation.from_matrix(rot)).as_rotvec()  # [T, 3]
    rvec = savgol_filter(rvec, w, 2, axis=0, mode="interp")
    out_rot = (mean * Rotation.from_rotvec(rvec)).as_matrix()
    return out_rot, savgol_filter(trans, w, 2, axis=0, mode="interp")


def smooth_landmarks(lm: np.ndarray, window: int) -> np.ndarray:
    """Savitzky-Golay (order 3) over time on ``lm`` [T, 68, 3], eye points left untouched."""
    w = _window(len(lm), window)
    if w == 1:
        return lm.copy()
    out = savgol_filter(lm, w, 3, axis=0, mode="interp")
    eyes = list(LEFT_EYE + RIGHT_EYE)
    out[:, eyes] = lm[:, eyes]
    return out


@dataclass
class FocalSearch:
    """How the focal length was chosen."""

    focal: float
    """The chosen focal length in pixels at the subject's size."""
    decided_by: str
    """"given" (--focal), "data" (clear minimum) or "prior" (data could not tell)."""
    curve: list[tuple[float, float]] = field(default_factory=list)
    """(focal, mean RMS reprojection error of the stable vertices) per candidate."""


def estimate_focal(
    mesh: np.ndarray,
    size: int,
    prior: float,
    frames: int = 60,
    tolerance: float = 0.005,
    tolerance_px: float = 0.01,
    centre: tuple[float, float] | None = None,
) -> FocalSearch:
    """Focal length (pixels at ``size``) minimising the stable vertices' reprojection error.

    For each candidate on a log grid over [0.5, 8] x ``size`` the mean shape is rebuilt and the
    poses solved (on at most ``frames`` evenly spaced frames). A rigid shape seen through the
    wrong focal length fits worse as the head turns and moves; when the head barely moves the
    error curve is flat and the focal length is not observable. Candidates within
    ``tolerance`` (relative) plus ``tolerance_px`` of the minimum count as ties, and among them
    the one nearest to ``prior`` in log scale wins (``decided_by="prior"`` when the prior
    itself ties).
    """
    pick = np.unique(np.linspace(0, len(mesh) - 1, min(frames, len(mesh))).round().astype(int))
    sub = mesh[pick]
    grid = sorted({*(size * np.geomspace(0.5, 8.0, 9)), float(prior)})
    curve = [
        (float(f), float(fit_rigid(sub, intrinsics(size, f, centre)).rms.mean())) for f in grid
    ]
    best = min(e for _, e in curve)
    ties = [f for f, e in curve if e <= best * (1 + tolerance) + tolerance_px]
    chosen = min(ties, key=lambda f: abs(np.log(f / prior)))
    decided = "prior" if chosen == prior else "data"
    return FocalSearch(float(chosen), decided, curve)
