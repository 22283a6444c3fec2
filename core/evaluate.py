"""``talkstudio eval``: both render passes of docs/design.md "Evaluation" on the validation frames.

- "stage 2 alone": the validation frames rendered from their tracked landmarks and poses;
- "whole pipeline": the same frames rendered from stage 1's free-running prediction on the
  validation audio, with the frames' own poses and eye track.

Each pass reports PSNR of the full frame, inside the head mask and inside the mouth region
(the mouth polygon's box plus a margin), SSIM, HaarPSI and MS-GMSD (``piq``, no learnt weights),
the mouth sharpness ratio (the render's Laplacian energy in the mouth box over the real frame's;
below 1: blurrier), and the image-space LMD (rendered and real frames
re-tracked with MediaPipe; mouth points 48–67, centred, pixels at 512²). Beside them stand the
baselines: the per-pixel mean of the training frames (full frame and head mask) and, for stage 1,
the track-space LMD of the subject's mean landmarks.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fidelity import evenly_spaced, mouth_box
from .landmarks import MOUTH, STAGE1_POINTS
from .metrics import haarpsi, landmark_distance, ms_gmsd, psnr, sharpness_ratio, ssim
from .progress import Job, Progress
from .subject import MASK_HEAD

EVAL_SIZE = 512


@dataclass
class PassScores:
    """Per-frame metrics of one render pass, averaged."""

    name: str
    psnr: list[float] = field(default_factory=list)
    psnr_head: list[float] = field(default_factory=list)
    psnr_mouth: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    haarpsi: list[float] = field(default_factory=list)
    ms_gmsd: list[float] = field(default_factory=list)
    mouth_sharpness: list[float] = field(default_factory=list)
    lmd: list[float] = field(default_factory=list)

    def add_image(
        self, rgb: np.ndarray, truth: np.ndarray, head: np.ndarray, mouth: np.ndarray
    ) -> None:
        """Score one frame: whole image, head mask ``head`` and mouth box ``mouth`` [S, S]."""
        self.psnr.append(psnr(rgb, truth))
        self.psnr_head.append(psnr(rgb, truth, head))
        self.psnr_mouth.append(psnr(rgb, truth, mouth))
        self.ssim.append(ssim(rgb, truth))
        self.haarpsi.append(haarpsi(rgb, truth))
        self.ms_gmsd.append(ms_gmsd(rgb, truth))
        self.mouth_sharpness.append(sharpness_ratio(rgb, truth, mouth))

    def summary(self) -> dict[str, float | None]:
        def mean(v: list[float]) -> float | None:
            return float(np.mean(v)) if v else None

        return {
            "psnr": mean(self.psnr),
            "psnr_head": mean(self.psnr_head),
            "psnr_mouth": mean(self.psnr_mouth),
            "ssim": mean(self.ssim),
            "haarpsi": mean(self.haarpsi),
            "ms_gmsd": mean(self.ms_gmsd),
            "mouth_sharpness": mean(self.mouth_sharpness),
            "lmd_image": mean(self.lmd),
        }


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size:
        return img
    interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def _mouth_points(tracker: Any, rgb: np.ndarray) -> np.ndarray | None:
    """Mouth points 48–67 [20, 2] at 512² of the largest face MediaPipe finds, or None."""
    from .preprocess.ibug68 import mesh_to_ibug68
    from .preprocess.tracking import face_size

    faces = tracker(_resize(rgb, EVAL_SIZE))
    if not faces:
        return None
    mesh = max(faces, key=face_size)
    return np.asarray(mesh_to_ibug68(mesh))[list(MOUTH), :2]


def evaluate_subject(
    subject_dir: str | os.PathLike[str],
    device: str = "auto",
    retrack: bool = True,
    frames: int | None = None,
) -> Job[dict[str, Any]]:
    """Evaluate a trained subject; yields progress, returns the report (JSON-ready dict).
    ``frames``: score only that many validation frames, evenly spaced (default: all)."""
    import torch

    from .engine import Engine
    from .preprocess.tracking import FaceMeshTracker
    from .stage1.infer import predict
    from .stage1.metrics import score, validation_audio

    t0 = time.perf_counter()
    engine = Engine.open(subject_dir, device=device)
    subject = engine.subject
    meta, tracks = subject.meta, subject.tracks
    size = int(engine.head.config.image_size)
    val = list(meta.val_range)
    if frames is not None and frames < 1:
        raise ValueError(f"the number of frames to score must be at least 1, got {frames}")
    picks = evenly_spaced(len(val), frames)
    train = list(meta.train_range)
    mean_frame = np.zeros((size, size, 3))
    for i in train:
        mean_frame += _resize(subject.load_frame(i), size) / 255.0
    mean_frame /= len(train)

    passes: dict[str, np.ndarray] = {"stage2_alone": tracks.lm_world[val].astype(np.float64)}
    scored = [val[k] for k in picks]
    report: dict[str, Any] = {"subject": str(subject.root), "size": size, "frames": scored}
    if engine.stage1 is not None and meta.has_audio:
        audio = validation_audio(subject, engine.stage1.sync_offset)  # in line with the picture
        pred = predict(engine.stage1, audio)[: len(val)]  # [V, 37, 3]
        whole = passes["stage2_alone"].copy()
        whole[:, list(STAGE1_POINTS)] = pred
        passes["whole_pipeline"] = whole
        s1 = score(subject, pred, meta.val_range)
        report["stage1"] = {k: float(v) for k, v in vars(s1).items()}
        report["stage1"]["sync_offset_frames"] = float(engine.stage1.sync_offset)
    else:
        report["stage1"] = None

    K = engine._K(size)
    bg = engine._background(size)
    base = PassScores("baseline_mean_frame")
    scores = {name: PassScores(name) for name in passes}
    tracker = FaceMeshTracker(max_faces=1, static=True) if retrack else None
    total = len(picks) * len(passes)
    done = 0
    try:
        for k, i in zip(picks, scored):
            truth = _resize(subject.load_frame(i), size)
            labels = _resize(subject.load_mask(i), size)
            head_mask = (labels & MASK_HEAD) > 0
            mouth = mouth_box(subject, i, size)
            base.add_image(mean_frame, truth, head_mask, mouth)
            true_mouth = _mouth_points(tracker, truth) if tracker else None
            for name, lms in passes.items():
                with torch.no_grad():
                    head = engine.head.render(K, tracks.pose[i], lms[k], bg)
                    rgb = engine._finish(head.head, head.opacity, size)
                sc = scores[name]
                sc.add_image(rgb, truth, head_mask, mouth)
                if tracker is not None and true_mouth is not None:
                    got = _mouth_points(tracker, rgb)
                    if got is not None:
                        sc.lmd.append(landmark_distance(got[None], true_mouth[None]))
                done += 1
                yield Progress("eval", done, total, f"{name} frame {i}", preview=rgb)
    finally:
        if tracker is not None:
            tracker.close()
    report["passes"] = {name: sc.summary() for name, sc in scores.items()}
    report["baseline"] = base.summary() | {"lmd_image": None}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    cols = ["psnr", "psnr_head", "psnr_mouth", "ssim", "haarpsi", "ms_gmsd"]
    cols += ["mouth_sharpness", "lmd_image"]
    titles = ["PSNR dB", "head dB", "mouth dB", "SSIM", "HaarPSI", "MS-GMSD", "mouth sharp"]
    rows = [("pass", *titles, "LMD px")]
    for name, vals in [*report["passes"].items(), ("baseline (mean frame)", report["baseline"])]:
        rows.append((name, *("-" if vals[c] is None else f"{vals[c]:.3f}" for c in cols)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    s1 = report.get("stage1")
    if s1:
        lines.append("")
        lines.append(
            "stage 1 (track space, px at 512²): " + ", ".join(f"{k} {v:.3f}" for k, v in s1.items())
        )
    lines.append(
        f"{len(report['frames'])} validation frames at {report['size']}², {report['seconds']} s"
    )
    return "\n".join(lines)
