"""Blinks on a driving track: the synthesised ones and the ones a user inserts (docs/edit.md).

Both are per-frame *eye-opening factors* (1 = the eyes as they are, 0 = closed): every lid
point's offset from its eye's corner line is multiplied by the factor, as α1 and α2 do for
α ≤ 1 (:mod:`talkstudio.core.edit`).

- **Synthesised blinks** (:func:`blink_factors`): when the subject's reference track blinks too
  rarely, the driving track gets blinks with the 9-frame lid profile of the authors' code, every
  50–80 frames by default, or at a rate the user chooses (blinks per minute).
- **Inserted blinks** (:func:`inserted_openings`): a keyframe of the ``blink`` channel at frame
  ``f`` with depth ``d`` closes both eyes over ~0.24 s around ``f``, fully closed (for d = 1) at
  ``f`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .timing import FPS

BLINK_PROFILE = np.array([0.6, 0.4, 0.3, 0.1, 0.0, 0.1, 0.3, 0.4, 0.6])
"""Eye opening over the 9 frames of a synthesised blink."""
BLINK_GAP = (50, 80)
"""Frames between synthesised blinks (drawn uniformly) at the automatic rate."""
BLINK_RATE_MAX = 60.0
"""Highest synthesised blink rate a user may set (blinks per minute)."""
INSERTED_CLOSURE = {-2: 0.4, -1: 0.85, 0: 1.0, 1: 0.8, 2: 0.5, 3: 0.2}
"""How far an inserted blink of depth 1 closes the eyes, by frame offset from its keyframe:
6 frames (0.24 s at 25 fps), closing faster than it opens."""


def check_blink_rate(rate: float | None) -> float | None:
    """``rate`` (blinks per minute, None = automatic) when valid; a clear EditError otherwise."""
    if rate is None:
        return None
    from .edit import EditError

    r = float(rate)
    if not np.isfinite(r) or not 0.0 <= r <= BLINK_RATE_MAX:
        raise EditError(
            f"the blink rate must be between 0 and {BLINK_RATE_MAX:g} blinks per minute "
            f"(0: no synthesised blinks), or automatic; got {rate!r}"
        )
    return r


def blink_factors(count: int, seed: int = 0, rate: float | None = None) -> np.ndarray:
    """Eye-opening factors [count] with synthesised blinks (1 where the eyes are open).

    ``rate`` None: the authors' schedule (a blink every 50–80 frames after the previous one).
    Otherwise about ``rate`` blinks per minute, each gap drawn within ±23 % of the mean; 0 gives
    no blink. The same ``seed`` and ``rate`` always give the same blinks.
    """
    out = np.ones(count)
    if rate is not None and rate <= 0:
        return out
    if rate is None:
        lo, hi = BLINK_GAP
    else:
        period = 60.0 * FPS / rate  # frames from one blink's start to the next
        lo = max(1, round(0.77 * period) - len(BLINK_PROFILE))
        hi = max(lo + 1, round(1.23 * period) - len(BLINK_PROFILE))
    rng = np.random.default_rng(seed)
    t = int(rng.integers(10, max(lo, 11)))
    while t + len(BLINK_PROFILE) <= count:
        out[t : t + len(BLINK_PROFILE)] = BLINK_PROFILE
        t += len(BLINK_PROFILE) + int(rng.integers(lo, hi))
    return out


def inserted_openings(keys: Mapping[int, float], count: int) -> np.ndarray:
    """Eye-opening factors [count] of the blinks inserted at ``keys`` ({frame: depth in [0, 1]}).

    Where two blinks overlap the more closed one counts.
    """
    out = np.ones(count)
    for frame, depth in keys.items():
        for offset, closure in INSERTED_CLOSURE.items():
            f = frame + offset
            if 0 <= f < count:
                out[f] = min(out[f], 1.0 - depth * closure)
    return out


@dataclass(frozen=True)
class BlinkSchedule:
    """How a driving track synthesises blinks: ``auto`` whether it does at the automatic rate
    (the reference blinks too rarely, or the head is held still), ``seed`` for where they fall."""

    auto: bool
    seed: int = 0

    def factors(self, count: int, rate: float | None = None) -> np.ndarray:
        """Eye-opening factors [count] of the synthesised blinks at ``rate`` blinks per minute
        (None: the automatic rate, which is none at all when ``auto`` is False)."""
        if rate is None and not self.auto:
            return np.ones(count)
        return blink_factors(count, self.seed, rate)
