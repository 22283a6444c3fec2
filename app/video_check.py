"""Is this video usable for a new subject? A quick look before preprocessing starts.

:func:`check_video_job` probes the file (a video stream, at least
:attr:`PreprocessConfig.min_seconds` long), decodes a few frames spread over its first
:data:`SCAN_SECONDS` seconds and looks for a face on each with MediaPipe Face Mesh
(:class:`~talkstudio.core.preprocess.tracking.FaceMeshTracker`, still-image mode). It is a job
generator (one progress record per sampled frame) so the wizard runs it off the GUI thread, and
returns a :class:`VideoCheck` with thumbnails; a video it rejects raises
:class:`~talkstudio.core.preprocess.config.PreprocessError` or
:class:`~talkstudio.core.errors.MediaError` saying what is wrong. No Qt here.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkstudio.core.media import MediaInfo, iter_video_frames, probe
from talkstudio.core.preprocess.config import PreprocessConfig, PreprocessError, check_source
from talkstudio.core.progress import Progress

SAMPLES = 4
"""Frames looked at."""
SCAN_SECONDS = 20.0
"""The samples are spread over at most this much of the start of the video (decoding is linear)."""
THUMB = 160
"""Width of a thumbnail in pixels."""
MIN_FACE_FRACTION = 0.5
"""A face must be found on at least this fraction of the sampled frames."""


@dataclass
class VideoCheck:
    """What the look at a video found."""

    info: MediaInfo
    thumbnails: list[np.ndarray]  # each [h, THUMB, 3] uint8, faces boxed in green, misses in red
    faces: list[int]  # faces found per sampled frame
    times: list[float]  # seconds of each sampled frame

    @property
    def summary(self) -> str:
        i = self.info
        found = sum(1 for f in self.faces if f)
        audio = "with sound" if i.has_audio else "NO SOUND (stage 1 cannot train without speech)"
        return (
            f"{i.duration_s:.1f} s, {i.width}×{i.height}, {i.fps:.3g} fps, {audio}; "
            f"a face on {found} of {len(self.faces)} sampled frames"
        )


def _thumbnail(rgb: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = THUMB / w
    small = cv2.resize(rgb, (THUMB, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    for mesh in boxes:
        x0, y0 = (mesh[:, :2].min(0) * scale).astype(int)
        x1, y1 = (mesh[:, :2].max(0) * scale).astype(int)
        cv2.rectangle(small, (int(x0), int(y0)), (int(x1), int(y1)), (60, 220, 90), 2)
    if not boxes:
        cv2.rectangle(small, (0, 0), (small.shape[1] - 1, small.shape[0] - 1), (230, 60, 60), 3)
    return np.ascontiguousarray(small)


def check_video_job(
    path: str | os.PathLike[str], samples: int = SAMPLES, config: PreprocessConfig | None = None
) -> Generator[Progress, None, VideoCheck]:
    """Probe ``path`` and look for a face on ``samples`` frames; returns a :class:`VideoCheck`."""
    from talkstudio.core.preprocess.tracking import FaceMeshTracker

    cfg = config or PreprocessConfig()
    path = Path(path)
    if not path.is_file():
        raise PreprocessError(f"{path} does not exist or is not a file; choose a video file")
    info = probe(path)
    check_source(info, path.name, cfg.min_seconds)
    yield Progress("check video", 0, samples, "looking for a face")
    span = min(info.duration_s, SCAN_SECONDS)
    fps = samples / span  # `samples` frames over the span, by timestamps
    thumbs: list[np.ndarray] = []
    faces: list[int] = []
    times: list[float] = []
    with FaceMeshTracker(max_faces=2, static=True) as tracker:
        for frame in iter_video_frames(path, fps=fps, max_frames=samples):
            found = tracker(frame.rgb)
            faces.append(len(found))
            times.append(frame.index / fps)
            thumbs.append(_thumbnail(frame.rgb, found))
            yield Progress("check video", len(faces), samples, f"frame at {times[-1]:.1f} s")
    hits = sum(1 for f in faces if f)
    if not faces or hits < MIN_FACE_FRACTION * len(faces):
        raise PreprocessError(
            f"no face was found in {len(faces) - hits} of {len(faces)} frames sampled from "
            f"{path.name}; choose a video of one person facing the camera, well lit"
        )
    return VideoCheck(info, thumbs, faces, times)
