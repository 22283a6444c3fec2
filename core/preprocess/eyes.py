"""The eye-closure ratio r (paper Sec. IV-A): eye-opening area / the subject's open-eye area s0.

Areas are those of the iBUG eye polygons (36-41, 42-47) in the head frame's x-y plane
(``core.landmarks.eye_area``), so head motion does not change them. ``s0`` per eye is a high
percentile of that area over the training frames: the eye as open as this subject opens it,
robust to the few frames of wide surprise. r is about 1 with the eye open and about 0 closed.
"""

from __future__ import annotations

import numpy as np

from ..landmarks import eye_area

OPEN_PERCENTILE = 90.0
"""Percentile of the per-frame eye area taken as the open-eye area s0."""


def open_eye_area(lm_world: np.ndarray, train: range | slice | None = None) -> np.ndarray:
    """s0 per eye, (left, right), in head units² from ``lm_world`` [T, 68, 3]."""
    sel = (
        lm_world if train is None else lm_world[train if isinstance(train, slice) else list(train)]
    )
    areas = np.stack([eye_area(sel, left=True), eye_area(sel, left=False)], -1)  # [T', 2]
    return np.percentile(areas, OPEN_PERCENTILE, axis=0)


def eye_ratio(lm_world: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """r [T, 2] (subject's left, right) = eye area / s0 for ``lm_world`` [T, 68, 3]."""
    areas = np.stack([eye_area(lm_world, left=True), eye_area(lm_world, left=False)], -1)
    return areas / np.maximum(s0, 1e-12)
