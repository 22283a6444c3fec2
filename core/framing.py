"""How an export is framed: the subject's square crop, or the source video's own frames.

``framing="source"`` (the default for subjects made from a video) writes the source video's frame
size: each rendered crop is pasted back into the source frame the driving track borrows its
pose from (``DrivingTrack.ref_index``: the subject's frame ``j`` is the source's frame ``j`` at
25 fps), see :mod:`.paste_back`. ``framing="crop"`` writes the square render as it is.

The source video is used only when it is the file the subject was made from: subject format 2
records its byte size and a hash of its size, first and last :data:`HASH_BYTES` bytes (fast on
any length). An older subject (format 1, migrated on read) recorded no hash: its source is
accepted when the file at the recorded path still has the recorded frame size and length. When
the video is missing or differs, the export falls back to the crop with a notice that says why
and what to do; that is never an error.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .closing import Closes
from .errors import MediaError, TalkstudioError
from .paste_back import blend_weights, check_affine, paste, scale_affine
from .timing import FPS

if TYPE_CHECKING:
    from .media.frame_reader import FrameReader
    from .subject import Subject, SubjectMeta

FRAMINGS = ("source", "crop")
HASH_BYTES = 4 * 1024 * 1024
"""Bytes hashed at each end of the source video for its identity."""


def video_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"file_bytes", "file_hash"}`` of a video: its size and the SHA-256 of its size, first and
    last :data:`HASH_BYTES` bytes (reads at most 8 MiB whatever the file's length)."""
    p = Path(path)
    size = p.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        digest.update(f.read(HASH_BYTES))
        if size > HASH_BYTES:
            f.seek(max(HASH_BYTES, size - HASH_BYTES))
            digest.update(f.read(HASH_BYTES))
    return {"file_bytes": size, "file_hash": "sha256:" + digest.hexdigest()}


@dataclass(frozen=True)
class Framing:
    """What an export writes: ``kind`` "source" or "crop", and why when it is not what was
    asked for (``notice``)."""

    kind: str
    video: Path | None = None
    """The source video (``kind == "source"``)."""
    width: int = 0
    height: int = 0
    """Output frame size for ``kind == "source"``: the source's, made even for H.264."""
    affine: np.ndarray | None = None
    """[2, 3] source pixels → subject pixels (``kind == "source"``)."""
    notice: str | None = None
    """A note for the user: why the crop is used although the source framing was asked for (or
    is the default), or how an older subject's video was matched."""

    def size(self, render_size: int) -> tuple[int, int]:
        """(width, height) of the exported frames for a render of side ``render_size``."""
        if self.kind == "source":
            return self.width, self.height
        return render_size, render_size


def scaled_size(width: int, height: int, to_height: int | None) -> tuple[int, int]:
    """(width, height) of a ``width`` x ``height`` frame scaled to ``to_height`` rows, the aspect
    kept and both even for H.264; ``None`` keeps the size. A :class:`TalkstudioError` for a height
    under 16 pixels."""
    if to_height is None or to_height == height:
        return width, height
    if to_height < 16:
        raise TalkstudioError(
            f"an export's frame height must be 16 pixels or more, got {to_height}"
        )
    h = to_height + to_height % 2
    w = max(2, round(width * h / height / 2) * 2)
    return w, h


def check_framing(requested: str | None) -> None:
    """A :class:`TalkstudioError` unless ``requested`` is None or one of :data:`FRAMINGS`."""
    if requested is not None and requested not in FRAMINGS:
        raise TalkstudioError(f"framing must be one of {', '.join(FRAMINGS)}; got {requested!r}")


def choose_framing(meta: SubjectMeta, requested: str | None = None) -> Framing:
    """The framing of an export of a subject described by ``meta`` when ``requested`` ("source",
    "crop" or None: the default, "source" for subjects made from a video) is asked for."""
    check_framing(requested)
    source = meta.source or {}
    if requested == "crop":
        return Framing("crop")
    if source.get("kind") != "video":
        if requested is None:
            return Framing("crop")
        kind = source.get("kind", "unknown")
        return Framing(
            "crop",
            notice=f"subject {meta.name!r} was not made from a video (its source is {kind}), so "
            "it is exported in its square crop",
        )
    problem = source_problem(source, meta.num_frames)
    if problem is not None:
        return Framing(
            "crop",
            notice=f"{problem}; exporting the square crop instead. To export in the source "
            "framing, put the original video back at that path",
        )
    note = None
    if not source.get("file_hash"):
        note = (
            f"subject {meta.name!r} is from an older Talkstudio that did not record its source "
            f"video's identity; {source['path']} is used because its frame size and length match"
        )
    width, height = int(source["width"]), int(source["height"])
    return Framing(
        "source",
        video=Path(source["path"]),
        width=width - width % 2,
        height=height - height % 2,
        affine=check_affine(source["crop_affine"]),
        notice=note,
    )


def source_problem(source: dict[str, Any], num_frames: int) -> str | None:
    """Why the video of a subject's ``source`` cannot be used for paste-back, or None."""
    path = Path(str(source.get("path", "")))
    if "crop_affine" not in source or not source.get("width") or not source.get("height"):
        return "the subject does not record how it was cropped from its video"
    if not path.is_file():
        return f"the subject's source video {path} is missing"
    if source.get("file_hash"):
        if path.stat().st_size != source.get("file_bytes") or (
            video_identity(path)["file_hash"] != source["file_hash"]
        ):
            return f"{path} is no longer the video the subject was made from (its content differs)"
        return None
    from .media import probe

    try:
        info = probe(path)
    except MediaError as exc:
        return f"the subject's source video cannot be read ({exc})"
    sizes = {(info.width, info.height), (info.height, info.width)}  # before/after rotation
    frames = round(info.duration_s * FPS)
    slack = max(2, round(0.02 * num_frames))  # the container may last a little longer
    if (source["width"], source["height"]) not in sizes or abs(frames - num_frames) > slack:
        return (
            f"{path} does not match the subject (it is {info.width}x{info.height}, {frames} "
            f"frames; the subject was made from {source['width']}x{source['height']}, "
            f"{num_frames} frames)"
        )
    return None


class Paster(Closes):
    """Rendered crops → source frames for one export (see :mod:`.paste_back`).

    ``paster(rgba, ref)``: ``rgba`` uint8 [R, R, 4] is the render with the head's opacity as its
    fourth channel; ``ref`` the subject frame (= source frame at 25 fps) it borrows its pose from.
    Source frames are decoded on demand (:class:`~talkstudio.core.media.frame_reader.FrameReader`).
    """

    def __init__(self, subject: Subject, framing: Framing) -> None:
        from .media.frame_reader import FrameReader

        if framing.kind != "source" or framing.video is None or framing.affine is None:
            raise TalkstudioError("paste-back needs the source framing of a subject")
        self.subject = subject
        self.framing = framing
        self.reader: FrameReader = FrameReader(framing.video)

    def __call__(self, rgba: np.ndarray, ref: int) -> np.ndarray:
        import cv2

        from .subject import MASK_HEAD

        r = rgba.shape[0]
        head = (self.subject.load_mask(ref) & MASK_HEAD).astype(np.uint8)
        if head.shape[0] != r:
            head = np.asarray(cv2.resize(head, (r, r), interpolation=cv2.INTER_NEAREST))
        weights = blend_weights(rgba[..., 3], head > 0)
        assert self.framing.affine is not None
        affine = scale_affine(self.framing.affine, r / self.subject.meta.size)
        frame = paste(self.reader[ref], np.ascontiguousarray(rgba[..., :3]), weights, affine)
        return np.ascontiguousarray(frame[: self.framing.height, : self.framing.width])

    def close(self) -> None:
        self.reader.close()
