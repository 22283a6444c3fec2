"""A min/max envelope of long audio, decimated to the pixels on screen.

:class:`EnvelopePyramid` precomputes per-block minima and maxima at block sizes 16, 64, 256, …
samples once. For a visible time span and a pixel width it picks the coarsest level whose blocks
are still no wider than a pixel and reduces at most four blocks per pixel, so the cost of a
redraw depends on the pixel width, not on the length of the audio: ten minutes at 16 kHz draws
as fast as ten seconds. Zoomed in below about two samples per pixel it returns the samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASE_BLOCK = 16
"""Samples per block of the finest level."""
LEVEL_FACTOR = 4
"""Each level's block is this many blocks of the level below."""


@dataclass
class Envelope:
    """What to draw for one view: ``pairs`` vertical min→max segments, else a sample line."""

    x: np.ndarray  # [2W] seconds (pairs) or [N] seconds (line)
    y: np.ndarray  # [2W] alternating min, max (pairs) or [N] samples (line)
    pairs: bool


class EnvelopePyramid:
    """Block minima and maxima of ``samples`` [S] at ``rate`` Hz, at several block sizes."""

    def __init__(self, samples: np.ndarray, rate: int) -> None:
        self.samples = np.asarray(samples, dtype=np.float32)  # [S]
        self.rate = int(rate)
        self.levels: list[tuple[int, np.ndarray, np.ndarray]] = []  # (block, mins, maxs)
        if len(self.samples) == 0:
            return
        mins, maxs = _reduce(self.samples, self.samples, BASE_BLOCK)
        block = BASE_BLOCK
        self.levels.append((block, mins, maxs))
        while len(mins) > LEVEL_FACTOR:
            mins, maxs = _reduce(mins, maxs, LEVEL_FACTOR)
            block *= LEVEL_FACTOR
            self.levels.append((block, mins, maxs))

    @property
    def peak(self) -> float:
        """Largest absolute sample value."""
        if not self.levels:
            return 0.0
        _, mins, maxs = self.levels[-1]
        return float(max(-mins.min(), maxs.max()))

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def envelope(self, t0: float, t1: float, width: int) -> Envelope:
        """The envelope of [t0, t1) seconds drawn ``width`` pixels wide."""
        n = len(self.samples)
        s0 = int(np.clip(np.floor(t0 * self.rate), 0, n))
        s1 = int(np.clip(np.ceil(t1 * self.rate), 0, n))
        width = max(int(width), 1)
        if s1 <= s0:
            return Envelope(np.zeros(0), np.zeros(0), pairs=False)
        per_pixel = (s1 - s0) / width
        if per_pixel <= 2.0:
            # Zoomed in: one more sample on each side so the line reaches the view's edges.
            a, b = max(s0 - 1, 0), min(s1 + 1, n)
            return Envelope(np.arange(a, b) / self.rate, self.samples[a:b], pairs=False)
        block, mins, maxs = 1, self.samples, self.samples
        for lv_block, lv_mins, lv_maxs in self.levels:
            if lv_block > per_pixel:
                break
            block, mins, maxs = lv_block, lv_mins, lv_maxs
        b0, b1 = s0 // block, -(-s1 // block)
        mins, maxs = mins[b0:b1], maxs[b0:b1]
        bins = min(width, len(mins))
        edges = (np.arange(bins) * len(mins)) // bins  # [bins] first block of each pixel
        lo = np.minimum.reduceat(mins, edges)
        hi = np.maximum.reduceat(maxs, edges)
        ends = np.append(edges[1:], len(mins))
        centre = (b0 + (edges + ends) / 2.0) * block / self.rate  # [bins] seconds
        x = np.repeat(centre, 2)
        y = np.stack([lo, hi], axis=1).ravel()
        return Envelope(x, y, pairs=True)


def _reduce(mins: np.ndarray, maxs: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Min of ``mins`` and max of ``maxs`` over consecutive groups of ``factor`` (last partial)."""
    count = -(-len(mins) // factor)
    pad = count * factor - len(mins)
    if pad:
        mins = np.concatenate([mins, np.full(pad, mins[-1], mins.dtype)])
        maxs = np.concatenate([maxs, np.full(pad, maxs[-1], maxs.dtype)])
    lo_groups = mins.reshape(count, factor)
    hi_groups = maxs.reshape(count, factor)
    # Column by column in place: several times faster than a min over a short last axis.
    lo = lo_groups[:, 0].copy()
    hi = hi_groups[:, 0].copy()
    for k in range(1, factor):
        np.minimum(lo, lo_groups[:, k], out=lo)
        np.maximum(hi, hi_groups[:, k], out=hi)
    return lo, hi
