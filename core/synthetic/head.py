"""The synthetic head's 68 landmarks in the head frame, as a function of its expression.

Expression parameters ``params`` [..., 3] are, per frame:

* ``params[..., 0]`` mouth: the jaw drop in head units, i.e. how far the centre of the lower
  inner lip (iBUG 66) moves down from rest. 0 is the closed mouth; rendering and landmarks are
  linear in it, so ``mouth * 2`` opens the mouth twice as far.
* ``params[..., 1]`` left eye (the subject's left, iBUG 42-47) opening in [0, 1]: 1 open, 0 shut.
* ``params[..., 2]`` right eye (iBUG 36-41) opening in [0, 1].

The eye opening equals the eye-closure ratio of docs/design.md "Preprocess" exactly: the lids move vertically, so the
eye polygon's area (x, y of the head frame) is linear in it and vanishes when shut.

Head units (core.geometry): the design frame of :mod:`.shape` shifted to the centroid of the rest
shape and scaled so that the outer eye corners are ``OUTER_EYE_DISTANCE`` apart. A subject moves
its origin on to the centroid of its mean shape with ``origin`` (see :class:`HeadFrame`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import OUTER_EYE_DISTANCE
from ..landmarks import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS
from . import shape

MOUTH, LEFT_EYE, RIGHT_EYE = 0, 1, 2
NEUTRAL = np.array([0.0, 1.0, 1.0])
"""Closed mouth, both eyes open."""

# Lid points moved by each eye's opening, and the corners whose line they close on.
_EYES = (
    (LEFT_EYE, (43, 44, 46, 47), LEFT_EYE_CORNERS),
    (RIGHT_EYE, (37, 38, 40, 41), RIGHT_EYE_CORNERS),
)


def rest_landmarks_cm() -> np.ndarray:
    """Rest landmarks [68, 3] in the design frame (cm), on the skin surface."""
    xy = shape.LANDMARKS_XY
    return np.column_stack([xy, shape.surface_z(xy[:, 0], xy[:, 1])])


_REST_CM = rest_landmarks_cm()
CENTROID_CM = _REST_CM.mean(axis=0)
"""Centroid (cm, design frame) of the rest shape: the origin of the internal head frame."""
SCALE = OUTER_EYE_DISTANCE / float(np.linalg.norm(_REST_CM[45] - _REST_CM[36]))
"""Head units per design centimetre (0.1: the outer eye corners are 9 cm apart)."""
_JAW_FIELD = shape.jaw_field(_REST_CM)  # [68, 3] cm per cm of jaw drop


def to_head(points_cm: np.ndarray) -> np.ndarray:
    """Design-frame points [..., 3] (cm) -> internal head frame (head units)."""
    return (points_cm - CENTROID_CM) * SCALE


def landmarks_cm(params: np.ndarray) -> np.ndarray:
    """Landmarks [..., 68, 3] in the design frame (cm) for ``params`` [..., 3]."""
    params = np.asarray(params, dtype=np.float64)
    mouth_cm = params[..., MOUTH] / SCALE
    pts = _REST_CM + mouth_cm[..., None, None] * _JAW_FIELD
    pts = np.array(pts, copy=True)
    for col, lids, (ca, cb) in _EYES:
        e = np.clip(params[..., col], 0.0, 1.0)[..., None]  # [..., 1]
        idx = list(lids)
        x = _REST_CM[idx, 0]
        ya, yb = _REST_CM[ca, 1], _REST_CM[cb, 1]
        xa, xb = _REST_CM[ca, 0], _REST_CM[cb, 0]
        y_shut = ya + (x - xa) * (yb - ya) / (xb - xa)  # the corner line at each lid point
        y = y_shut + e * (_REST_CM[idx, 1] - y_shut)
        pts[..., idx, 1] = y
        pts[..., idx, 2] = shape.surface_z(np.broadcast_to(x, y.shape), y)
    return pts


@dataclass(frozen=True)
class HeadFrame:
    """Where a subject puts its head frame's origin, relative to the internal head frame.

    The internal frame's origin is the centroid of the rest shape; a subject's is the centroid
    of its mean shape over the training frames, ``origin`` (head units, internal frame).
    """

    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Subject origin in the internal head frame (head units)."""

    @property
    def offset(self) -> np.ndarray:
        return np.asarray(self.origin, dtype=np.float64)

    def landmarks(self, params: np.ndarray) -> np.ndarray:
        """Landmarks [..., 68, 3] in this head frame (head units) for ``params`` [..., 3]."""
        return to_head(landmarks_cm(params)) - self.offset

    def internal_pose(self, pose: np.ndarray) -> np.ndarray:
        """Head-to-camera ``pose`` [..., 4, 4] of this frame -> the same for the internal frame."""
        out = np.array(pose, dtype=np.float64, copy=True)
        out[..., :3, 3] -= pose[..., :3, :3] @ self.offset
        return out

    def subject_pose(self, internal: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`internal_pose`."""
        out = np.array(internal, dtype=np.float64, copy=True)
        out[..., :3, 3] += internal[..., :3, :3] @ self.offset
        return out


def landmarks_for(params: np.ndarray, origin: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """The 68 landmarks [..., 68, 3] (head units) of the synthetic head for ``params`` [..., 3].

    ``origin`` is the subject's head-frame origin in the internal frame (``HeadFrame.origin``,
    stored in a synthetic subject's ``subject.json`` ``source``); the default is the internal
    frame itself.
    """
    return HeadFrame(tuple(origin)).landmarks(params)  # type: ignore[arg-type]
