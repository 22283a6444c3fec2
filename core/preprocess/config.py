"""Settings of preprocessing and the error it raises for videos it cannot turn into a subject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import TalkstudioError

if TYPE_CHECKING:
    from ..media import MediaInfo


class PreprocessError(TalkstudioError):
    """The video cannot become a subject: no face, several equal faces, too short, ..."""


def check_source(info: MediaInfo, name: str, min_seconds: float) -> None:
    """Raise :class:`PreprocessError` when the probed file ``name`` cannot become a subject: it
    has no video stream, or it is shorter than ``min_seconds``. The studio's video check and
    preprocessing both ask this first, so both refuse a file with the same error."""
    if not info.has_video:
        raise PreprocessError(f"{name} has no video stream; choose a video of the speaker")
    if info.duration_s < min_seconds:
        raise PreprocessError(
            f"{name} is {info.duration_s:.2f} s long; a subject needs at least "
            f"{min_seconds:.0f} s of video (1-5 minutes of speech trains well)"
        )


@dataclass
class PreprocessConfig:
    """How a video becomes a subject folder (``talkstudio preprocess``)."""

    size: int = 512
    """Side in pixels of the stored square frames (``--size``); K refers to this size."""
    focal: float | None = None
    """Focal length in pixels at ``size`` (``--focal``); None estimates it (see pose.estimate_focal)."""
    min_seconds: float = 2.0
    """Shortest video accepted, in seconds."""
    max_gap_s: float = 0.5
    """Untracked runs up to this long are interpolated silently; longer ones are reported."""
    max_untracked_fraction: float = 0.3
    """More untracked frames than this fraction is an error that names the ranges. Runs longer
    than ``max_gap_s`` are left out of training and of driven tracks (core/subject.py
    ``steady_frames``), so a clip with a title or a cutaway still makes a subject."""
    max_faces: int = 2
    """Faces MediaPipe looks for per frame; more than one lets us notice a second person."""
    equal_face_ratio: float = 0.8
    """A second face at least this fraction of the main face's size counts as "equal"."""
    equal_face_fraction: float = 0.2
    """Equal-size second faces in more than this fraction of the frames is an error."""
    crop_face_factor: float = 2.2
    """The square crop's side is this many times the face's size (mesh extent), at least."""
    crop_down_shift: float = 0.12
    """The crop's centre sits this fraction of its side below the face centre (shows the neck)."""
    seg_size: int = 256
    """Side at which the selfie segmentation runs (its network's input is 256 x 256)."""
    plate_frames: int = 64
    """Frames sampled evenly over the video for the background plate's per-pixel median."""
    pose_window: int = 7
    """Savitzky-Golay window (frames, odd) smoothing head rotation and translation."""
    shape_window: int = 5
    """Savitzky-Golay window (frames, odd) smoothing L_world; 1 turns it off."""
    focal_frames: int = 60
    """Frames (evenly spaced) used by the focal-length search."""
    frame_ext: str = ".jpg"
    """Image format of the stored frames: ".jpg" (quality 95) or ".png"."""
