"""Paste-back: a rendered square crop warped into its source video frame and blended in.

Geometry (docs/design.md "Paste-back"). Pixel coordinates follow the camera convention: (0, 0)
is the top-left corner of the top-left pixel, so pixel (col, row) has its centre at
(col + 0.5, row + 0.5). A subject's crop transform is the affine ``A`` [2, 3] that maps source
pixels to the subject's square pixels, ``u = A @ (x, y, 1)``; for a square ``[x0, x0 + side)``
resized to ``size`` it is a scale ``size / side`` and a shift (:func:`crop_affine`). A render of
side ``R`` uses ``A`` scaled by ``R / size`` (:func:`scale_affine`).

Blend: the render's weight is its head's own opacity, the matte the head was rendered with, so
outside the rendered head the source frame's real neck, body and background show; and the source
frame's own head mask, grown by ``GROW`` of the side and fading over ``FEATHER``, is covered
too, so the source's head never shows beside the rendered one (an open mouth under a closed
one): w = 1 − (1 − opacity)(1 − source head). It is tapered to 0 over ``BORDER`` of the side at
the crop's border. Where it is 0 the source frame is kept exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

GROW = 0.01
"""The source frame's head is covered this far (fraction of the render's side) beyond its mask."""
FEATHER = 0.02
"""Width of that cover's fall from 1 to 0 (fraction of the render's side)."""
BORDER = 0.06
"""Width of the taper to 0 at the crop's border (fraction of the render's side)."""


# -- geometry ------------------------------------------------------------------------------------
def crop_affine(x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """[2, 3] affine from source pixels to the pixels of the square ``[x0, x0 + side) x
    [y0, y0 + side)`` resized to ``size`` (what :class:`~talkstudio.core.preprocess.crop.Crop`
    does to a frame)."""
    if side <= 0 or size <= 0:
        raise ValueError(f"a crop needs a positive side and size, got side {side}, size {size}")
    s = size / side
    return np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]])


def scale_affine(affine: np.ndarray, factor: float) -> np.ndarray:
    """``affine`` followed by a scale of its output by ``factor`` (a render at another size)."""
    return np.asarray(affine, np.float64) * factor


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points [..., 2] mapped by ``affine`` [2, 3]."""
    a = np.asarray(affine, np.float64)
    return np.asarray(points, np.float64) @ a[:, :2].T + a[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The inverse [2, 3] of an invertible affine [2, 3]."""
    full = np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def check_affine(affine: object) -> np.ndarray:
    """``affine`` as a float64 [2, 3] array, or a ValueError saying what is wrong with it."""
    a = np.asarray(affine, np.float64)
    if a.shape != (2, 3) or not np.all(np.isfinite(a)) or abs(np.linalg.det(a[:, :2])) < 1e-12:
        raise ValueError(f"a crop transform is an invertible 2x3 matrix; got {a.tolist()}")
    return a


# -- blend ---------------------------------------------------------------------------------------
def smoothstep(t: np.ndarray) -> np.ndarray:
    """Smoothstep of ``t`` clipped to [0, 1]: exactly 0 and 1 at the ends, flat there."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blend_weights(opacity: np.ndarray, source_head: np.ndarray | None = None) -> np.ndarray:
    """Weight float32 [R, R] in [0, 1] of the render at each of its pixels.

    ``opacity`` [R, R]: the rendered head's opacity (float in [0, 1], or uint8); ``source_head``
    [R, R] bool: the source frame's own head mask at the render's size. See the module
    docstring: the opacity as it is, joined with the grown and feathered source head.
    """
    op = np.asarray(opacity)
    op = op.astype(np.float32) / 255.0 if op.dtype == np.uint8 else op.astype(np.float32)
    if op.ndim != 2 or op.shape[0] != op.shape[1]:
        raise ValueError(f"the opacity must be a square [R, R] image, got {op.shape}")
    r = op.shape[0]
    weight = np.clip(op, 0.0, 1.0)
    if source_head is not None:
        if source_head.shape != op.shape:
            raise ValueError(f"source head mask {source_head.shape} differs from {op.shape}")
        if source_head.any():
            outside = np.where(source_head.astype(bool), 0, 255).astype(np.uint8)
            dist = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            cover = smoothstep(1.0 - (dist - GROW * r) / max(FEATHER * r, 1.0))
            weight = 1.0 - (1.0 - weight) * (1.0 - cover)
    centres = np.arange(r, dtype=np.float32) + 0.5
    edge = np.minimum(centres, r - centres)  # distance of pixel centres to the border
    taper = smoothstep(np.minimum(edge[:, None], edge[None, :]) / max(BORDER * r, 1.0))
    return (weight * taper).astype(np.float32)


def paste(
    source: np.ndarray, render: np.ndarray, weights: np.ndarray, affine: np.ndarray
) -> np.ndarray:
    """``render`` uint8 [R, R, 3] warped into ``source`` uint8 [H, W, 3] and blended with
    ``weights`` float32 [R, R]; ``affine`` maps source pixels to render pixels. Returns a new
    uint8 [H, W, 3]; where the warped weight is 0 it equals ``source`` exactly.

    Only the render's footprint in the source is touched. A render finer than the source is
    first shrunk with an area filter to about the footprint's size (no aliasing); then an exact
    inverse warp (bicubic colour, bilinear weight) maps it into place — for a crop with integer
    corner and side that warp is a pure integer shift.
    """
    a = check_affine(affine)
    h, w = source.shape[:2]
    r = render.shape[0]
    out = source.copy()
    scale = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))  # render px per source px
    if scale > 1.0:
        small = max(1, round(r / scale))
        render = cv2.resize(render, (small, small), interpolation=cv2.INTER_AREA)
        weights = cv2.resize(weights, (small, small), interpolation=cv2.INTER_AREA)
        a = scale_affine(a, small / r)
        r = small
    corners = apply_affine(invert_affine(a), np.array([[0, 0], [r, 0], [0, r], [r, r]], float))
    x0 = max(0, int(np.floor(corners[:, 0].min())))
    y0 = max(0, int(np.floor(corners[:, 1].min())))
    x1 = min(w, int(np.ceil(corners[:, 0].max())))
    y1 = min(h, int(np.ceil(corners[:, 1].max())))
    if x1 <= x0 or y1 <= y0:
        return out
    # index coordinates (pixel centres at integers) of the footprint → of the render
    m = a.copy()
    m[:, 2] = a[:, :2] @ np.array([x0 + 0.5, y0 + 0.5]) + a[:, 2] - 0.5
    size = (x1 - x0, y1 - y0)
    inverse = cv2.WARP_INVERSE_MAP
    colour = cv2.warpAffine(
        render, m, size, flags=cv2.INTER_CUBIC | inverse, borderMode=cv2.BORDER_REPLICATE
    )
    wt = cv2.warpAffine(
        weights, m, size, flags=cv2.INTER_LINEAR | inverse, borderMode=cv2.BORDER_CONSTANT
    )
    wt = np.clip(wt, 0.0, 1.0)[..., None]
    roi = out[y0:y1, x0:x1].astype(np.float32)
    mixed = roi + wt * (colour.astype(np.float32) - roi)
    out[y0:y1, x0:x1] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out
