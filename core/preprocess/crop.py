"""One stable square crop for the whole video, from the face track.

The crop is fixed over time (a static camera stays static, so the background plate and K hold
for every frame). Its side is the larger of ``crop_face_factor`` x the face's median size and
the face's size plus the range its centre moves over (2nd-98th percentile), but at most the
source's short side. Its centre is the face's median centre moved down by ``crop_down_shift`` x
the side (to show the neck and shoulders). The square is then shifted to stay inside the source
frame, as far as the face (where it goes over the video, plus ``MARGIN``) stays inside the
square; what still falls outside (a face near an edge) is padded by repeating border pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MARGIN = 0.04
"""Least room, as a fraction of the side, between the face (over the whole video) and the
crop's edge; the square shifts to stay inside the frame only as far as this allows."""


@dataclass(frozen=True)
class Crop:
    """Square ``[x0, x0 + side) x [y0, y0 + side)`` of the source (pixels), resized to ``size``."""

    x0: int
    y0: int
    side: int
    size: int

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return self.size / self.side

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Crop, pad and resize a source frame [H, W, C] to [size, size, C]."""
        h, w = rgb.shape[:2]
        pad_l, pad_t = max(0, -self.x0), max(0, -self.y0)
        pad_r = max(0, self.x0 + self.side - w)
        pad_b = max(0, self.y0 + self.side - h)
        img = rgb
        if pad_l or pad_t or pad_r or pad_b:
            img = cv2.copyMakeBorder(img, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
        x0, y0 = self.x0 + pad_l, self.y0 + pad_t
        img = img[y0 : y0 + self.side, x0 : x0 + self.side]
        if self.side == self.size:
            return np.ascontiguousarray(img)
        interp = cv2.INTER_AREA if self.side > self.size else cv2.INTER_CUBIC
        return cv2.resize(img, (self.size, self.size), interpolation=interp)

    def points(self, mesh: np.ndarray) -> np.ndarray:
        """Mesh vertices [..., 3] from source pixels to output pixels (depth scales with x, y)."""
        out = mesh * self.scale
        out[..., 0] -= self.x0 * self.scale
        out[..., 1] -= self.y0 * self.scale
        return out

    def source_centre(self, width: int, height: int) -> tuple[float, float]:
        """Where the centre of a ``width`` x ``height`` source lands in the output (pixels):
        the principal point, for a camera whose optical axis goes through its image's centre."""
        return ((width / 2 - self.x0) * self.scale, (height / 2 - self.y0) * self.scale)

    def padded(self, width: int, height: int) -> bool:
        """Whether the square reaches outside a ``width`` x ``height`` source."""
        return (
            self.x0 < 0
            or self.y0 < 0
            or self.x0 + self.side > width
            or self.y0 + self.side > height
        )


def _place(start: float, side: int, limit: int, lo: float, hi: float) -> int:
    """Start of a ``side``-long window near ``start``, inside [0, limit] when possible while its
    start stays within [lo, hi] (the face's range with a margin); padding covers the rest."""
    want_lo, want_hi = max(0.0, lo), min(float(limit - side), hi)
    if want_lo <= want_hi:
        return round(min(max(start, want_lo), want_hi))
    return round(min(max(start, lo), hi))


def stable_crop(
    mesh: np.ndarray,
    width: int,
    height: int,
    size: int,
    face_factor: float = 2.2,
    down_shift: float = 0.12,
) -> Crop:
    """The crop for face meshes ``mesh`` [T, 478, 3] (source pixels) in a ``width`` x ``height`` video."""
    xy = mesh[..., :2]  # [T, 478, 2]
    lo, hi = xy.min(1), xy.max(1)  # [T, 2] face boxes
    extent = (hi - lo).max(-1)  # [T]
    centres = (hi + lo) / 2  # [T, 2]
    face = float(np.median(extent))
    travel = float((np.percentile(centres, 98, 0) - np.percentile(centres, 2, 0)).max())
    side = max(face_factor * face, 1.3 * face + travel)
    side = round(min(side, min(width, height)))
    box_lo, box_hi = np.percentile(lo, 2, 0), np.percentile(hi, 98, 0)  # [2] where the face goes
    margin = MARGIN * side
    cx, cy = np.median(centres, 0)
    cy += down_shift * side
    x0 = _place(cx - side / 2, side, width, box_hi[0] + margin - side, box_lo[0] - margin)
    y0 = _place(cy - side / 2, side, height, box_hi[1] + margin - side, box_lo[1] - margin)
    return Crop(x0, y0, side, size)
