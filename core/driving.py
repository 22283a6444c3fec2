"""The full driving track: stage 1's mouth and jaw joined with the subject's own motion.

docs/design.md "Driving track": stage 1 predicts the 37 jaw and lip points only. The head
pose, the other 31 points (brows, nose, eyes) and the eye ratios come from the subject's
*reference track* — its training frames — played back and forth so the head keeps moving
naturally. When the reference blinks too rarely, blinks are synthesised with a 9-frame lid
profile every 50–80 frames (the authors' schedule). A "still head" option holds one pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .edit import TypicalOpening, apply_alphas
from .landmarks import STAGE1_POINTS
from .subject import Tracks
from .timing import FPS

BLINK_PROFILE = np.array([0.6, 0.4, 0.3, 0.1, 0.0, 0.1, 0.3, 0.4, 0.6])
"""Eye opening over the 9 frames of a synthesised blink."""
BLINK_GAP = (50, 80)
"""Frames between synthesised blinks (drawn uniformly)."""
MIN_BLINKS_PER_MINUTE = 6.0
"""Below this rate in the reference, blinks are synthesised."""


@dataclass
class DrivingTrack:
    """Everything stage 2 needs per output frame."""

    lm_world: np.ndarray  # [T, 68, 3] head frame, before user edits
    pose: np.ndarray  # [T, 4, 4] head-to-camera
    eye_ratio: np.ndarray  # [T, 2] (left, right)
    ref_index: np.ndarray  # [T] reference frame each output frame borrows from
    typical: TypicalOpening | None = None
    """The subject's typical eye and mouth opening (over its reference frames): α > 1 opens a
    closed eye or mouth by it (see docs/edit.md)."""

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])

    def edited(self, alphas: np.ndarray) -> np.ndarray:
        """Landmarks [T, 68, 3] with per-frame ``alphas`` [T, 3] applied."""
        return apply_alphas(self.lm_world, alphas, self.typical)


def pingpong_indices(count: int, length: int, start: int = 0) -> np.ndarray:
    """Indices into a sequence of ``length`` for ``count`` frames, played forward then back."""
    if length <= 0:
        raise ValueError("the reference track is empty")
    if length == 1:
        return np.zeros(count, dtype=np.int64)
    period = 2 * (length - 1)
    k = (np.arange(count) + start) % period
    return np.where(k < length, k, period - k).astype(np.int64)


def count_blinks(eye_ratio: np.ndarray, threshold: float = 0.5) -> int:
    """Number of dips of the mean eye ratio [T, 2] below ``threshold``."""
    closed = eye_ratio.mean(axis=1) < threshold
    return int(np.sum(closed[1:] & ~closed[:-1]) + (1 if len(closed) and closed[0] else 0))


def blink_factors(count: int, seed: int = 0) -> np.ndarray:
    """Eye-opening multipliers [count] with synthesised blinks (1 where the eyes are open)."""
    rng = np.random.default_rng(seed)
    out = np.ones(count)
    t = int(rng.integers(10, BLINK_GAP[0]))
    while t + len(BLINK_PROFILE) <= count:
        out[t : t + len(BLINK_PROFILE)] = BLINK_PROFILE
        t += len(BLINK_PROFILE) + int(rng.integers(*BLINK_GAP))
    return out


def build_driving_track(
    tracks: Tracks,
    reference: range,
    mouth_points: np.ndarray | None,
    count: int | None = None,
    still_head: bool = False,
    seed: int = 0,
) -> DrivingTrack:
    """Join ``mouth_points`` [T, 37, 3] (stage 1, head frame) with the reference ``tracks``.

    ``reference`` is the range of the subject's frames to borrow from (its training split).
    Without ``mouth_points`` the reference's own 37 points are used (``count`` frames), which is
    the subject replaying itself.
    """
    if mouth_points is not None:
        count = len(mouth_points)
    if count is None:
        raise ValueError("give mouth_points or a frame count")
    ref = np.asarray(reference)
    if still_head:
        idx = np.full(count, ref[0], dtype=np.int64)
    else:
        idx = ref[pingpong_indices(count, len(ref))]
    lm = tracks.lm_world[idx].astype(np.float64)  # [T, 68, 3]
    if mouth_points is not None:
        lm[:, list(STAGE1_POINTS)] = mouth_points
    pose = tracks.pose[idx].astype(np.float64)
    eye_ratio = tracks.eye_ratio[idx].astype(np.float64)
    if still_head:
        # A still head keeps the reference's eyes open; blinks below keep it alive.
        eye_ratio = np.ones_like(eye_ratio) * np.median(tracks.eye_ratio[ref], axis=0)
    ref_minutes = len(ref) / FPS / 60.0
    rate = count_blinks(tracks.eye_ratio[ref]) / max(ref_minutes, 1e-9)
    if still_head or rate < MIN_BLINKS_PER_MINUTE:
        factors = blink_factors(count, seed)
        alphas = np.stack([factors, factors, np.ones(count)], axis=1)
        lm = apply_alphas(lm, alphas)
        eye_ratio = eye_ratio * factors[:, None]
    return DrivingTrack(
        lm_world=lm.astype(np.float32),
        pose=pose.astype(np.float32),
        eye_ratio=eye_ratio.astype(np.float32),
        ref_index=idx,
        typical=TypicalOpening.of_track(tracks.lm_world[ref]),
    )
