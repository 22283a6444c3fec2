"""Coordinate conventions, written once for the whole program, and the helpers that use them.

Camera frame
    OpenCV's: x to the right of the image, y down, z forward (into the scene). A point in front
    of the camera has z > 0.

Image pixels
    (u, v) with (0, 0) at the top-left corner of the top-left pixel; the centre of pixel
    (col, row) is (col + 0.5, row + 0.5). Intrinsics ``K`` [3, 3] are in pixels at the subject's
    stored resolution (``subject.json`` ``size``); :func:`scale_intrinsics` moves them to another
    square size.

Head frame (the NeRF's world)
    Rigidly attached to the head; the head never moves in it, the camera does. Axes are those of
    the camera when the face looks straight into it: x toward the subject's left (image right),
    y down (chin), z from the face toward the back of the head. The origin is the centroid of the
    subject's mean 68-point shape. One head unit is 10 cm: the mean shape is scaled so that the
    outer eye corners (iBUG 36 and 45) are :data:`OUTER_EYE_DISTANCE` = 0.9 units apart.

Pose
    ``pose`` [4, 4] is **head-to-camera**: ``X_cam = R @ X_head + t``. The NeRF's camera-to-world
    matrix is its inverse, :func:`invert_pose`.
"""

from __future__ import annotations

import numpy as np

OUTER_EYE_DISTANCE = 0.9
"""Distance between iBUG points 36 and 45 in head units (10 cm), fixing the head frame's scale."""


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Invert rigid transforms ``pose`` [..., 4, 4] (head-to-camera -> camera-to-head)."""
    rot = pose[..., :3, :3]
    trans = pose[..., :3, 3:]
    out = np.zeros_like(pose)
    rot_t = np.swapaxes(rot, -1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3:] = -rot_t @ trans
    out[..., 3, 3] = 1.0
    return out


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply ``pose`` [..., 4, 4] to ``points`` [..., N, 3]."""
    return points @ np.swapaxes(pose[..., :3, :3], -1, -2) + pose[..., None, :3, 3]


def project(K: np.ndarray, points_cam: np.ndarray) -> np.ndarray:
    """Project camera-frame ``points_cam`` [..., N, 3] with intrinsics ``K`` [3, 3] to [..., N, 2]."""
    z = np.clip(points_cam[..., 2:3], 1e-6, None)
    uv = points_cam[..., :2] / z
    return uv * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def project_head_points(K: np.ndarray, pose: np.ndarray, points_head: np.ndarray) -> np.ndarray:
    """Pixels [..., N, 2] of head-frame ``points_head`` [..., N, 3] seen with ``pose`` [..., 4, 4]."""
    return project(K, transform_points(pose, points_head))


def scale_intrinsics(K: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Intrinsics for a square image resized from ``from_size`` to ``to_size`` pixels."""
    s = to_size / from_size
    out = np.array(K, dtype=np.float64, copy=True)
    out[:2] *= s
    return out


def default_intrinsics(size: int, focal: float | None = None) -> np.ndarray:
    """Pinhole ``K`` [3, 3] for a square ``size`` image, principal point at the centre.

    ``focal`` defaults to ``1.2 * size`` (about a 45 degree field of view), a typical
    webcam/phone framing once the face is cropped.
    """
    f = 1.2 * size if focal is None else float(focal)
    c = size / 2.0
    return np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])


def rotation_from_euler(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Rotation [3, 3] from angles in radians: about x (pitch), y (yaw), z (roll), as Rz Ry Rx."""
    cx, sx = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cz, sz = np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_rotation(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_from_euler`: (pitch, yaw, roll) in radians."""
    yaw = float(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    pitch = float(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = float(np.arctan2(rot[1, 0], rot[0, 0]))
    return pitch, yaw, roll


def rotation_angle_deg(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees between rotations [..., 3, 3]."""
    rel = np.swapaxes(rot_a, -1, -2) @ rot_b
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
