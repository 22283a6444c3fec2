"""Decoding video into RGB frames at a fixed frame rate, by timestamps.

The timestamp rule (docs/design.md "Time"): the source's first decoded frame is time 0 (its pts, in the
stream's time base, is the start offset subtracted from every pts). Output frame ``i`` has time
``t_i = i / fps`` and shows the source frame being displayed at ``t_i``: the last source frame
whose time is ``<= t_i``. So 30, 60 or 24 fps sources and variable-frame-rate sources all come
out at ``fps`` with the same duration, and frames are repeated or dropped as the clock demands,
never interpolated.

The source's duration is the last frame's time plus that frame's duration (its own ``duration``
field, else the gap between the last two frames, else ``1 / average rate``). The number of output
frames is ``round(duration * fps)`` with halves rounded up, e.g. 150 frames at 30 fps (5.0 s) →
125 frames; 151 frames at 30 fps (5.033 s) → 126 frames.

Frames are rotated upright by the stream's display matrix (multiples of 90°) unless
``apply_rotation=False``.

Errors follow the package policy (see ``_errors``): a missing file, a file without video or
one that cannot be opened raises :class:`~talkstudio.core.errors.MediaError`; a file that breaks
part-way raises MediaError naming the time in seconds where decoding failed, and so does a file
whose decodable frames end well before the duration its header promises (a truncated file).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from ..errors import MediaError
from ._errors import AV_ERRORS, decode_failed, first_video, open_input, stream_summary

#: Timestamps closer than this (seconds) count as equal: a source frame whose time equals an
#: output time up to rounding is the one shown at that time.
EPS_S = 1e-6

#: A file whose frames end more than this many seconds (and more than 5 % of its length) before
#: the video stream's declared duration is reported as truncated.
TRUNCATION_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class VideoFrame:
    """One output frame of :func:`iter_video_frames`."""

    index: int
    """Output frame number ``i`` (0-based)."""
    time_s: float
    """Its time ``i / fps`` in seconds from the first source frame."""
    rgb: np.ndarray
    """The picture, uint8 ``[H, W, 3]``, RGB, upright."""


def _to_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")  # [H, W, 3] uint8
    k = (rotation // 90) % 4 if rotation % 90 == 0 else 0
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def iter_video_frames(
    path: str | os.PathLike[str],
    fps: float = 25,
    max_frames: int | None = None,
    apply_rotation: bool = True,
) -> Iterator[VideoFrame]:
    """Decode the first video stream of ``path`` as frames at ``fps``, by timestamps.

    See the module docstring for the timestamp rule and the frame count. ``max_frames`` stops
    early. Raises :class:`MediaError` for unreadable files, files without video, and files that
    break part-way (the message names the time of the failure). Being a generator, it opens the
    file and raises on the first ``next()``, not at the call.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    with open_input(path) as c:
        stream = first_video(c)
        if stream is None:
            raise MediaError(
                f"{c.name} has no video stream (it has: {stream_summary(c)}). Choose a video file."
            )
        stream.thread_type = "AUTO"
        yield from _resample(c, stream, float(fps), max_frames, apply_rotation)


def _resample(
    c: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    max_frames: int | None,
    apply_rotation: bool,
) -> Iterator[VideoFrame]:
    """The timestamp resampler behind :func:`iter_video_frames`."""
    from pathlib import Path

    path = Path(c.name)
    limit = math.inf if max_frames is None else max(0, int(max_frames))
    tb = float(stream.time_base) if stream.time_base else 0.0
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    nominal = 1.0 / float(rate) if rate else 1.0 / fps
    origin: float | None = None  # seconds: pts of the first decoded frame
    prev: av.VideoFrame | None = None  # last source frame with time <= the next output time
    prev_rgb: np.ndarray | None = None
    prev_t = 0.0
    last_gap = nominal
    rotation = 0
    deferred: np.ndarray | None = None  # content of output `out` when it may lie past the end
    out = 0  # the next output index
    if limit <= 0:
        return

    def rgb_of_prev() -> np.ndarray:
        nonlocal prev_rgb
        if prev_rgb is None:
            assert prev is not None
            prev_rgb = _to_rgb(prev, rotation)
        return prev_rgb

    try:
        for frame in c.decode(stream):
            if frame.pts is not None and tb:
                t_abs = frame.pts * tb
            elif prev is None:
                t_abs = 0.0
            else:
                t_abs = (origin or 0.0) + prev_t + last_gap
            if origin is None:
                origin = t_abs
                rotation = round(frame.rotation) if apply_rotation else 0
            t = t_abs - origin  # the frame is shown from output time t on
            tc = t - EPS_S  # t for comparisons: an output time equal to t up to rounding shows it
            if prev is not None:
                if t > prev_t:
                    last_gap = t - prev_t
                # Outputs before `t` show `prev`. Output i certainly exists when
                # i < round(t * fps) (the duration is > t); the one output that may lie past the
                # end is kept in `deferred` until the next frame or the end decides.
                if deferred is not None and out < math.floor(tc * fps + 0.5):
                    yield VideoFrame(out, out / fps, deferred)
                    deferred = None
                    out += 1
                    if out >= limit:
                        return
                while deferred is None and out / fps < tc:
                    if out >= math.floor(tc * fps + 0.5):
                        deferred = rgb_of_prev()
                        break
                    yield VideoFrame(out, out / fps, rgb_of_prev())
                    out += 1
                    if out >= limit:
                        return
            prev, prev_rgb, prev_t = frame, None, t
    except AV_ERRORS as err:
        raise decode_failed(path, prev_t if prev is not None else 0.0, err) from err
    if prev is None:
        raise MediaError(
            f"{path}: its video stream has no decodable frames. The file is corrupt or "
            "truncated; re-export it and try again."
        )
    own = float(prev.duration * tb) if prev.duration and tb else 0.0
    end = prev_t + (own if own > 0 else last_gap)
    declared = float(stream.duration * tb) if stream.duration and tb else 0.0
    if declared - end > max(TRUNCATION_TOLERANCE_S, 0.05 * declared):
        raise MediaError(
            f"{path}: decoding failed at {end:.2f} s: the video stream ends there although the "
            f"file declares {declared:.2f} s. The file is truncated or corrupt; re-export it, or "
            f"cut it to end before {end:.2f} s."
        )
    total = math.floor(end * fps + 0.5)
    if deferred is not None and out < total:
        yield VideoFrame(out, out / fps, deferred)
        out += 1
    while out < min(total, limit):
        yield VideoFrame(out, out / fps, rgb_of_prev())
        out += 1


def read_video_frames(
    path: str | os.PathLike[str],
    fps: float = 25,
    max_frames: int | None = None,
    apply_rotation: bool = True,
) -> np.ndarray:
    """All frames of :func:`iter_video_frames` stacked: uint8 ``[T, H, W, 3]``."""
    frames = [f.rgb for f in iter_video_frames(path, fps, max_frames, apply_rotation)]
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)
