"""Tracks without a subject folder: face tracking, head pose and ``L_world`` of a video.

The first three steps of :mod:`.pipeline` (track and choose the face, fill gaps, stable crop,
focal length, pose and landmarks) and nothing else: no frames, masks or background plate are
written. Used where only the motion matters, e.g. the many-speaker corpus that the stage-1 prior
learns from (:mod:`talkstudio.core.stage1.corpus`). Results are identical in meaning to a
subject's ``tracks.npz`` (head frame, pixels at ``size``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..media import iter_video_frames, load_audio, probe
from ..subject import default_train_frames
from ..timing import FPS, SAMPLES_PER_FRAME
from .config import PreprocessConfig, PreprocessError, check_source
from .crop import stable_crop
from .pose import estimate_focal, intrinsics
from .solve import solve_tracks
from .tracking import FaceMeshTracker, choose_face, fill_gaps

MAX_TRACK_SIDE = 1280
"""Frames larger than this (longer side, pixels) are halved before tracking (speed only)."""


@dataclass
class VideoTracks:
    """Motion and sound of one video at 25 fps."""

    lm_world: np.ndarray
    """[T, 68, 3] iBUG landmarks in the head frame (smoothed), head units."""
    pose: np.ndarray
    """[T, 4, 4] head-to-camera."""
    K: np.ndarray
    """[3, 3] intrinsics, pixels at ``size``."""
    size: int
    tracked: np.ndarray
    """[T] bool: a face was found in the frame (not interpolated)."""
    audio: np.ndarray
    """[T * 640] mono float32 at 16 kHz (zeros where the video has no sound)."""
    notes: list[str]

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "lm_world": self.lm_world.astype(np.float32),
            "pose": self.pose.astype(np.float32),
            "K": self.K.astype(np.float64),
            "size": np.asarray(self.size),
            "tracked": self.tracked.astype(bool),
            "audio": self.audio.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> VideoTracks:
        return cls(
            lm_world=np.asarray(arrays["lm_world"], np.float32),
            pose=np.asarray(arrays["pose"], np.float32),
            K=np.asarray(arrays["K"], np.float64),
            size=int(arrays["size"]),
            tracked=np.asarray(arrays["tracked"], bool),
            audio=np.asarray(arrays["audio"], np.float32),
            notes=[],
        )


def _shrink(rgb: np.ndarray) -> np.ndarray:
    if max(rgb.shape[:2]) <= MAX_TRACK_SIDE:
        return rgb
    return np.ascontiguousarray(rgb[::2, ::2])


def track_video(
    video: str | os.PathLike[str], size: int = 512, config: PreprocessConfig | None = None
) -> VideoTracks:
    """Track ``video`` and solve pose and ``L_world``; raises :class:`PreprocessError` when the
    face cannot be followed (the same rules as ``talkstudio preprocess``)."""
    cfg = config or PreprocessConfig(size=size)
    info = probe(video)
    check_source(info, str(video), cfg.min_seconds)
    candidates: list[list[np.ndarray]] = []
    width = height = 0
    with FaceMeshTracker(cfg.max_faces) as tracker:
        for frame in iter_video_frames(video, fps=FPS):
            rgb = _shrink(frame.rgb)
            height, width = rgb.shape[:2]
            candidates.append(tracker(rgb))
    t = len(candidates)
    if t < cfg.min_seconds * FPS:
        raise PreprocessError(f"{video} decodes to {t} frames; at least {cfg.min_seconds} s needed")
    choice = choose_face(candidates, FPS, cfg.equal_face_ratio, cfg.equal_face_fraction)
    mesh_src, notes = fill_gaps(choice, FPS, cfg.max_gap_s, cfg.max_untracked_fraction)
    crop = stable_crop(mesh_src, width, height, cfg.size, cfg.crop_face_factor, cfg.crop_down_shift)
    mesh = crop.points(mesh_src)
    prior = 1.2 * min(width, height) * crop.scale
    centre = crop.source_centre(width, height)
    focal = estimate_focal(mesh, cfg.size, prior, cfg.focal_frames, centre=centre).focal
    K = intrinsics(cfg.size, focal, centre)
    solved = solve_tracks(mesh, K, default_train_frames(t), choice.found, cfg)
    audio = np.zeros(t * SAMPLES_PER_FRAME, dtype=np.float32)
    if info.has_audio:
        a = load_audio(video)
        audio[: min(len(audio), len(a))] = a[: len(audio)]
    else:
        notes = [*choice.notes, *notes, "no audio track"]
    return VideoTracks(
        lm_world=solved.lm_world,
        pose=solved.pose,
        K=K,
        size=cfg.size,
        tracked=solved.tracked,
        audio=audio,
        notes=[*choice.notes, *notes],
    )
