"""The iBUG 68-point landmark scheme: groups, the stage-1 subset, and opening measures.

Indices are 0-based. "Left" and "right" are the subject's own.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 68

JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
MOUTH = tuple(range(48, 68))
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))

STAGE1_POINTS = JAW + MOUTH
"""The 37 points stage 1 predicts (jaw line and lips); the other 31 come from the reference."""

REFERENCE_POINTS = tuple(i for i in range(NUM_LANDMARKS) if i not in STAGE1_POINTS)

STABLE_POINTS = (27, 28, 29, 30, 36, 39, 42, 45)
"""Points that move with the skull only (nose bridge, eye corners): used for rigid fitting."""

# Upper/lower lid pairs per eye and the corners giving its width.
LEFT_EYE_LIDS = ((43, 47), (44, 46))
LEFT_EYE_CORNERS = (42, 45)
RIGHT_EYE_LIDS = ((37, 41), (38, 40))
RIGHT_EYE_CORNERS = (36, 39)
MOUTH_CORNERS = (48, 54)
INNER_LIP_PAIR = (62, 66)


def eye_opening(points: np.ndarray, left: bool) -> np.ndarray:
    """Mean lid gap / eye width for ``points`` [..., 68, 2 or 3] (docs/design.md "Editing")."""
    lids = LEFT_EYE_LIDS if left else RIGHT_EYE_LIDS
    a, b = LEFT_EYE_CORNERS if left else RIGHT_EYE_CORNERS
    gap = np.mean(
        [np.linalg.norm(points[..., u, :] - points[..., d, :], axis=-1) for u, d in lids], 0
    )
    width = np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)
    return gap / np.maximum(width, 1e-9)


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap (62-66) / mouth width (48-54) for ``points`` [..., 68, 2 or 3]."""
    gap = np.linalg.norm(
        points[..., INNER_LIP_PAIR[0], :] - points[..., INNER_LIP_PAIR[1], :], axis=-1
    )
    a, b = MOUTH_CORNERS
    width = np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)
    return gap / np.maximum(width, 1e-9)


def polygon_area(points: np.ndarray) -> np.ndarray:
    """Shoelace area of closed polygons ``points`` [..., N, 2]."""
    x, y = points[..., 0], points[..., 1]
    return 0.5 * np.abs(np.sum(x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y, axis=-1))


def eye_area(points: np.ndarray, left: bool) -> np.ndarray:
    """Area of the eye polygon (x, y of the head frame) for ``points`` [..., 68, >=2]."""
    idx = list(LEFT_EYE if left else RIGHT_EYE)
    return polygon_area(points[..., idx, :2])
