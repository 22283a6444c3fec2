"""Person segmentation (MediaPipe selfie segmentation) and the per-frame label mask.

Neck line (the head/torso boundary). The head NeRF renders the head with its hair; the torso
network renders neck, shoulders and body. The line follows the lower jaw contour, iBUG points
4..12 (mouth-corner level on one side, round the chin, to the other), moved down by
``NECK_DROP`` x the face height (nasion 27 to chin 8) so the jaw's edge stays in the head, and
continues straight outward from points 4 and 12 along the jaw's chord (4 → 12) to the image
border. Person pixels above the line are head (hair included), below it torso; the face polygon
always counts as head.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from ..closing import Closes
from ..subject import (
    MASK_FACE,
    MASK_HEAD,
    MASK_LEFT_EYE,
    MASK_MOUTH,
    MASK_PERSON,
    MASK_RIGHT_EYE,
    MASK_TORSO,
)

NECK_DROP = 0.04
"""How far below the jaw contour the neck line runs, as a fraction of the face height."""
DILATE = 0.006
"""Dilation of the eye and mouth polygons, as a fraction of the image side."""
FACE_OUTLINE = (*range(0, 17), *range(26, 16, -1))
"""Jaw line then brows right to left: the face polygon."""


class PersonSegmenter(Closes):
    """MediaPipe selfie segmentation (general model, 256 x 256 input) run at ``seg_size``."""

    def __init__(self, seg_size: int = 256) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        from mediapipe.python.solutions import selfie_segmentation

        self.seg_size = seg_size
        self._seg: Any = selfie_segmentation.SelfieSegmentation(model_selection=0)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Person probability float32 [H, W] in [0, 1] for ``rgb`` uint8 [H, W, 3]."""
        h, w = rgb.shape[:2]
        small = rgb
        if max(h, w) > self.seg_size:
            small = cv2.resize(rgb, (self.seg_size, self.seg_size), interpolation=cv2.INTER_AREA)
        prob = self._seg.process(np.ascontiguousarray(small)).segmentation_mask
        if prob.shape != (h, w):
            prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(prob, 0.0, 1.0).astype(np.float32, copy=False)

    def close(self) -> None:
        self._seg.close()


def _poly(mask: np.ndarray, pts: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], (1,))


def below_neck(lm2d: np.ndarray, size: int) -> np.ndarray:
    """uint8 [size, size] mask of the region below the neck line for ``lm2d`` [68, 2] pixels."""
    face_h = float(np.linalg.norm(lm2d[8] - lm2d[27]))
    chord = lm2d[12] - lm2d[4]
    h = chord / max(float(np.linalg.norm(chord)), 1e-6)  # along the jaw, toward the subject's left
    down = np.array([-h[1], h[0]])  # perpendicular, toward the chin
    if down @ (lm2d[8] - lm2d[27]) < 0:
        down = -down
    jaw = lm2d[4:13] + NECK_DROP * face_h * down  # [9, 2]
    far = 4.0 * size
    poly = np.concatenate(
        [
            [jaw[0] - far * h],
            jaw,
            [jaw[-1] + far * h, jaw[-1] + far * h + far * down, jaw[0] - far * h + far * down],
        ]
    )
    mask = np.zeros((size, size), np.uint8)
    _poly(mask, poly)
    return mask


def label_mask(lm2d: np.ndarray, person_prob: np.ndarray) -> np.ndarray:
    """The bit-field mask (``core.subject.MASK_*``) uint8 [H, W] of one frame.

    ``lm2d`` [68, 2] are the frame's tracked landmarks in pixels, ``person_prob`` [H, W] the
    segmenter's output (person where >= 0.5).
    """
    size = person_prob.shape[0]
    face_u8 = np.zeros((size, size), np.uint8)
    _poly(face_u8, lm2d[list(FACE_OUTLINE)])
    face = face_u8 > 0
    k = max(1, round(DILATE * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    regions = []  # left eye, right eye, mouth: bool [H, W]
    for idx in (range(42, 48), range(36, 42), range(48, 60)):
        m = np.zeros((size, size), np.uint8)
        _poly(m, lm2d[list(idx)])
        regions.append(cv2.dilate(m, kernel) > 0)
    person = (person_prob >= 0.5) | face
    below = below_neck(lm2d, size) > 0
    head = (person & ~below) | face
    torso = person & below & ~face
    out = np.zeros((size, size), np.uint8)
    for bit, sel in (
        (MASK_PERSON, person),
        (MASK_HEAD, head),
        (MASK_TORSO, torso),
        (MASK_FACE, face),
        (MASK_LEFT_EYE, regions[0]),
        (MASK_RIGHT_EYE, regions[1]),
        (MASK_MOUTH, regions[2]),
    ):
        out[sel] |= np.uint8(bit)
    return out.astype(np.uint8)
