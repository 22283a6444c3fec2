"""How far a subject's sound is off its picture, and the sound moved back in line.

Footage from the web often carries its audio a few frames early or late against the picture
(docs/prior.md "Audio-picture offset"): a stage 1 trained on such a pair learns the offset and
moves every driven mouth that much ahead of or behind the voice that drives it. The prior's
linear part (:mod:`.linear_prior`) predicts the mouth from the phone posteriors of the sound,
having heard 26 speakers and none of the subject; the lag at which its predicted opening best
follows the tracked one is the offset. Stage-1 training measures it on the subject's training
frames and, when it is clear, learns from the sound moved by that much; the model records it
(``sync_offset``) so that scoring against the subject's own picture moves its sound the same way.

Offsets are in video frames (40 ms), positive when the sound is late: the mouth the picture
shows at frame ``t`` is said at ``t + offset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CheckpointError
from ..landmarks import STAGE1_POINTS, mouth_opening
from ..timing import SAMPLE_RATE, SAMPLES_PER_FRAME
from .linear_prior import LinearPrior
from .metrics import to68
from .prior import SpeakerNorm

if TYPE_CHECKING:
    from ..subject import Subject

SEARCH = 5
"""Lags searched either side of 0, in frames (±200 ms)."""
MIN_R = 0.2
"""The best lag's correlation below which the measurement is not trusted (no shift)."""
MIN_SHIFT = 0.5
"""Offsets smaller than this many frames (20 ms) are left alone."""


@dataclass(frozen=True)
class SyncOffset:
    """A measured offset: ``offset`` (frames, 0 when not applied), the raw estimate, the
    correlation at lag 0 and at the best lag, and why it was or was not applied."""

    offset: float
    estimate: float
    r_zero: float
    r_best: float
    reason: str

    @property
    def milliseconds(self) -> float:
        return self.offset * 1000.0 * SAMPLES_PER_FRAME / SAMPLE_RATE

    def as_dict(self) -> dict[str, float | str | None]:
        """For a checkpoint's JSON (correlations that were not measured: None)."""

        def r(x: float) -> float | None:
            return round(x, 4) if np.isfinite(x) else None

        return {
            "offset_frames": round(self.offset, 3),
            "estimate_frames": round(self.estimate, 3),
            "r_lag0": r(self.r_zero),
            "r_best": r(self.r_best),
            "reason": self.reason,
        }

    def message(self) -> str:
        if self.offset == 0:
            return f"sound and picture in line ({self.reason})"
        side = "late" if self.offset > 0 else "early"
        return (
            f"the footage's sound is {abs(self.milliseconds):.0f} ms {side} against its picture "
            f"(mouth-opening r {self.r_zero:.2f} → {self.r_best:.2f}): training on the sound "
            "moved back in line"
        )


NOT_MEASURED = SyncOffset(0.0, 0.0, float("nan"), float("nan"), "not measured")


def _lagged_r(pred: np.ndarray, true: np.ndarray, keep: np.ndarray, lag: int) -> float:
    """r of ``pred[t + lag]`` against ``true[t]`` over the frames kept in both (lagged before
    the untracked frames are dropped, so a gap does not shift the pairs)."""
    from .prior_train import pearson  # it imports training, which imports this module

    n = len(true)
    a = pred[max(0, lag) : n + min(0, lag)]
    b = true[max(0, -lag) : n + min(0, -lag)]
    k = keep[max(0, -lag) : n + min(0, -lag)] & keep[max(0, lag) : n + min(0, lag)]
    return pearson(a[k], b[k])


def measure_offset(
    audio_16k: np.ndarray,
    lm_world: np.ndarray,
    tracked: np.ndarray,
    linear: LinearPrior,
    search: int = SEARCH,
) -> SyncOffset:
    """The offset of ``audio_16k`` against the tracked ``lm_world`` [T, 68, 3] (head frame;
    ``tracked`` [T] marks the frames to use): the lag within ±``search`` frames at which the
    linear prior's opening best follows the tracked one, refined to a fraction of a frame by a
    parabola through the best lag and its neighbours."""
    lm = np.asarray(lm_world, np.float64)
    keep = np.asarray(tracked, bool)[: len(lm)]
    if keep.sum() < 2 * search + 10:
        return SyncOffset(0.0, 0.0, float("nan"), float("nan"), "too few tracked frames")
    norm = SpeakerNorm.from_landmarks(lm[keep])
    points = lm[:, list(STAGE1_POINTS)]
    pred = norm.denormalise(linear.displacements(audio_16k, len(lm)))
    po = mouth_opening(to68(np.asarray(pred, np.float64)))
    to = mouth_opening(to68(points))
    if to[keep].std() < 1e-9 or po[keep].std() < 1e-9:
        return SyncOffset(0.0, 0.0, float("nan"), float("nan"), "the mouth does not move")
    lags = np.arange(-search, search + 1)
    rs = np.array([_lagged_r(po, to, keep, int(lag)) for lag in lags])
    i = int(np.argmax(rs))
    estimate = float(lags[i])
    if 0 < i < len(rs) - 1:
        curve = rs[i - 1] - 2 * rs[i] + rs[i + 1]
        if curve < 0:
            estimate += float(0.5 * (rs[i - 1] - rs[i + 1]) / curve)
    r_zero, r_best = float(rs[search]), float(rs[i])
    if r_best < MIN_R:
        reason = f"best r {r_best:.2f} < {MIN_R}: too weak to trust"
    elif i in (0, len(rs) - 1):
        reason = f"best at the search's edge (±{search} frames): not trusted"
    elif abs(estimate) < MIN_SHIFT:
        reason = f"{estimate:+.2f} frames, under {MIN_SHIFT}"
    else:
        return SyncOffset(estimate, estimate, r_zero, r_best, "measured")
    return SyncOffset(0.0, estimate, r_zero, r_best, reason)


def shift_audio(audio: np.ndarray, offset: float) -> np.ndarray:
    """``audio`` moved by ``offset`` frames, same length: a positive offset (late sound)
    moves it earlier, the freed end silent; a negative one later, the start silent."""
    a = np.asarray(audio, np.float32)
    n = round(float(offset) * SAMPLES_PER_FRAME)
    if n == 0:
        return a
    out = np.zeros_like(a)
    if abs(n) >= len(a):
        return out
    if n > 0:
        out[: max(0, len(a) - n)] = a[n:]
    else:
        out[-n:] = a[: len(a) + n]
    return out


def subject_offset(subject: Subject, prior_folder: str | Path | None = None) -> SyncOffset:
    """The offset of ``subject``'s training frames, measured with the linear part of the prior
    in ``prior_folder`` (default: the shipped one); :data:`NOT_MEASURED` when that prior has
    none."""
    from .data import subject_audio
    from .prior import prior_dir

    try:
        linear = LinearPrior.load(prior_folder or prior_dir())
    except CheckpointError:
        linear = None
    if linear is None:
        return SyncOffset(0.0, 0.0, float("nan"), float("nan"), "the prior has no linear part")
    n = subject.meta.train_frames
    audio = subject_audio(subject)[: n * SAMPLES_PER_FRAME]
    return measure_offset(audio, subject.tracks.lm_world[:n], subject.tracks.tracked[:n], linear)
