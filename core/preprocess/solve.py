"""From the face meshes in the crop to the subject's tracks: pose, L_world, eye ratios."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..subject import Tracks
from .config import PreprocessConfig
from .eyes import eye_ratio, open_eye_area
from .ibug68 import mesh_to_ibug68
from .pose import (
    fit_rigid,
    pose_matrices,
    smooth_landmarks,
    smooth_poses,
    world_landmarks,
)
from .shape import head_box


@dataclass
class SolvedTracks:
    """Everything solved from the meshes; :meth:`tracks` is what the subject stores."""

    K: np.ndarray  # [3, 3] pixels at the subject's size
    lm2d: np.ndarray  # [T, 68, 2] tracked points, pixels
    lm_world: np.ndarray  # [T, 68, 3] head frame, smoothed (eyes raw)
    lm_world_raw: np.ndarray  # [T, 68, 3] before smoothing
    pose: np.ndarray  # [T, 4, 4] head-to-camera, smoothed
    pose_raw: np.ndarray  # [T, 4, 4] per-frame PnP
    stable_rms: np.ndarray  # [T] PnP RMS error of the stable mesh vertices, pixels
    eye_ratio: np.ndarray  # [T, 2] (left, right)
    eye_open_area: np.ndarray  # [2] s0 (left, right)
    mean_shape: np.ndarray  # [68, 3] mean of lm_world over the training split
    head_bbox: np.ndarray  # [2, 3] head units
    tracked: np.ndarray  # [T] bool, a face was found (not interpolated)

    def tracks(self) -> Tracks:
        f32 = np.float32
        return Tracks(
            lm2d=self.lm2d.astype(f32),
            lm_world=self.lm_world.astype(f32),
            pose=self.pose.astype(f32),
            eye_ratio=self.eye_ratio.astype(f32),
            tracked=self.tracked.astype(bool),
            mean_shape=self.mean_shape.astype(f32),
            eye_open_area=self.eye_open_area.astype(f32),
        )


def solve_tracks(
    mesh: np.ndarray, K: np.ndarray, train_frames: int, tracked: np.ndarray, cfg: PreprocessConfig
) -> SolvedTracks:
    """Solve meshes [T, 478, 3] (pixels at the subject's size) with intrinsics K [3, 3]."""
    fit = fit_rigid(mesh, K)
    lm_raw = world_landmarks(fit)  # [T, 68, 3]
    rot, trans = smooth_poses(fit.rot, fit.trans, cfg.pose_window)
    lm_world = smooth_landmarks(lm_raw, cfg.shape_window)
    s0 = open_eye_area(lm_world, range(train_frames))
    return SolvedTracks(
        K=K,
        lm2d=mesh_to_ibug68(mesh)[..., :2],
        lm_world=lm_world,
        lm_world_raw=lm_raw,
        pose=pose_matrices(rot, trans),
        pose_raw=pose_matrices(fit.rot, fit.trans),
        stable_rms=fit.rms,
        eye_ratio=eye_ratio(lm_world, s0),
        eye_open_area=s0,
        mean_shape=lm_world[:train_frames].mean(0),
        head_bbox=head_box(fit.mean_mesh),
        tracked=np.asarray(tracked, bool),
    )
