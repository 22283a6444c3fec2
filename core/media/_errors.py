"""Opening media files and turning PyAV's exceptions into :class:`MediaError`.

Error policy of ``core.media``: every failure a user can cause — a missing file, a folder, an
empty file, a text file renamed ``.mp4``, a corrupt or truncated file, a file without the stream
that was asked for, a codec FFmpeg cannot decode — raises :class:`~talkstudio.core.errors.MediaError`
whose message names the file, says what is wrong and what to do. No ``av.error.*`` exception
leaves this package; the original one is kept as ``__cause__`` for debugging.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import av.stream
import av.video.stream

from ..errors import MediaError

#: Every exception PyAV raises for bad media. ``av.error.FFmpegError`` covers the FFmpeg error
#: codes (invalid data, EOF, decoder not found, ...); PyAV raises ``ValueError`` for frames it
#: cannot convert (for example an audio format change mid-stream).
AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, ValueError)


def describe(err: BaseException) -> str:
    """A short, single-line description of a PyAV error (without the file name it repeats)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())


def check_readable(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a :class:`Path` if it names a non-empty file, else raise MediaError."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file. Check the path and that the file was not moved.")
    if p.is_dir():
        raise MediaError(f"{p} is a folder, not a media file. Choose a video or audio file.")
    if p.stat().st_size == 0:
        raise MediaError(f"{p} is empty (0 bytes). Re-copy or re-export the file.")
    return p


@contextlib.contextmanager
def open_input(path: str | os.PathLike[str]) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading with PyAV; unreadable files raise :class:`MediaError`."""
    p = check_readable(path)
    try:
        container = av.open(str(p), mode="r")
    except AV_ERRORS as err:
        raise MediaError(
            f"{p} cannot be read as audio or video ({describe(err)}). It is corrupt, truncated "
            "or not a media file at all; re-export it (for example as MP4 or WAV) and try again."
        ) from err
    except OSError as err:  # permissions and the like
        raise MediaError(
            f"{p} cannot be opened ({err.strerror or err}). Check its permissions."
        ) from err
    try:
        yield container
    finally:
        with contextlib.suppress(*AV_ERRORS):
            container.close()


def first_video(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first real video stream: cover art (an ``attached_pic`` picture in an MP3/M4A) is not
    video and is skipped."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


def stream_summary(container: av.container.InputContainer) -> str:
    """``"video h264, audio aac"`` — the streams a file has, for error messages."""
    parts = []
    for s in container.streams:
        codec = s.codec_context.name if s.codec_context is not None else "?"
        cover = s.type == "video" and bool(s.disposition & av.stream.Disposition.attached_pic)
        parts.append(f"{s.type} {codec}" + (" (cover picture)" if cover else ""))
    return ", ".join(parts) or "no streams at all"


def decode_failed(path: str | os.PathLike[str], time_s: float, err: BaseException) -> MediaError:
    """The error for a file that breaks part-way: names the time where decoding failed."""
    return MediaError(
        f"{path}: decoding failed at {time_s:.2f} s ({describe(err)}). The file is corrupt or "
        f"truncated from there on; re-export it, or cut it to end before {time_s:.2f} s."
    )
