"""The many-speaker corpus the stage-1 prior learns from: tracked clips, cached per user.

A corpus folder holds ``train/`` and ``test/`` with one video per clip (any format the media
layer reads). Each clip is tracked once with :func:`~talkstudio.core.preprocess.tracks_only.
track_video` (landmarks, head pose, 16 kHz audio; no frames) and the result is cached as an
``.npz`` under the user's cache folder (``corpus-tracks/``), keyed by the file's name, size and
modification time and by :data:`TRACKS_VERSION`. Nothing derived from the corpus is written into
the project.

Speakers: a clip is one speaker; clips whose names share a ``SPEAKER_ALIASES`` entry are the
same person (their speaker-normalisation statistics are pooled).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..preprocess.config import PreprocessConfig, PreprocessError
from ..preprocess.tracks_only import VideoTracks, track_video

TRACKS_VERSION = 1
"""Bump when tracking changes meaning, so cached tracks are made again."""
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
SPEAKER_ALIASES = {
    "Hangz-nju-cuhk__Talking-Face_PC-AVS__741400163": "downey",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS__00104": "downey",
    "TaoKai__subtitleEffect__obama": "obama",
    "clone95__Speech-to_lips__obama": "obama",
}
"""Clips of the same person in the corpus's training split (from its INDEX.md)."""
MAX_UNTRACKED = 0.3
"""A clip may have this fraction of untracked frames (e.g. a cutaway); training skips them."""


@dataclass
class CorpusClip:
    """One tracked clip of the corpus."""

    name: str
    speaker: str
    tracks: VideoTracks

    @property
    def frames(self) -> int:
        return int(self.tracks.lm_world.shape[0])


def corpus_cache() -> Path:
    """Folder of the cached tracks (inside the user's Talkstudio cache)."""
    from ..demo import default_cache

    return default_cache() / "corpus-tracks"


def clip_videos(root: str | os.PathLike[str], split: str) -> list[Path]:
    """Videos of ``split`` ("train" or "test") under the corpus folder ``root``, sorted."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} does not exist: the corpus folder needs train/ and test/ subfolders"
        )
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def _cache_path(video: Path, cache: Path) -> Path:
    """The cache file of ``video``'s tracks: keyed on its name and content (not its time
    stamp, which a copy or a sync changes) and :data:`TRACKS_VERSION`."""
    digest = hashlib.sha256(f"{video.name}|{TRACKS_VERSION}|".encode())
    with open(video, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return cache / f"{video.stem}-{digest.hexdigest()[:10]}.npz"


def speaker_of(name: str) -> str:
    return SPEAKER_ALIASES.get(name, name)


def load_clip(video: str | os.PathLike[str], cache: Path | None = None) -> CorpusClip:
    """The tracks of ``video``, from the cache or tracked now (and cached)."""
    video = Path(video)
    cache = cache or corpus_cache()
    path = _cache_path(video, cache)
    if path.is_file():
        with np.load(path) as z:
            tracks = VideoTracks.from_arrays(dict(z))
    else:
        tracks = track_video(video, config=PreprocessConfig(max_untracked_fraction=MAX_UNTRACKED))
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **tracks.arrays())
    return CorpusClip(video.stem, speaker_of(video.stem), tracks)


def iter_corpus(
    root: str | os.PathLike[str], split: str, cache: Path | None = None
) -> Iterator[CorpusClip | tuple[str, str]]:
    """Each clip of ``split``; a clip that cannot be tracked yields ``(name, reason)`` instead."""
    for video in clip_videos(root, split):
        try:
            yield load_clip(video, cache)
        except PreprocessError as exc:
            yield video.stem, str(exc)
