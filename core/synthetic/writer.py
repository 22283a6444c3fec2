"""Write a synthetic clip as a camera would (MP4 with sound) and as a subject folder.

The subject folder holds the same frames, the label masks, the clean background, the audio and
ground-truth tracks: landmarks projected with the true pose and K, the landmarks in the head
frame, the poses, the eye-closure ratios and the open-eye areas. Its ``subject.json`` records
``source = {"kind": "synthetic", "seed": ..., "config": {...}, "origin": [...]}``, from which the
whole clip can be regenerated (:func:`.sequence.config_from_source`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TalkstudioError
from ..geometry import project_head_points
from ..landmarks import eye_area
from ..progress import Progress, run_job
from ..subject import Subject, SubjectMeta, Tracks, create, default_train_frames
from . import head, shape
from .config import SynthConfig
from .sequence import GENERATOR_VERSION, SynthSequence, config_to_source, synthesize

VIDEO_NAME = "synthetic.mp4"
SUBJECT_NAME = "subject"


@dataclass
class SynthResult:
    """What :func:`write_synthetic` wrote."""

    video_path: Path | None
    """The MP4 (H.264 + AAC) as a camera would record it; None when not asked for."""
    subject_dir: Path
    """The subject folder with ground-truth tracks."""
    num_frames: int
    """Frames T of the clip (25 fps)."""
    sequence: SynthSequence
    """The ground truth in memory (audio, expression, poses, scene)."""


def ground_truth_tracks(seq: SynthSequence) -> Tracks:
    """Exact tracks of the clip (see docs/subject-format.md for the keys)."""
    lm_world = seq.landmarks()  # [T, 68, 3]
    lm2d = project_head_points(seq.K, seq.pose[:, None], lm_world[:, None])[:, 0]
    open_lm = seq.landmarks(head.NEUTRAL)  # [68, 3] eyes fully open
    s0 = np.array([eye_area(open_lm, left=True), eye_area(open_lm, left=False)])
    areas = np.stack([eye_area(lm_world, left=True), eye_area(lm_world, left=False)], -1)
    train = default_train_frames(seq.num_frames)
    return Tracks(
        lm2d=lm2d.astype(np.float32),
        lm_world=lm_world.astype(np.float32),
        pose=seq.pose.astype(np.float32),
        eye_ratio=(areas / s0).astype(np.float32),
        tracked=np.ones(seq.num_frames, dtype=bool),
        mean_shape=lm_world[:train].mean(axis=0).astype(np.float32),
        eye_open_area=s0.astype(np.float32),
    )


def head_bbox(seq: SynthSequence) -> list[list[float]]:
    """Box [[min], [max]] (head units, subject frame) around skin and hair at the widest jaw."""
    meshes = seq.scene.meshes
    skin, hair = meshes[0], meshes[1]
    assert skin.jaw is not None
    opened = skin.points + float(seq.params[:, head.MOUTH].max()) / head.SCALE * skin.jaw
    pts = np.concatenate(
        [skin.points.reshape(-1, 3), opened.reshape(-1, 3), hair.points.reshape(-1, 3)]
    )
    pts = pts[pts[:, 1] <= shape.HEAD_BOTTOM + 1.0]
    pts = head.to_head(pts) - seq.origin
    margin = 0.05
    return [(pts.min(0) - margin).tolist(), (pts.max(0) + margin).tolist()]


def write_synthetic_job(
    out_dir: str | Path, cfg: SynthConfig, video: bool = True
) -> Generator[Progress, None, SynthResult]:
    """Render ``cfg``'s clip into ``out_dir``: ``synthetic.mp4`` and ``subject/``.

    A job (core.progress): yields one record per frame and returns a :class:`SynthResult`.
    ``tracks.npz`` is written last, so a cancelled run leaves a folder that does not validate
    rather than one that looks complete.
    """
    cfg.check()
    out = Path(out_dir)
    target = out / SUBJECT_NAME
    if target.exists() and any(target.iterdir()):
        raise TalkstudioError(
            f"{target} already exists and is not empty; choose another output folder or delete "
            "it first (nothing was written)"
        )
    seq = synthesize(cfg)
    frames = seq.num_frames
    meta = SubjectMeta(
        name=cfg.name,
        size=cfg.size,
        num_frames=frames,
        intrinsics=seq.K.tolist(),
        head_bbox=head_bbox(seq),
        has_audio=True,
        frame_ext=cfg.frame_ext,
        source={
            "kind": "synthetic",
            "seed": int(cfg.seed),
            "generator": GENERATOR_VERSION,
            "config": config_to_source(cfg),
            "origin": [float(v) for v in seq.origin],
        },
    )
    subject = create(target, meta)
    subject.write_audio(seq.audio)
    subject.write_background(seq.scene.background(cfg.size))
    video_path = out / VIDEO_NAME if video else None
    if video_path is not None:
        from ..media import Mp4Writer

        with Mp4Writer(video_path, cfg.size, cfg.size, audio=seq.audio) as writer:
            for i in range(frames):
                rgb = _write_frame(subject, seq, i)
                writer.write(rgb)
                yield Progress("synthesise", i + 1, frames, f"frame {i + 1}/{frames}")
    else:
        for i in range(frames):
            _write_frame(subject, seq, i)
            yield Progress("synthesise", i + 1, frames, f"frame {i + 1}/{frames}")
    subject.write_tracks(ground_truth_tracks(seq))
    return SynthResult(video_path, subject.root, frames, seq)


def _write_frame(subject: Subject, seq: SynthSequence, i: int) -> np.ndarray:
    rgb, labels = seq.render(i)
    subject.write_frame(i, rgb)
    subject.write_mask(i, labels)
    return rgb


def write_synthetic(out_dir: str | Path, cfg: SynthConfig, video: bool = True) -> SynthResult:
    """:func:`write_synthetic_job` run to its end."""
    return run_job(write_synthetic_job(out_dir, cfg, video))
