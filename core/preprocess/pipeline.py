"""``preprocess``: a video of one speaker → a subject folder, as a cancellable generator.

Steps (docs/design.md "Preprocess", paper Sec. IV-A):

1. probe the file; decode at 25 fps by timestamps and track the face (MediaPipe Face Mesh) on
   every frame, choosing the one subject and filling short gaps (``tracking``);
2. one stable square crop from the face track (``crop``); the mesh moves into the crop;
3. mean shape, focal length, head pose and ``L_world`` (``shape``, ``pose``); eye ratios
   (``eyes``);
4. decode again: crop, resize, segment the person and write frame + label mask per frame
   (``segment``), sampling frames for the background plate (``background``);
5. audio (mono 16 kHz, cut or padded to the frames), tracks, plate, report and contact sheet.

Everything is written into a hidden staging folder beside ``out`` and renamed onto ``out`` at
the end; cancelling (closing the generator) or an error removes the staging folder, so ``out``
is either the complete new subject or untouched.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..media import iter_video_frames, load_audio, probe
from ..progress import Job, Progress
from ..subject import SubjectError, SubjectMeta, create, default_train_frames
from ..timing import FPS
from .background import PlateBuilder
from .config import PreprocessConfig, PreprocessError, check_source
from .crop import stable_crop
from .pose import estimate_focal, intrinsics
from .segment import PersonSegmenter, label_mask
from .solve import solve_tracks
from .tracking import FaceMeshTracker, choose_face, fill_gaps, look_again
from .writeout import RunInfo, finish_subject, source_description

SHEET_SAMPLES = 4
"""Frames shown on the contact sheet."""


def check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file, a non-empty non-subject folder or a trained subject."""
    if out.is_file():
        raise PreprocessError(f"{out} is a file; --out must name a folder for the new subject")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / "subject.json").is_file():
        raise PreprocessError(
            f"{out} already exists and is not a subject folder; choose a new or empty folder"
        )
    if (out / "models").is_dir() and any((out / "models").rglob("model.safetensors")):
        raise PreprocessError(
            f"{out} holds a subject with trained models, which preprocessing would replace. "
            "Choose another --out, or delete that folder first."
        )


def preprocess(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    size: int = 512,
    focal: float | None = None,
    config: PreprocessConfig | None = None,
) -> Job[Path]:
    """Turn ``video`` into the subject folder ``out``; yields Progress, returns ``out``."""
    cfg = config or PreprocessConfig(size=size, focal=focal)
    if not 64 <= cfg.size <= 4096:
        raise PreprocessError(f"--size {cfg.size} is outside 64..4096 pixels (512 is usual)")
    if cfg.focal is not None and not cfg.focal > 0:
        raise PreprocessError(f"--focal {cfg.focal} must be a positive number of pixels")
    clock = _Clock()
    out = Path(out)
    check_out(out)
    info = probe(video)
    check_source(info, str(video), cfg.min_seconds)
    notes: list[str] = []
    if info.is_vfr or abs(info.fps - FPS) > 0.01:
        kind = "variable frame rate" if info.is_vfr else f"{info.fps:.3g} fps"
        notes.append(f"the source is {kind}; frames were resampled to {FPS} fps by timestamps")
    audio = load_audio(video) if info.has_audio else None
    if audio is None:
        notes.append(
            "the video has no audio track: the subject is made, but stage-1 training needs speech"
        )
    expected = max(1, round(info.duration_s * FPS))
    yield Progress(
        "probe", 1, 1, "; ".join(notes) or f"{info.width}x{info.height}, {info.fps:.3g} fps"
    )
    clock.lap("probe")

    candidates: list[list[np.ndarray]] = []
    width = height = 0
    with FaceMeshTracker(cfg.max_faces) as tracker:
        for frame in iter_video_frames(video, fps=FPS):
            height, width = frame.rgb.shape[:2]
            candidates.append(tracker(frame.rgb))
            yield Progress("track", frame.index + 1, expected, "tracking the face")
    t = len(candidates)
    if t < cfg.min_seconds * FPS:
        raise PreprocessError(
            f"{video} decodes to {t} frames ({t / FPS:.2f} s); a subject needs at least "
            f"{cfg.min_seconds:.0f} s of video"
        )
    choice = choose_face(candidates, FPS, cfg.equal_face_ratio, cfg.equal_face_fraction)
    notes += yield from look_again(video, choice, FPS)
    mesh_src, gap_notes = fill_gaps(choice, FPS, cfg.max_gap_s, cfg.max_untracked_fraction)
    notes += choice.notes + gap_notes
    clock.lap("track")

    crop = stable_crop(mesh_src, width, height, cfg.size, cfg.crop_face_factor, cfg.crop_down_shift)
    if crop.padded(width, height):
        notes.append("the face is near the frame's edge: the crop was padded with border pixels")
    mesh = crop.points(mesh_src)  # [T, 478, 3] pixels at cfg.size
    prior = 1.2 * min(width, height) * crop.scale
    centre = crop.source_centre(width, height)
    if cfg.focal is not None:
        focal_value, decided, curve = float(cfg.focal), "given", []
    else:
        search = estimate_focal(mesh, cfg.size, prior, cfg.focal_frames, centre=centre)
        focal_value, decided, curve = search.focal, search.decided_by, search.curve
    yield Progress("pose", 1, 2, f"focal length {focal_value:.0f} px ({decided})")
    K = intrinsics(cfg.size, focal_value, centre)
    train_frames = default_train_frames(t)
    solved = solve_tracks(mesh, K, train_frames, choice.found, cfg)
    yield Progress("pose", 2, 2, "head pose and landmarks solved")
    clock.lap("pose")

    source = source_description(video, info.fps, info.is_vfr, width, height, crop)
    meta = SubjectMeta(
        name=out.name,
        size=cfg.size,
        num_frames=t,
        intrinsics=K.tolist(),
        head_bbox=solved.head_bbox.tolist(),
        has_audio=audio is not None,
        frame_ext=cfg.frame_ext,
        train_frames=train_frames,
        source=source,
    )
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        subject = create(stage, meta)
        plate = PlateBuilder()
        pick_plate = set(
            np.linspace(0, t - 1, min(cfg.plate_frames, t)).round().astype(int).tolist()
        )
        pick_sheet = {round(t * (k + 0.5) / SHEET_SAMPLES) for k in range(SHEET_SAMPLES)}
        samples = []
        written = 0
        with PersonSegmenter(cfg.seg_size) as segmenter:
            for frame in iter_video_frames(video, fps=FPS, max_frames=t):
                i = frame.index
                rgb = crop.apply(frame.rgb)
                labels = label_mask(solved.lm2d[i], segmenter(rgb))
                subject.write_frame(i, rgb)
                subject.write_mask(i, labels)
                if i in pick_plate:
                    plate.add(rgb, labels)
                if i in pick_sheet:
                    samples.append((i, rgb, labels))
                written += 1
                yield Progress("frames", written, t, "cropping, segmenting, writing frames")
        if written != t:
            raise MediaError(
                f"{video} gave {written} frames on the second read but {t} on the first; "
                "was the file changed during preprocessing?"
            )
        clock.lap("frames")
        yield Progress("write", 0, 1, "background plate, audio, tracks, report")
        run = RunInfo(str(video), source, decided, curve, notes, clock.laps)
        report, sheet = finish_subject(subject, solved, plate, samples, audio, run)
        _replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    summary = (
        f"{t} frames ({report['frames_tracked']} tracked), reprojection "
        f"{report['reprojection_px']['mean']:.2f} px mean, {clock.total():.1f} s"
    )
    yield Progress("write", 1, 1, summary, preview=sheet)
    return out


def _replace(stage: Path, out: Path) -> None:
    """Move the finished ``stage`` folder onto ``out`` (replacing an old subject there)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except OSError as exc:
        if old.exists():
            os.replace(old, out)
        raise SubjectError(f"could not move the new subject into {out}: {exc}") from exc
    shutil.rmtree(old, ignore_errors=True)


class _Clock:
    """Seconds spent per stage."""

    def __init__(self) -> None:
        self.start = self._last = time.monotonic()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now

    def total(self) -> float:
        return time.monotonic() - self.start
