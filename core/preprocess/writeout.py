"""The last steps of preprocessing: plate, audio, tracks, report, contact sheet, validation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import atomic
from ..geometry import project_head_points
from ..subject import Subject, SubjectError, validate_subject
from ..timing import FPS, SAMPLES_PER_FRAME
from .background import PlateBuilder, head_on_background
from .report import angle_ranges, contact_sheet, pose_jitter, reprojection_errors, rigidity
from .solve import SolvedTracks

REPORT_NAME = "preprocess_report.json"
SHEET_NAME = "contact_sheet.png"


@dataclass
class RunInfo:
    """What the pipeline learned along the way, for the report."""

    video: str
    source: dict[str, Any]
    focal_decided_by: str
    focal_curve: list[tuple[float, float]]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def fit_audio(audio: np.ndarray, frames: int) -> np.ndarray:
    """Cut or pad (with silence) mono ``audio`` [S] to exactly ``frames`` frames of samples."""
    want = frames * SAMPLES_PER_FRAME
    out = np.zeros(want, np.float32)
    n = min(want, len(audio))
    out[:n] = audio[:n]
    return out


def build_report(solved: SolvedTracks, run: RunInfo, plate_holes: float) -> dict[str, Any]:
    """The contents of ``preprocess_report.json``."""
    t = len(solved.pose)
    err = reprojection_errors(solved.K, solved.pose, solved.lm_world, solved.lm2d)  # [T, 68]
    err_raw = reprojection_errors(solved.K, solved.pose_raw, solved.lm_world_raw, solved.lm2d)
    found = int(solved.tracked.sum())
    return {
        "video": run.video,
        "frames": t,
        "frames_tracked": found,
        "frames_interpolated": t - found,
        "seconds": t / FPS,
        "size": int(solved.K[0, 2] * 2),
        "focal_px": float(solved.K[0, 0]),
        "focal_decided_by": run.focal_decided_by,
        "focal_search": [[round(f, 1), round(e, 4)] for f, e in run.focal_curve],
        "reprojection_px": {
            "mean": float(err.mean()),
            "max": float(err.max()),
            "p95": float(np.percentile(err, 95)),
            "mean_unsmoothed": float(err_raw.mean()),
            "stable_vertices_pnp_rms_mean": float(solved.stable_rms.mean()),
        },
        "pose_jitter": {
            "smoothed": pose_jitter(solved.pose),
            "unsmoothed": pose_jitter(solved.pose_raw),
        },
        "head_angles_deg": angle_ranges(solved.pose),
        "eye_ratio": {
            "left": [float(solved.eye_ratio[:, 0].min()), float(solved.eye_ratio[:, 0].max())],
            "right": [float(solved.eye_ratio[:, 1].min()), float(solved.eye_ratio[:, 1].max())],
            "open_area_s0": [float(a) for a in solved.eye_open_area],
        },
        "rigidity": rigidity(solved.lm_world),
        "background_inpainted_fraction": plate_holes,
        "source": run.source,
        "notes": run.notes,
        "timing_s": {k: round(v, 3) for k, v in run.timings.items()},
        "frames_per_second": t / max(run.timings.get("total", 0.0), 1e-9),
    }


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG atomically."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SubjectError(f"could not encode {path}")
    atomic.write_bytes(path, buf.tobytes())


def finish_subject(
    subject: Subject,
    solved: SolvedTracks,
    plate: PlateBuilder,
    samples: list[tuple[int, np.ndarray, np.ndarray]],
    audio: np.ndarray | None,
    run: RunInfo,
) -> tuple[dict[str, Any], np.ndarray]:
    """Write plate, audio, tracks, report and contact sheet into ``subject``; validate it.

    ``samples``: (frame index, frame [H, W, 3], labels [H, W]) for the contact sheet. Returns the
    report and the sheet (RGB uint8). Raises SubjectError when the validator finds a problem.
    """
    start = time.monotonic()
    background, holes = plate.plate()
    subject.write_background(background)
    if audio is not None:
        subject.write_audio(fit_audio(audio, len(solved.pose)))
    subject.write_tracks(solved.tracks())
    subject.write_meta()
    sheet_rows = []
    for i, rgb, labels in samples:
        reproj = project_head_points(solved.K, solved.pose[i], solved.lm_world[i])
        hob = head_on_background(rgb, labels, background)
        sheet_rows.append((rgb, labels, solved.lm2d[i], reproj, hob))
    sheet = contact_sheet(sheet_rows, background, solved.eye_ratio, solved.pose)
    write_png(subject.root / SHEET_NAME, sheet)
    run.timings["write"] = time.monotonic() - start
    run.timings["total"] = sum(v for k, v in run.timings.items() if k != "total")
    report = build_report(solved, run, holes)
    subject.write_report(REPORT_NAME, report)
    problems = validate_subject(subject.root, subject.meta)
    if problems:
        raise SubjectError("the new subject failed validation:\n  - " + "\n  - ".join(problems))
    return report, sheet


def source_description(
    video: str | os.PathLike[str], fps: float, vfr: bool, width: int, height: int, crop: Any
) -> dict[str, Any]:
    """``subject.json``'s ``source``: where the subject came from (the video's path, frame size,
    rate and identity, see core/framing.py) and how it was cropped: the legacy ``crop``
    [x0, y0, side] and ``crop_affine`` [2, 3], source pixels → subject pixels (core/paste_back.py)."""
    from ..framing import video_identity
    from ..paste_back import crop_affine

    return {
        "kind": "video",
        "path": str(Path(video).resolve()),
        **video_identity(video),
        "fps": round(float(fps), 4),
        "variable_frame_rate": bool(vfr),
        "width": int(width),
        "height": int(height),
        "crop": [int(crop.x0), int(crop.y0), int(crop.side)],
        "crop_affine": crop_affine(crop.x0, crop.y0, crop.side, crop.size).tolist(),
        "padded": bool(crop.padded(width, height)),
    }
