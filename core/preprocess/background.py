"""Background plate (per-pixel median of background pixels over time, holes inpainted) and the
head-on-background training images of the head NeRF."""

from __future__ import annotations

import cv2
import numpy as np

from ..subject import MASK_HEAD, MASK_PERSON

PERSON_MARGIN = 0.02
"""The person mask is grown by this fraction of the side before taking background pixels, so the
segmentation's soft edge (hair, shoulders) does not bleed into the plate."""

SURE_FRACTION = 0.1
"""A plate pixel seen behind the person in fewer than this fraction of the sampled frames is
blended with the value inpainted from the pixels seen more often, in proportion to how often it
was seen: the median of a few frames keeps the segmentation's misses (a faint ghost of the
person) and would end in a hard edge against the inpainted area behind the person."""


class PlateBuilder:
    """Collects sampled frames with their person masks; :meth:`plate` makes the plate."""

    def __init__(self) -> None:
        self._frames: list[np.ndarray] = []  # each [H, W, 3] uint8
        self._background: list[np.ndarray] = []  # each [H, W] bool

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, rgb: np.ndarray, labels: np.ndarray) -> None:
        """Add a frame [H, W, 3] and its label mask [H, W] (``MASK_PERSON`` bit used)."""
        size = labels.shape[0]
        k = max(1, round(PERSON_MARGIN * size))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        person = cv2.dilate((labels & MASK_PERSON).astype(np.uint8), kernel)
        self._frames.append(rgb)
        self._background.append(person == 0)

    def plate(self) -> tuple[np.ndarray, float]:
        """The plate uint8 [H, W, 3] and the fraction of its pixels that had to be inpainted."""
        if not self._frames:
            raise ValueError("no frames were added to the background plate")
        frames = np.stack(self._frames)  # [N, H, W, 3] uint8
        valid = np.stack(self._background)  # [N, H, W]
        count = valid.sum(0)  # [H, W]
        mid = np.clip((count - 1) // 2, 0, None)  # index of the median among the valid ones
        plate = np.empty(frames.shape[1:], np.int16)  # [H, W, 3]
        for r in range(0, frames.shape[1], 64):  # row bands keep the int16 copy small
            band = frames[:, r : r + 64].astype(np.int16)
            band[~valid[:, r : r + 64]] = 1000  # sorts after every real value
            band.sort(axis=0)
            plate[r : r + 64] = np.take_along_axis(band, mid[None, r : r + 64, :, None], 0)[0]
        holes = count == 0
        plate = np.where(holes[..., None], 0, plate).astype(np.uint8)
        sure = np.clip(count / max(1.0, SURE_FRACTION * len(frames)), 0, 1)[..., None]
        if (sure < 1).any():
            known = plate.astype(np.float32)
            if (sure >= 1).any():
                inpainted = fill_holes(known, (sure[..., 0] >= 1).astype(np.float32))
                filled = sure * known + (1 - sure) * inpainted
            else:  # nothing was seen often enough: trust what was seen
                filled = fill_holes(known, (~holes).astype(np.float32))
            plate = np.clip(filled + 0.5, 0, 255).astype(np.uint8)
        return plate, float(holes.mean())


def fill_holes(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Inpaint where ``weight`` [H, W] is 0 by push-pull: average the known pixels down an image
    pyramid, fill each level's holes from the coarser level, and keep known pixels as they are.
    Large holes (the area always behind the person) get a smooth blend of the surrounding
    background instead of the streaks of front-propagating methods. ``img`` [H, W, C] float32.
    """
    h, w = weight.shape
    if weight.min() > 0 or min(h, w) <= 2:
        if weight.max() <= 0:
            return np.zeros_like(img)
        mean = (img * weight[..., None]).sum((0, 1)) / weight.sum()
        return np.where(weight[..., None] > 0, img, mean)
    half = ((w + 1) // 2, (h + 1) // 2)
    w_small = cv2.resize(weight, half, interpolation=cv2.INTER_AREA)
    sum_small = cv2.resize(img * weight[..., None], half, interpolation=cv2.INTER_AREA)
    small = sum_small / np.maximum(w_small, 1e-6)[..., None]
    small = fill_holes(small.astype(np.float32), (w_small > 0).astype(np.float32))
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(weight[..., None] > 0, img, up)


def head_on_background(rgb: np.ndarray, labels: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """The head NeRF's training image: the frame's head pixels over the plate, uint8 [H, W, 3]."""
    head = (labels & MASK_HEAD) != 0
    return np.where(head[..., None], rgb, plate)
