"""Training pairs of the torso UNet, cut from a subject folder.

A pair is (background plate, ground-truth head, head opacity) → ground-truth frame. The head
is the frame cut with the head bit of the label mask (``MASK_HEAD``), premultiplied: the same
kind of image the head NeRF renders; with ``TorsoConfig.rim_px`` its outline is blurred by a
random amount, as a rendered head's is on frames the NeRF did not train on. Training pairs are
random square crops (a fraction ``crop_scale_min..crop_scale_max`` of the side, sometimes the
whole frame) resized to the network's ``image_size``; evaluation uses whole frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..blur import gaussian_blur
from ..errors import SubjectError
from ..subject import MASK_HEAD, Subject
from .config import TorsoConfig


def resize_rgb(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 or float image [H, W, C] or [H, W] resized to size × size (area when shrinking)."""
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def head_alpha(labels: np.ndarray) -> np.ndarray:
    """Head opacity {0, 1} as float32 [H, W] from a label mask [H, W] (bit MASK_HEAD)."""
    return ((labels & MASK_HEAD) > 0).astype(np.float32)


def load_frame_pair(subject: Subject, i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i as float32 RGB [size, size, 3] in [0, 1] and its head opacity [size, size]."""
    frame = resize_rgb(subject.load_frame(i).astype(np.float32) / 255.0, size)
    alpha = resize_rgb(head_alpha(subject.load_mask(i)), size)
    return frame, np.clip(alpha, 0.0, 1.0)


def to_chw(img: np.ndarray) -> torch.Tensor:
    """[H, W, C] or [H, W] array → float tensor [C, H, W]."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)


@dataclass
class Batch:
    """Network inputs and target, all float in [0, 1]."""

    background: torch.Tensor  # [B, 3, S, S]
    head_rgb: torch.Tensor  # [B, 3, S, S] premultiplied by head_opacity
    head_opacity: torch.Tensor  # [B, 1, S, S]
    target: torch.Tensor  # [B, 3, S, S]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.background, self.head_rgb, self.head_opacity, self.target)

    def baseline(self, mean_frame: torch.Tensor) -> torch.Tensor:
        """The head pasted onto ``mean_frame`` [3, S, S]: the torso baseline of docs/design.md "Evaluation"."""
        return self.head_rgb + (1.0 - self.head_opacity) * mean_frame


def load_batch(subject: Subject, indices: Sequence[int], size: int) -> Batch:
    """Whole frames ``indices`` at size × size (evaluation, previews)."""
    bg = to_chw(resize_rgb(subject.load_background().astype(np.float32) / 255.0, size))
    frames, alphas = [], []
    for i in indices:
        f, a = load_frame_pair(subject, i, size)
        frames.append(to_chw(f))
        alphas.append(to_chw(a))
    target = torch.stack(frames)  # [B, 3, S, S]
    alpha = torch.stack(alphas)  # [B, 1, S, S]
    return Batch(bg.expand(len(frames), -1, -1, -1).clone(), target * alpha, alpha, target)


def mean_frame(subject: Subject, indices: Sequence[int], size: int) -> torch.Tensor:
    """Per-pixel mean [3, size, size] of the frames ``indices`` (the training split's, for the
    baselines of docs/design.md "Evaluation")."""
    acc = np.zeros((size, size, 3), np.float64)
    for i in indices:
        acc += resize_rgb(subject.load_frame(i).astype(np.float32) / 255.0, size)
    return to_chw((acc / max(len(indices), 1)).astype(np.float32))


class PairSampler:
    """Random training pairs from the frames ``indices`` of ``subject``.

    Frames (and head opacities) are kept in memory at the cache side
    ``ceil(image_size / crop_scale_min)`` (at most the subject's size) while they fit in
    ``config.cache_mb``; otherwise they are read from disk per pair. :meth:`preload` fills the
    cache (a generator, so a job can report and cancel it); pairs drawn before it are read from
    disk.
    """

    def __init__(self, subject: Subject, indices: Sequence[int], config: TorsoConfig) -> None:
        if not indices:
            raise SubjectError(f"{subject.root} has no training frames for the torso")
        self.subject = subject
        self.indices = list(indices)
        self.config = config
        self.side = min(subject.meta.size, math.ceil(config.image_size / config.crop_scale_min))
        bg = subject.load_background().astype(np.float32) / 255.0
        self.background = to_chw(resize_rgb(bg, self.side))  # [3, side, side]
        need_mb = len(self.indices) * self.side**2 * 4 / 2**20
        self.cached = need_mb <= config.cache_mb
        self._frames: torch.Tensor | None = None  # [N, 4, side, side] uint8: RGB + opacity

    def preload(self) -> Iterator[int]:
        """Read every frame into memory when they fit; yields the count read so far."""
        if not self.cached or self._frames is not None:
            return
        frames = torch.empty(len(self.indices), 4, self.side, self.side, dtype=torch.uint8)
        for k, i in enumerate(self.indices):
            frames[k] = self._load(i)
            yield k + 1
        self._frames = frames

    def _load(self, i: int) -> torch.Tensor:  # [4, side, side] uint8
        frame, alpha = load_frame_pair(self.subject, i, self.side)
        rgba = np.concatenate([frame, alpha[..., None]], axis=2)
        return (to_chw(rgba) * 255.0).round().to(torch.uint8)

    def _frame(self, k: int) -> torch.Tensor:
        if self._frames is not None:
            return self._frames[k]
        return self._load(self.indices[k])

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` random crops, each resized to image_size."""
        cfg, side, size = self.config, self.side, self.config.image_size
        picks = torch.randint(len(self.indices), (batch_size,), generator=generator)
        u = torch.rand(batch_size, 4, generator=generator)  # scale, x, y, whole-frame draw
        bgs, rgbas = [], []
        for b in range(batch_size):
            rgba = self._frame(int(picks[b])).float() / 255.0  # [4, side, side]
            if u[b, 3] < cfg.full_frame_fraction:
                crop = side
            else:
                scale = cfg.crop_scale_min + (cfg.crop_scale_max - cfg.crop_scale_min) * u[b, 0]
                crop = max(1, round(float(scale) * side))
            x0 = int(u[b, 1] * (side - crop + 1)) if crop < side else 0
            y0 = int(u[b, 2] * (side - crop + 1)) if crop < side else 0
            stack = torch.cat([self.background, rgba], 0)[:, y0 : y0 + crop, x0 : x0 + crop]
            stack = _resize(stack[None], size)[0]  # [7, size, size]
            bgs.append(stack[:3])
            rgbas.append(stack[3:])
        bg = torch.stack(bgs)  # [B, 3, S, S]
        rgba = torch.stack(rgbas).clamp(0.0, 1.0)  # [B, 4, S, S]
        target, alpha = rgba[:, :3], rgba[:, 3:]
        if cfg.rim_px > 0:
            sigmas = cfg.rim_px * torch.rand(batch_size, generator=generator)
            alpha = soften_rim(alpha, sigmas)
        return Batch(bg, target * alpha, alpha, target)


def soften_rim(alpha: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """``alpha`` [B, 1, S, S] with image b's outline blurred by a Gaussian of standard deviation
    ``sigmas[b]`` pixels (below 0.25 px: unchanged): the opacity falls from 1 to 0 across the
    outline, through one half on it, as a rendered head's does where its outline is uncertain.
    The image's border is not an outline (replicated)."""
    out = alpha.clone()
    for b, sigma in enumerate(sigmas.tolist()):
        if sigma >= 0.25:
            out[b : b + 1] = gaussian_blur(alpha[b : b + 1], sigma, border="replicate")
    return out


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B, C, H, W] → [B, C, size, size], antialiased bilinear."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
