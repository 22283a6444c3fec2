"""Scores of a subject's refiner against today's path, on validation frames at the subject's size.

Per frame, one head render at the refiner's input size L feeds both paths:

- "upscaled": the head over the plate at L, completed by the torso UNet when the subject has
  one, resized ×scale (bicubic) — what a larger export gave before the refiner;
- "refined": the refiner's frame at S.

Each is scored against the real frame at S (docs/design.md "Evaluation"): PSNR of the whole
frame, inside the head mask and inside the mouth box (the head evaluation's margin), and SSIM. The strip shows, per row,
real | upscaled | refined.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import atomic, metrics
from ..fidelity import evenly_spaced
from ..head.evaluate import MOUTH_MARGIN
from ..head.model import HeadModel
from ..landmarks import MOUTH
from ..subject import MASK_HEAD, Subject
from ..training import resolve_device
from .infer import Refiner
from .inputs import render_inputs

PATHS = ("upscaled", "refined")


@dataclass
class RefinerReport:
    """Per-frame scores of both paths and the strip real | upscaled | refined."""

    size: int
    input_size: int
    frames: list[int]
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    strip: np.ndarray | None = None  # uint8 [rows · S, 3S, 3]

    def median(self, path: str, metric: str) -> float:
        return float(np.median(self.scores[path][metric]))

    def line(self) -> str:
        """One line: medians of both paths."""
        parts = [
            f"{p} PSNR {self.median(p, 'psnr'):.2f} / head {self.median(p, 'psnr_head'):.2f} / "
            f"mouth {self.median(p, 'psnr_mouth'):.2f} dB, SSIM {self.median(p, 'ssim'):.3f}"
            for p in PATHS
        ]
        return (
            f"validation ({len(self.frames)} frames, {self.input_size}² → {self.size}², "
            "medians): " + "; ".join(parts)
        )

    def save_strip(self, path: str | os.PathLike[str]) -> Path:
        import cv2

        assert self.strip is not None
        ok, buf = cv2.imencode(".png", cv2.cvtColor(self.strip, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode the strip for {path}")
        atomic.write_bytes(path, buf.tobytes())
        return Path(path)


def _upscaled(
    subject: Subject, x: torch.Tensor, plate_lo: torch.Tensor, size: int
) -> np.ndarray:  # float [S, S, 3]
    """Today's path from the refiner inputs ``x`` [5, L, L]: torso (when trained), resized."""
    import cv2

    head, alpha = x[:3], x[3:4]
    if subject.has_model("torso"):
        from ..torso.compose import Compositor

        low = Compositor.load(subject.model_dir("torso"))(plate_lo, head, alpha)
    else:
        low = head + (1.0 - alpha) * plate_lo
    img = low.clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return np.clip(cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


@torch.no_grad()
def evaluate_refiner(
    subject_dir: str | os.PathLike[str],
    frames: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    count: int = 8,
    strip_rows: int = 3,
) -> RefinerReport:
    """Score both paths on ``frames`` (default: ``count`` frames spread over the validation
    split); the strip shows ``strip_rows`` of them."""
    subject = Subject.open(Path(subject_dir))
    dev = resolve_device(device)
    head = HeadModel.load(subject.model_dir("head"), device=dev)
    refiner = Refiner.load(subject.model_dir("refiner"), device=dev, subject=subject)
    size, low = refiner.output_size, refiner.input_size
    if frames is None:
        val = list(subject.meta.val_range)
        frames = [val[k] for k in evenly_spaced(len(val), count)]
    idx = list(frames)
    plate = torch.from_numpy(subject.load_background()).permute(2, 0, 1).float() / 255.0
    plate_lo = torch.nn.functional.avg_pool2d(plate[None], refiner.config.scale)[0]  # torso's
    report = RefinerReport(size, low, idx, {p: {} for p in PATHS})
    shown = set(evenly_spaced(len(idx), strip_rows))
    rows = []
    for j, i in enumerate(idx):
        x = render_inputs(head, subject, i, low).cpu()
        truth = subject.load_frame(i).astype(np.float64) / 255.0
        head_mask = (subject.load_mask(i) & MASK_HEAD) > 0
        pts = np.asarray(subject.tracks.lm2d[i])[list(MOUTH)]
        mouth = metrics.box_mask((size, size), pts, MOUTH_MARGIN * size)  # as the head's
        preds = {
            "upscaled": _upscaled(subject, x, plate_lo, size),
            "refined": refiner.refine(x, subject.tracks.pose[i], subject.tracks.lm_world[i])
            .permute(1, 2, 0)
            .cpu()
            .numpy()
            .astype(np.float64),
        }
        for name, pred in preds.items():
            s = report.scores[name]
            s.setdefault("psnr", []).append(metrics.psnr(pred, truth))
            if head_mask.any():
                s.setdefault("psnr_head", []).append(metrics.psnr(pred, truth, head_mask))
            s.setdefault("psnr_mouth", []).append(metrics.psnr(pred, truth, mouth))
            s.setdefault("ssim", []).append(metrics.ssim(pred, truth))
        if j in shown:
            rows.append(np.concatenate([truth, preds["upscaled"], preds["refined"]], axis=1))
    if rows:
        report.strip = (np.concatenate(rows, axis=0) * 255.0).round().astype(np.uint8)
    return report
