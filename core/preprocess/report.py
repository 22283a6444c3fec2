"""What preprocessing measured (``preprocess_report.json``) and the contact sheet PNG."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry import OUTER_EYE_DISTANCE, euler_from_rotation, project_head_points
from ..landmarks import STABLE_POINTS
from ..subject import (
    MASK_FACE,
    MASK_HEAD,
    MASK_LEFT_EYE,
    MASK_MOUTH,
    MASK_RIGHT_EYE,
    MASK_TORSO,
)

HEAD_UNIT_MM = 100.0
"""Millimetres per head unit (core.geometry: one head unit is 10 cm)."""


def reprojection_errors(
    K: np.ndarray, pose: np.ndarray, lm_world: np.ndarray, lm2d: np.ndarray
) -> np.ndarray:
    """Pixel distance [T, 68] between ``lm_world`` seen with ``pose`` and K, and ``lm2d``."""
    return np.linalg.norm(project_head_points(K, pose, lm_world) - lm2d, axis=-1)


def pose_jitter(pose: np.ndarray) -> dict[str, float]:
    """RMS second difference over time of rotation (degrees) and translation (mm) of ``pose``
    [T, 4, 4]: zero for motion at constant velocity, large for frame-to-frame noise."""
    if len(pose) < 3:
        return {"rotation_deg": 0.0, "translation_mm": 0.0}
    rot = Rotation.from_matrix(pose[:, :3, :3])
    rvec = (rot[0].inv() * rot).as_rotvec()  # [T, 3], continuous for small motions
    acc_r = np.diff(rvec, 2, axis=0)
    acc_t = np.diff(pose[:, :3, 3], 2, axis=0)
    return {
        "rotation_deg": float(np.degrees(np.sqrt((acc_r**2).sum(-1).mean()))),
        "translation_mm": float(HEAD_UNIT_MM * np.sqrt((acc_t**2).sum(-1).mean())),
    }


def rigidity(lm_world: np.ndarray) -> dict[str, float]:
    """Std over time of the head-frame positions of the stable points (nose bridge, eye corners),
    relative to the inter-ocular (outer eye corner) distance: mean and max over the points."""
    std = np.linalg.norm(lm_world[:, list(STABLE_POINTS)].std(0), axis=-1)  # [8]
    return {
        "mean": float(std.mean() / OUTER_EYE_DISTANCE),
        "max": float(std.max() / OUTER_EYE_DISTANCE),
    }


def angle_ranges(pose: np.ndarray) -> dict[str, list[float]]:
    """[min, max] in degrees of pitch, yaw, roll over the track."""
    eul = np.degrees(np.array([euler_from_rotation(p[:3, :3]) for p in pose]))  # [T, 3]
    names = ("pitch", "yaw", "roll")
    return {n: [float(eul[:, i].min()), float(eul[:, i].max())] for i, n in enumerate(names)}


# -- contact sheet ---------------------------------------------------------------------------------
COLOURS = (  # bit, RGB
    (MASK_TORSO, (60, 90, 200)),
    (MASK_HEAD, (60, 180, 80)),
    (MASK_FACE, (230, 200, 60)),
    (MASK_MOUTH, (220, 60, 60)),
    (MASK_LEFT_EYE, (200, 60, 220)),
    (MASK_RIGHT_EYE, (60, 220, 220)),
)


def _tile(img: np.ndarray, tile: int) -> np.ndarray:
    return cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)


def draw_landmarks(rgb: np.ndarray, lm2d: np.ndarray, reproj: np.ndarray) -> np.ndarray:
    """Tracked points (green) and L_world reprojected with pose and K (red) on a copy of ``rgb``."""
    out = rgb.copy()
    r = max(1, rgb.shape[0] // 256)
    for p in lm2d:
        cv2.circle(out, (round(p[0]), round(p[1])), r + 1, (40, 230, 40), -1, cv2.LINE_AA)
    for p in reproj:
        cv2.circle(out, (round(p[0]), round(p[1])), r, (240, 40, 40), -1, cv2.LINE_AA)
    return out


def draw_mask(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label mask's regions tinted over a dimmed copy of ``rgb``."""
    out = (rgb * 0.35).astype(np.float32)
    for bit, colour in COLOURS:
        sel = (labels & bit) != 0
        out[sel] = 0.45 * out[sel] + 0.55 * np.array(colour, np.float32)
    return out.astype(np.uint8)


def plot_curves(
    curves: list[tuple[np.ndarray, tuple[int, int, int]]], tile: int, label: str
) -> np.ndarray:
    """A small line plot of 1-D ``curves`` (each scaled to its own range) with a label."""
    img = np.full((tile, tile, 3), 245, np.uint8)
    for values, colour in curves:
        v = np.asarray(values, np.float64)
        lo, hi = float(v.min()), float(v.max())
        y = (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
        xs = np.linspace(8, tile - 8, len(v))
        ys = tile - 24 - y * (tile - 48)
        pts = np.stack([xs, ys], -1).round().astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, colour, 1, cv2.LINE_AA)
    cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def contact_sheet(
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    plate: np.ndarray,
    eye_ratio: np.ndarray,
    pose: np.ndarray,
    tile: int = 256,
) -> np.ndarray:
    """RGB uint8 sheet: one row per sample (landmarks, masks, head on background), then a row
    with the background plate, the eye ratios and the head angles over time.

    ``samples``: (frame [H, W, 3], labels [H, W], lm2d [68, 2], reprojected [68, 2],
    head-on-background [H, W, 3]) per sampled frame.
    """
    rows = []
    for rgb, labels, lm2d, reproj, hob in samples:
        rows.append(
            np.concatenate(
                [
                    _tile(draw_landmarks(rgb, lm2d, reproj), tile),
                    _tile(draw_mask(rgb, labels), tile),
                    _tile(hob, tile),
                ],
                axis=1,
            )
        )
    eul = np.degrees(np.array([euler_from_rotation(p[:3, :3]) for p in pose]))  # [T, 3]
    rows.append(
        np.concatenate(
            [
                _tile(plate, tile),
                plot_curves(
                    [(eye_ratio[:, 0], (200, 60, 220)), (eye_ratio[:, 1], (40, 160, 160))],
                    tile,
                    "eye ratio L/R",
                ),
                plot_curves(
                    [
                        (eul[:, 0], (200, 40, 40)),
                        (eul[:, 1], (40, 150, 40)),
                        (eul[:, 2], (40, 40, 200)),
                    ],
                    tile,
                    "pitch yaw roll",
                ),
            ],
            axis=1,
        )
    )
    return np.concatenate(rows, axis=0)
