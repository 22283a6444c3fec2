"""The preview's frame cache and what to render next for playback, without Qt.

Playing a clip needs frames faster than a CPU renders them (a 256² frame costs 0.5–2 s), so the
studio renders ahead of the playhead into a :class:`FrameCache` and plays from it, as video
editors do (``docs/design.md``, "Playback"):

- every entry is one frame at one size rendered with one
  :data:`~talkstudio.core.edit.FrameEdit` (the three α, brows, blinks, head motion); an entry
  counts only while the edit state still gives that frame that edit (:meth:`FrameCache.get`
  checks, and :meth:`FrameCache.invalidate` drops the rest after an edit), so a keyframe change
  of any channel never shows a stale frame;
- the cache holds at most ``budget_bytes`` of pixels; when full it drops the entries farthest
  from the playhead (those played last, or never);
- *proxies* are small renders (``proxy_size``, a quarter of the side: ~1/16 of the cost) that
  keep the picture moving while the full-size frames are not there yet.

:func:`plan_next` says which frame to render next and at which size: while playing without
enough cached frames ahead it *leapfrogs*, rendering a proxy of the frame the playhead will
reach when the render is done, so the preview changes several times a second however far
behind the full renders are; with a run of full frames ahead it extends that run; when idle it
fills the frames ahead with proxies first and refines them to full size after; a requested
range (:attr:`PlanInput.range`) is rendered at full size first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .edit import FrameEdit, frame_edit

Alphas = FrameEdit
"""What a cached frame was rendered with: its whole frame edit, not only its α."""
AlphasAt = Callable[[int], Alphas]
"""The frame edit of a frame under the current edits, rounded as the renders are asked for."""

DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024
"""Pixels the cache may hold: ~2700 frames at 256², ~680 at 512² (27 s at 25 fps)."""


def proxy_size(size: int) -> int:
    """Side of the low-resolution proxy renders for previews of side ``size`` (≥ 16)."""
    if size < 1:
        raise ValueError(f"a preview size must be a positive number of pixels; got {size}")
    return max(16, size // 4)


def round_alphas(values: object) -> Alphas:
    """A frame edit (seven values, or the three α alone) rounded to 4 decimals, as render
    requests carry it (:func:`talkstudio.core.edit.frame_edit`)."""
    return frame_edit(values)


@dataclass(frozen=True)
class CachedFrame:
    """One rendered frame in the cache."""

    frame: int
    size: int
    alphas: Alphas
    rgb: np.ndarray  # [size, size, 3] uint8
    ms: float  # what it cost to render

    @property
    def nbytes(self) -> int:
        return int(self.rgb.nbytes)


class FrameCache:
    """Rendered frames by (frame, size), valid while their edit is the frame's current edit."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if budget_bytes <= 0:
            raise ValueError(f"the frame cache needs a positive byte budget; got {budget_bytes}")
        self.budget_bytes = int(budget_bytes)
        self._entries: dict[tuple[int, int], CachedFrame] = {}
        self._bytes = 0
        self.evicted = 0
        """Entries dropped to stay within the budget (not counting invalidated ones)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[CachedFrame]:
        return iter(list(self._entries.values()))

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def put(self, entry: CachedFrame, playhead: int = 0) -> None:
        """Keep ``entry`` (replacing the frame's entry at that size); over budget, drop the
        entries farthest from ``playhead`` (never ``entry`` itself)."""
        rgb = entry.rgb
        if rgb.dtype != np.uint8 or rgb.shape != (entry.size, entry.size, 3):
            raise ValueError(
                f"a cached frame is RGB uint8 [{entry.size}, {entry.size}, 3]; "
                f"got {rgb.dtype} {rgb.shape}"
            )
        key = (entry.frame, entry.size)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._entries[key] = entry
        self._bytes += entry.nbytes
        if self._bytes > self.budget_bytes:
            far = sorted(self._entries, key=lambda k: abs(k[0] - playhead), reverse=True)
            for k in far:
                if self._bytes <= self.budget_bytes:
                    break
                if k == key:
                    continue
                self._bytes -= self._entries.pop(k).nbytes
                self.evicted += 1

    def get(self, frame: int, size: int, alphas: Alphas) -> CachedFrame | None:
        """The entry of ``frame`` at ``size`` when it was rendered with ``alphas``."""
        e = self._entries.get((frame, size))
        return e if e is not None and e.alphas == alphas else None

    def has(self, frame: int, size: int, alphas_at: AlphasAt) -> bool:
        return self.get(frame, size, alphas_at(frame)) is not None

    def invalidate(self, alphas_at: AlphasAt) -> int:
        """Drop the entries whose α are no longer their frame's; returns how many."""
        stale = [k for k, e in self._entries.items() if e.alphas != alphas_at(e.frame)]
        for k in stale:
            self._bytes -= self._entries.pop(k).nbytes
        return len(stale)

    def drop_beyond(self, num_frames: int) -> None:
        """Forget frames at or past ``num_frames`` (the clip got shorter)."""
        for k in [k for k in self._entries if k[0] >= num_frames]:
            self._bytes -= self._entries.pop(k).nbytes

    def best_at_or_before(
        self, frame: int, sizes: tuple[int, ...], alphas_at: AlphasAt, oldest: int
    ) -> CachedFrame | None:
        """The newest valid entry of a frame in [``oldest``, ``frame``], the first of ``sizes``
        preferred at the same frame (what to show at playhead ``frame``)."""
        for f in range(frame, max(oldest, 0) - 1, -1):
            a = alphas_at(f)
            for s in sizes:
                e = self.get(f, s, a)
                if e is not None:
                    return e
        return None

    def ranges(self, size: int, alphas_at: AlphasAt) -> list[tuple[int, int]]:
        """Runs of consecutive frames with a valid entry at ``size``, as [start, end) pairs."""
        frames = sorted(
            f for (f, s), e in self._entries.items() if s == size and e.alphas == alphas_at(f)
        )
        runs: list[tuple[int, int]] = []
        for f in frames:
            if runs and runs[-1][1] == f:
                runs[-1] = (runs[-1][0], f + 1)
            else:
                runs.append((f, f + 1))
        return runs


@dataclass(frozen=True)
class PlanInput:
    """What :func:`plan_next` decides from."""

    playhead: int
    num_frames: int
    size: int  # full preview size
    playing: bool
    full_ms: float  # expected cost of one full-size render
    proxy_ms: float  # expected cost of one proxy render
    fps: int = 25
    horizon: int = 50
    """Frames ahead of the playhead that are rendered when idle (2 s)."""
    range: tuple[int, int] | None = None
    """[start, end) the user asked to render at full size for smooth playback."""
    loop: bool = False


@dataclass(frozen=True)
class Job:
    """A frame to render for the cache."""

    frame: int
    size: int


def _lead(ms: float, fps: int) -> int:
    """Frames the playhead moves while a render of ``ms`` runs, plus one for the hand-over."""
    return int(np.ceil(ms * fps / 1000.0)) + 1


def plan_next(p: PlanInput, cache: FrameCache, alphas_at: AlphasAt) -> Job | None:
    """The next frame to render into ``cache``, or None when nothing is left to do."""
    n = p.num_frames
    if n <= 0:
        return None
    small = proxy_size(p.size)
    head = int(np.clip(p.playhead, 0, n - 1))

    def missing(f: int, size: int) -> bool:
        return not cache.has(f, size, alphas_at)

    def ahead(count: int) -> Iterator[int]:
        for i in range(count):
            f = head + i
            if f >= n:
                if not p.loop:
                    return
                f %= n
            yield f

    if p.range is not None:
        start, end = max(p.range[0], 0), min(p.range[1], n)
        if p.playing and start <= head < end:  # what is played next first
            order = [*range(head, end), *range(start, head)]
        else:
            order = list(range(start, end))
        for f in order:
            if missing(f, p.size):
                return Job(f, p.size)
    if p.playing:
        run = 0  # full frames ready from the playhead on
        for f in ahead(n):
            if missing(f, p.size):
                break
            run += 1
        if run >= _lead(p.full_ms, p.fps):
            f = head + run
            if f < n or p.loop:
                return Job(f % n, p.size)
            return None
        # Leapfrog: a proxy of the frame the playhead reaches when the render is done.
        lead = _lead(p.proxy_ms, p.fps)
        for f in ahead(lead + p.horizon):
            if (f - head) % n >= lead and missing(f, small) and missing(f, p.size):
                return Job(f, small)
        return None
    for f in ahead(p.horizon):
        if missing(f, small) and missing(f, p.size):
            return Job(f, small)
    for f in ahead(p.horizon):
        if missing(f, p.size):
            return Job(f, p.size)
    return None
