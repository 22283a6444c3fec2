"""Image metrics of a trained head on a subject's validation frames (docs/design.md "Evaluation").

Each frame is rendered from its tracked landmarks and pose at the model's ``image_size`` and
composited over that frame's own non-head pixels (the background plate under the head), so
the scores measure the head alone. Scores: PSNR of the full frame, inside the head mask and
inside the mouth region (the box of the tracked mouth points 48-67 plus a margin), and SSIM of
the full frame. The baseline is the per-pixel mean of the training frames. Optionally every
frame is rendered a second time from the subject's mean landmarks: a mouth PSNR that is higher
with the true landmarks than with the mean ones shows that the landmark conditioning works.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..fidelity import evenly_spaced
from ..landmarks import MOUTH
from ..subject import Subject
from ..training import local_processes, process_map
from .data import FrameSet, resize_rgb
from .model import HeadModel, resolve_device

MOUTH_MARGIN = 0.05
"""Margin of the mouth box as a fraction of the image side (6 px at 128²)."""


@dataclass
class FrameScores:
    """Scores of one validation frame."""

    frame: int
    psnr_full: float
    psnr_head: float
    psnr_mouth: float
    ssim: float
    psnr_mouth_mean_lm: float = float("nan")
    """Mouth PSNR when rendered from the subject's mean landmarks (nan when not measured)."""


@dataclass
class HeadReport:
    """Per-frame scores of the model and of the mean-frame baseline."""

    image_size: int
    model: list[FrameScores]
    baseline: list[FrameScores]
    strip: np.ndarray | None = field(default=None, repr=False)
    """Rows of render | truth (RGB uint8) for a few validation frames."""

    @property
    def frames(self) -> list[int]:
        return [s.frame for s in self.model]

    def summary(self) -> dict[str, float]:
        """Means over the frames: model and baseline scores, side by side."""
        out: dict[str, float] = {}
        for name, rows in (("model", self.model), ("baseline", self.baseline)):
            for key in ("psnr_full", "psnr_head", "psnr_mouth", "ssim"):
                out[f"{key}_{name}"] = float(np.mean([getattr(r, key) for r in rows]))
        means = [r.psnr_mouth_mean_lm for r in self.model]
        if not any(np.isnan(means)):
            out["psnr_mouth_model_mean_landmarks"] = float(np.mean(means))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "summary": self.summary(),
            "model": [asdict(r) for r in self.model],
            "baseline": [asdict(r) for r in self.baseline],
        }


def mean_training_frame(subject: Subject, size: int) -> np.ndarray:
    """Per-pixel mean of the training frames at ``size``, float [S, S, 3] in [0, 1]."""
    acc = np.zeros((size, size, 3), np.float64)
    idx = list(subject.meta.train_range)
    for i in idx:
        acc += resize_rgb(subject.load_frame(i), size)
    return acc / (255.0 * max(len(idx), 1))


def _scores(frame: int, pred: np.ndarray, truth: np.ndarray, head: np.ndarray, mouth: np.ndarray):
    return FrameScores(
        frame=frame,
        psnr_full=metrics.psnr(pred, truth),
        psnr_head=metrics.psnr(pred, truth, head),
        psnr_mouth=metrics.psnr(pred, truth, mouth),
        ssim=metrics.ssim(pred, truth),
    )


RenderJob = tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor | None]
"""A validation frame's K, pose, landmarks [K, 3], backdrop [S, S, 3] and the subject's mean
landmarks [K, 3] to render it from as well (None: not)."""


@torch.no_grad()
def _render_pair(model: HeadModel, job: RenderJob) -> tuple[np.ndarray, np.ndarray | None]:
    """A frame rendered from its own landmarks and, when asked, from the mean ones, [S, S, 3]."""
    K, pose, landmarks, backdrop, mean_lms = job
    backdrop = backdrop.to(model.device)
    pred = model.render(K, pose, landmarks, backdrop).rgb.clamp(0, 1).cpu().numpy()
    if mean_lms is None:
        return pred, None
    alt = model.render(K, pose, mean_lms, backdrop).rgb.clamp(0, 1).cpu().numpy()
    return pred, alt


@torch.no_grad()
def evaluate_head(
    subject_dir: str | Path,
    model_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    frames: Sequence[int] | None = None,
    mean_landmarks: bool = True,
    strip_frames: int = 6,
    most: int = 0,
) -> HeadReport:
    """Score the head model of ``subject_dir`` (or the one in ``model_dir``) on ``frames``
    (default: the validation split); ``most`` > 0 keeps at most that many of them, evenly
    spaced from the first to the last."""
    subject = Subject.open(subject_dir)
    folder = Path(model_dir) if model_dir is not None else subject.model_dir("head")
    model = HeadModel.load(folder, resolve_device(device))
    size = model.config.image_size
    idx = list(frames) if frames is not None else list(subject.meta.val_range)
    idx = [idx[k] for k in evenly_spaced(len(idx), most or None)]
    data = FrameSet.load(subject, idx, size)
    mean_frame = mean_training_frame(subject, size)
    mean_lms = torch.from_numpy(np.asarray(subject.tracks.mean_shape, np.float32))
    mean = mean_lms if mean_landmarks else None
    shown = set(evenly_spaced(len(idx), strip_frames))
    jobs = [
        (data.K, data.pose[j], data.landmarks[j], data.backdrop(j).cpu(), mean)
        for j in range(len(idx))
    ]
    workers = local_processes(model.device)
    renders = process_map(HeadModel.load, (str(folder),), _render_pair, jobs, workers, model)
    rows, ours, base = [], [], []
    with closing(renders):  # an error here stops the render processes
        for j, (i, (pred, alt)) in enumerate(zip(idx, renders)):
            truth = data.image(j).numpy()
            head = data.head_mask(j).numpy()
            mouth = metrics.box_mask((size, size), data.lm2d[j][list(MOUTH)], MOUTH_MARGIN * size)
            score = _scores(i, pred, truth, head, mouth)
            if alt is not None:
                score.psnr_mouth_mean_lm = metrics.psnr(alt, truth, mouth)
            ours.append(score)
            base.append(_scores(i, mean_frame, truth, head, mouth))
            if j in shown:
                rows.append(np.concatenate([pred, truth], axis=1))
    strip = (np.concatenate(rows, axis=0) * 255).round().astype(np.uint8) if rows else None
    return HeadReport(size, ours, base, strip)
