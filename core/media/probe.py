"""Probing: what streams a media file has, how long it is, its frame rate and rotation.

:func:`probe` reads the container header, demuxes (without decoding) up to the first
``VFR_PACKETS`` video packets to judge whether the frame rate is variable (and, when that is the
whole stream, to measure its length), and decodes only until the first video frame comes out, to
read its display rotation. ``duration_s`` is the longest of the container's, the streams' and
that measured length. Errors follow the package policy (see ``_errors``):
anything unreadable raises :class:`~talkstudio.core.errors.MediaError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av.container
import av.video.stream
import numpy as np

from ..errors import MediaError
from ._errors import AV_ERRORS, check_readable, describe, first_video, open_input, stream_summary

#: How many video packets :func:`probe` looks at to decide whether the frame rate is variable.
VFR_PACKETS = 300

#: Packets are stored in decode order; B-frames are presented up to this many packets later, so
#: the presentation times of the last ones of an incomplete scan have gaps that are not VFR.
REORDER_WINDOW = 16


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learned about a media file. Absent streams give ``None`` / 0 fields."""

    path: Path
    """The probed file."""
    duration_s: float
    """Length of the whole file in seconds (the container's, else the longest stream's)."""
    has_video: bool
    """True when the file has at least one video stream (the first one is described)."""
    has_audio: bool
    """True when the file has at least one audio stream (the first one is described)."""
    width: int
    """Video width in pixels as stored (before rotation); 0 without video."""
    height: int
    """Video height in pixels as stored (before rotation); 0 without video."""
    fps: float
    """Average video frame rate in frames per second; 0.0 without video."""
    is_vfr: bool
    """Best effort: True when the first packets' timestamps are not evenly spaced."""
    video_codec: str | None
    """FFmpeg name of the video codec (``"h264"``), or None."""
    audio_codec: str | None
    """FFmpeg name of the audio codec (``"aac"``, ``"pcm_s16le"``), or None."""
    audio_sample_rate: int
    """Audio sample rate in Hz; 0 without audio."""
    audio_channels: int
    """Audio channel count; 0 without audio."""
    rotation: int
    """Display rotation in degrees (from the display matrix), counter-clockwise, else 0."""


def _is_vfr(pts: list[int]) -> bool:
    """True when sorted presentation timestamps are unevenly spaced (beyond 1 tick + 1 %)."""
    if len(pts) < 3:
        return False
    deltas = np.diff(np.sort(np.asarray(pts, dtype=np.int64)))
    deltas = deltas[deltas > 0]
    if len(deltas) < 2:
        return False
    med = float(np.median(deltas))
    return bool(np.max(np.abs(deltas - med)) > 1 + 0.01 * med)


@dataclass
class _VideoScan:
    """What demuxing the first packets of a video stream tells."""

    pts: list[int]
    """Sorted presentation timestamps of the packets seen, in the stream's time base."""
    span_s: float | None
    """Seconds from the first pts to the end of the last packet, when the whole stream was seen."""
    rotation: int
    """Display rotation of the first decoded frame, degrees counter-clockwise in [0, 360)."""


def _scan_video(c: av.container.InputContainer, video: av.video.stream.VideoStream) -> _VideoScan:
    """Demux up to VFR_PACKETS packets (decoding only until the first frame comes out)."""
    pts: list[int] = []
    end = 0
    rotation: int | None = None
    complete = True
    for packet in c.demux(video):
        if rotation is None:
            for frame in packet.decode():
                rotation = round(frame.rotation) % 360
                break
        if packet.pts is not None:
            pts.append(packet.pts)
            end = max(end, packet.pts + (packet.duration or 0))
        if len(pts) >= VFR_PACKETS:
            complete = False
            break
    tb = float(video.time_base) if video.time_base else 0.0
    span = (end - min(pts)) * tb if complete and pts and tb else None
    pts.sort()
    if not complete:  # packets come in decode order: the last few presentation times are missing
        pts = pts[:-REORDER_WINDOW]
    return _VideoScan(pts=pts, span_s=span, rotation=rotation or 0)


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe the streams of ``path``; raise :class:`MediaError` if it is not readable media.

    Cover pictures of music files are not counted as video.
    """
    p = check_readable(path)
    with open_input(p) as c:
        video = first_video(c)
        audio = c.streams.audio[0] if c.streams.audio else None
        if video is None and audio is None:
            raise MediaError(
                f"{p} contains neither video nor audio (it has: {stream_summary(c)}). Choose a "
                "video (MP4, MOV, MKV) or an audio file (WAV, MP3, M4A, FLAC)."
            )
        durations = []
        if c.duration is not None:
            durations.append(c.duration / 1_000_000)
        for s in (video, audio):
            if s is not None and s.duration is not None and s.time_base is not None:
                durations.append(float(s.duration * s.time_base))

        width = height = rotation = 0
        fps = 0.0
        is_vfr = False
        if video is not None:
            width, height = video.codec_context.width, video.codec_context.height
            rate: Fraction | None = video.average_rate or video.guessed_rate or video.base_rate
            fps = float(rate) if rate else 0.0
            try:
                scan = _scan_video(c, video)
            except AV_ERRORS as err:
                raise MediaError(
                    f"{p}: its video stream cannot be read ({describe(err)}). The file is corrupt "
                    "or truncated; re-export it and try again."
                ) from err
            is_vfr, rotation = _is_vfr(scan.pts), scan.rotation
            if scan.span_s:
                durations.append(scan.span_s)
                if fps == 0.0:
                    fps = len(scan.pts) / scan.span_s
        duration = max(durations) if durations else 0.0

        return MediaInfo(
            path=p,
            duration_s=float(duration),
            has_video=video is not None,
            has_audio=audio is not None,
            width=int(width),
            height=int(height),
            fps=fps,
            is_vfr=is_vfr,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_sample_rate=int(audio.codec_context.sample_rate or 0) if audio is not None else 0,
            audio_channels=int(audio.codec_context.channels or 0) if audio is not None else 0,
            rotation=rotation,
        )
