"""Evaluation of the torso UNet against the baseline of docs/design.md "Evaluation", on whole frames at the model's size.

Baseline: the ground-truth head pasted onto the per-pixel mean of the training frames. Both are
scored by full-frame PSNR and in the neck seam: a band ``seam_px`` wide (pixels at the subject's
resolution, half on each side) around the head-mask boundary, where the head meets neck, hair
and background. In the band the score is the mean absolute error in 8-bit levels and a PSNR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..subject import Subject
from .compose import Compositor
from .data import head_alpha, load_batch, mean_frame, resize_rgb

SEAM_PX = 12


@dataclass
class TorsoReport:
    """Scores of the UNet and of the baseline; per-frame lists hold one value per frame."""

    frames: list[int]
    """Subject frame indices scored."""
    image_size: int
    """Side at which the images were compared."""
    seam_px: int
    """Width of the seam band in pixels at the subject's resolution."""
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    """psnr_unet, psnr_baseline, seam_mae_unet, seam_mae_baseline, seam_psnr_unet, seam_psnr_baseline."""

    def mean(self, key: str) -> float:
        vals = [v for v in self.per_frame[key] if np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def median(self, key: str) -> float:
        vals = [v for v in self.per_frame[key] if np.isfinite(v)]
        return float(np.median(vals)) if vals else float("nan")

    def summary(self) -> dict[str, float]:
        """Mean of every per-frame score."""
        return {k: self.mean(k) for k in self.per_frame}


def seam_band(labels: np.ndarray, width_px: int) -> np.ndarray:
    """Float32 {0, 1} [H, W]: pixels within width_px/2 of the head-mask boundary, either side."""
    import cv2

    head = head_alpha(labels).astype(np.uint8)
    r = max(1, width_px // 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    outer = cv2.dilate(head, kernel)
    inner = cv2.erode(head, kernel, borderType=cv2.BORDER_REPLICATE)
    return (outer - inner).astype(np.float32)


def band_mae(pred: np.ndarray, target: np.ndarray, band: np.ndarray) -> float:
    """Mean absolute error in 8-bit levels of [H, W, 3] images in [0, 1] inside ``band`` [H, W];
    NaN when the band is empty."""
    if not band.any():
        return float("nan")
    return float(np.abs(pred - target)[band].mean() * 255.0)


def _frames(subject: Subject, frames: str | Sequence[int]) -> list[int]:
    if frames == "val":
        return list(subject.meta.val_range)
    if frames == "train":
        return list(subject.meta.train_range)
    return [int(i) for i in frames]


def evaluate_torso(
    subject_dir: str | Path,
    model: Compositor | str | Path | None = None,
    frames: str | Sequence[int] = "val",
    device: str | torch.device = "cpu",
    seam_px: int = SEAM_PX,
    batch_size: int = 8,
) -> TorsoReport:
    """Score the trained torso model (default: the subject's own) on ``frames`` ("val", "train"
    or indices) against the paste-on-mean baseline."""
    subject = Subject.open(subject_dir)
    if model is None:
        model = subject.model_dir("torso")
    comp = model if isinstance(model, Compositor) else Compositor.load(model, device)
    size = comp.config.image_size
    indices = _frames(subject, frames)
    mean = mean_frame(subject, subject.meta.train_range, size)  # [3, S, S]
    names = ("psnr", "seam_mae", "seam_psnr")
    per: dict[str, list[float]] = {f"{k}_{m}": [] for k in names for m in ("unet", "baseline")}
    for s in range(0, len(indices), batch_size):
        chunk = indices[s : s + batch_size]
        batch = load_batch(subject, chunk, size)
        out = comp(batch.background, batch.head_rgb, batch.head_opacity)
        base = batch.baseline(mean).clamp(0, 1)
        target = _hwc(batch.target)
        bands = [resize_rgb(seam_band(subject.load_mask(i), seam_px), size) > 0.5 for i in chunk]
        for name, img in (("unet", _hwc(out)), ("baseline", _hwc(base))):
            for k, band in enumerate(bands):  # band: [S, S] bool
                per[f"psnr_{name}"].append(metrics.psnr(img[k], target[k]))
                per[f"seam_mae_{name}"].append(band_mae(img[k], target[k], band))
                seam = metrics.psnr(img[k], target[k], band) if band.any() else float("nan")
                per[f"seam_psnr_{name}"].append(seam)
    return TorsoReport(indices, size, seam_px, per)


def _hwc(x: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] tensor → float64 [B, H, W, 3] array."""
    return x.detach().cpu().double().permute(0, 2, 3, 1).numpy()
