"""The synthetic head's shape: its face surface and the 68 iBUG landmarks that lie on it.

Everything here is in the *design frame*, in centimetres: x toward the subject's left (image
right), y down, z away from the camera (the head frame's axes, core.geometry), with the eye line
at y = 0 and the head's vertical axis at x = z = 0. :mod:`.head` converts to head units.

The head is a stack of horizontal ellipses (half-width ``a(y)``, half-depth ``b(y)``, centre
depth ``zc(y)``), its front pushed and pulled by a smooth relief (nose, brow ridge, eye sockets,
cheekbones, lips, chin). The surface is a height field over the front: :func:`surface_z`.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

# Rest landmarks (x, y) in cm: mouth closed (inner lips LIP_GAP apart), eyes open.
LANDMARKS_XY = np.array(
    [
        # jaw 0-16 (subject's right ear -> chin -> left ear)
        (-7.2, 0.5), (-7.1, 2.2), (-6.9, 3.9), (-6.5, 5.6), (-5.9, 7.2), (-5.0, 8.6),
        (-3.8, 9.8), (-2.2, 10.7), (0.0, 11.0), (2.2, 10.7), (3.8, 9.8), (5.0, 8.6),
        (5.9, 7.2), (6.5, 5.6), (6.9, 3.9), (7.1, 2.2), (7.2, 0.5),
        # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
        (-5.4, -1.6), (-4.6, -2.4), (-3.5, -2.7), (-2.4, -2.6), (-1.2, -2.2),
        (1.2, -2.2), (2.4, -2.6), (3.5, -2.7), (4.6, -2.4), (5.4, -1.6),
        # nose 27-35 (bridge 27-30, base 31-35)
        (0.0, -0.2), (0.0, 1.1), (0.0, 2.4), (0.0, 3.6),
        (-1.3, 4.15), (-0.7, 4.35), (0.0, 4.5), (0.7, 4.35), (1.3, 4.15),
        # right eye 36-41 (outer corner, upper outer, upper inner, inner corner, lower inner,
        # lower outer) and left eye 42-47 (inner corner, upper inner, upper outer, outer
        # corner, lower outer, lower inner)
        (-4.5, 0.0), (-3.65, -0.58), (-2.35, -0.6), (-1.5, 0.05), (-2.35, 0.42), (-3.65, 0.4),
        (1.5, 0.05), (2.35, -0.6), (3.65, -0.58), (4.5, 0.0), (3.65, 0.4), (2.35, 0.42),
        # outer lips 48-59 (right corner, upper lip to left corner, lower lip back)
        (-2.5, 6.5), (-1.6, 5.95), (-0.65, 5.7), (0.0, 5.82), (0.65, 5.7), (1.6, 5.95),
        (2.5, 6.5), (1.65, 7.25), (0.8, 7.55), (0.0, 7.62), (-0.8, 7.55), (-1.65, 7.25),
        # inner lips 60-67 (right corner, upper 61-63, left corner, lower 65-67); y set below
        (-2.2, 6.5), (-0.75, 0.0), (0.0, 0.0), (0.75, 0.0), (2.2, 6.5),
        (0.75, 0.0), (0.0, 0.0), (-0.75, 0.0),
    ],
    dtype=np.float64,
)  # fmt: skip

SLIT_Y = 6.5
"""Height (cm) of the mouth slit, the line the lips meet on."""
LIP_GAP = 0.1
"""Gap (cm) between the inner lips at rest; the jaw drop adds to it."""
MOUTH_CORNER_X = 2.5
"""Half the mouth width (cm): the slit runs between x = -2.5 and 2.5."""
LANDMARKS_XY[61:64, 1] = SLIT_Y - LIP_GAP / 2
LANDMARKS_XY[65:68, 1] = SLIT_Y + LIP_GAP / 2

JAW_PIVOT = np.array([0.0, 1.0, -0.5])
"""A point (cm) on the jaw's hinge axis (parallel to x), just in front of the ears."""
JAW_GLIDE = 0.45
"""Fraction of the hinge rotation's backward motion left after the hinge's forward glide."""


def _pchip(knots: list[tuple[float, float]]) -> PchipInterpolator:
    k = np.asarray(knots, dtype=np.float64)
    return PchipInterpolator(k[:, 0], k[:, 1], extrapolate=True)


HEAD_TOP = -11.6
"""y (cm) of the crown; the head surface spans [HEAD_TOP, HEAD_BOTTOM]."""
HEAD_BOTTOM = 11.25
"""y (cm) of the lowest point of the chin."""

_HALF_WIDTH = _pchip(
    [(-11.6, 0.0), (-11.3, 2.6), (-10.5, 4.6), (-9.0, 6.1), (-7.0, 7.0), (-4.5, 7.45),
     (-2.0, 7.55), (0.5, 7.55), (2.2, 7.45), (3.9, 7.25), (5.6, 6.85), (7.2, 6.22),
     (8.6, 5.3), (9.8, 4.1), (10.7, 2.55), (11.0, 1.6), (11.25, 0.0)]
)  # fmt: skip
_FRONT = _pchip(
    [(-11.6, -0.5), (-11.3, -3.4), (-10.5, -5.6), (-9.0, -7.3), (-7.0, -8.4), (-4.5, -8.9),
     (-2.0, -9.0), (0.0, -8.7), (2.5, -8.6), (5.0, -8.7), (7.0, -8.8), (9.0, -8.6),
     (10.3, -8.3), (11.0, -7.7), (11.25, -6.9)]
)  # fmt: skip
_CENTRE = _pchip(
    [(-11.6, 0.0), (4.0, 0.0), (6.5, -0.6), (8.5, -2.0), (10.0, -3.8), (11.0, -5.6),
     (11.25, -6.3)]
)  # fmt: skip
_NOSE_HEIGHT = _pchip(
    [(-1.4, 0.0), (-0.4, 0.3), (1.0, 0.85), (2.4, 1.55), (3.35, 2.2), (3.7, 2.3), (4.1, 1.7),
     (4.45, 0.55), (4.8, 0.0)]
)  # fmt: skip
_NOSE_WIDTH = _pchip([(-1.4, 0.7), (0.5, 0.55), (2.4, 0.68), (3.6, 0.85), (4.5, 1.1)])


def half_width(y: np.ndarray) -> np.ndarray:
    """a(y): half-width (cm) of the head's cross-section at height ``y``."""
    yy = np.clip(y, HEAD_TOP, HEAD_BOTTOM)
    return np.maximum(_HALF_WIDTH(yy), 0.0)


def centre_depth(y: np.ndarray) -> np.ndarray:
    """zc(y): depth (cm) of the cross-section's centre; it moves forward toward the chin."""
    return _CENTRE(np.clip(y, HEAD_TOP, HEAD_BOTTOM))


def half_depth(y: np.ndarray) -> np.ndarray:
    """b(y): half-depth (cm) of the cross-section, so that its front is at ``_FRONT(y)``."""
    yy = np.clip(y, HEAD_TOP, HEAD_BOTTOM)
    return np.maximum(_CENTRE(yy) - _FRONT(yy), 0.0)


def _gauss(
    x: np.ndarray, y: np.ndarray | float, cx: float, cy: float, sx: float, sy: float
) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth offset (cm, negative = toward the camera) of the facial features at (x, y)."""
    ax = np.abs(x)
    nose = -_NOSE_HEIGHT(np.clip(y, -1.4, 4.8)) * np.exp(
        -0.5 * (x / _NOSE_WIDTH(np.clip(y, -1.4, 4.5))) ** 2
    )
    nose = np.where((y > -1.4) & (y < 4.8), nose, 0.0)
    alae = -0.75 * _gauss(ax, y, 1.05, 3.95, 0.5, 0.42)
    sockets = 0.75 * _gauss(ax, y, 2.9, -0.05, 1.45, 0.95) - 0.4 * _gauss(ax, y, 3.0, 0.0, 1.0, 0.5)
    brow = -0.4 * np.exp(-0.5 * ((y + 2.1) / 0.75) ** 2) * _gauss(ax, 0.0, 2.6, 0.0, 2.8, 1.0)
    cheeks = -0.6 * _gauss(ax, y, 4.3, 2.7, 1.6, 1.5) + 0.25 * _gauss(ax, y, 6.3, -2.3, 0.9, 1.4)
    muzzle = -0.85 * _gauss(x, y, 0.0, 6.5, 2.6, 1.6)
    upper_lip = -0.28 * _gauss(x, y, 0.0, 5.98, 1.7, 0.38)
    lower_lip = -0.3 * _gauss(x, y, 0.0, 7.08, 1.5, 0.4)
    sulcus = 0.3 * _gauss(x, y, 0.0, 8.25, 1.8, 0.45)
    chin = -0.5 * _gauss(x, y, 0.0, 9.8, 1.9, 0.9)
    return nose + alae + sockets + brow + cheeks + muzzle + upper_lip + lower_lip + sulcus + chin


def _relief_fade(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """1 over the front of the face, fading to 0 toward the sides (|x| / a from 0.72 to 0.95)."""
    u = np.clip((np.abs(x) / np.maximum(a, 1e-6) - 0.72) / 0.23, 0.0, 1.0)
    return 1.0 - u * u * (3.0 - 2.0 * u)


def base_point(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points [..., 3] (cm) of the head's ellipse stack at angle ``s`` (0 = front) and height y."""
    a, b, zc = half_width(y), half_depth(y), centre_depth(y)
    return np.stack([a * np.sin(s), y, zc - b * np.cos(s)], axis=-1)


def surface_point(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points [..., 3] (cm) of the skin: :func:`base_point` plus the facial relief in front."""
    p = base_point(s, y)
    front = np.cos(s) > 0
    rel = relief(p[..., 0], y) * _relief_fade(p[..., 0], half_width(y))
    p[..., 2] += np.where(front, rel, 0.0)
    return p


def surface_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth (cm) of the front of the skin at (x, y): the height field the landmarks lie on."""
    a = half_width(y)
    u = np.clip(np.abs(x) / np.maximum(a, 1e-6), 0.0, 1.0)
    z = centre_depth(y) - half_depth(y) * np.sqrt(1.0 - u * u)
    return z + relief(x, y) * _relief_fade(x, a)


def slit_weight(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How much of the jaw's motion a point follows (0 upper face, 1 lower jaw).

    Between the mouth corners the step is across the inner-lip gap (the upper inner lip at
    0, the lower at 1); beyond them it widens and rises toward the ears, so the cheeks stretch.
    """
    out = np.maximum(np.abs(x) - (MOUTH_CORNER_X - 0.3), 0.0)
    width = LIP_GAP + 1.1 * out
    centre = SLIT_Y - 0.45 * np.maximum(np.abs(x) - MOUTH_CORNER_X - 0.5, 0.0)
    u = np.clip((y - centre) / width + 0.5, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def jaw_velocity(points: np.ndarray) -> np.ndarray:
    """Displacement [..., 3] per cm of mouth opening of a point moving fully with the jaw.

    The jaw turns about the x axis through :data:`JAW_PIVOT` while the hinge glides forward, which
    cancels part of the backward motion (the z component is scaled by :data:`JAW_GLIDE`). The rate
    is normalised so that the centre of the lower inner lip (iBUG 66) moves 1 cm down.
    """
    rel = points - JAW_PIVOT
    vel = np.stack([np.zeros_like(rel[..., 0]), -rel[..., 2], JAW_GLIDE * rel[..., 1]], axis=-1)
    ref = np.array([0.0, SLIT_Y + LIP_GAP / 2, 0.0])
    ref[2] = float(surface_z(np.array(0.0), np.array(ref[1])))
    return vel / (-(ref[2] - JAW_PIVOT[2]))


def jaw_field(points: np.ndarray) -> np.ndarray:
    """Displacement [..., 3] (cm) of rest ``points`` [..., 3] per cm of jaw drop.

    The displacement of a point is ``mouth_cm * jaw_field(point)``: linear in the opening, so
    doubling it doubles every displacement. Points behind the hinge (neck, back of the head) and
    above the mouth slit do not move.
    """
    w = slit_weight(points[..., 0], points[..., 1])
    behind = np.clip((points[..., 2] - JAW_PIVOT[2]) / 3.0, 0.0, 1.0)
    return (w * (1.0 - behind))[..., None] * jaw_velocity(points)
