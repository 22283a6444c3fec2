"""Voice perturbations of training audio, shared by the prior's recipe and subject fine-tuning.

A copy of a clip is the same speech from another voice and microphone:

- *speed*: the audio resampled by ``20 / k`` and played at 16 kHz, which scales pitch and every
  formant (the vocal tract's length) and the tempo alike; the landmark track is resampled in
  time to match, so the copy is a faster/higher or slower/deeper speaker saying the same thing;
- *channel*: a random first-order tilt filter (brighter or duller microphones);
- *noise*: white noise at a random SNR below the clip's speech level.

The prior trains on copies of every corpus clip (:mod:`.prior_train`); a subject's fine-tune on
copies of the subject's own training audio (``Stage1Config.voice_copies``), so the little of one
voice it hears does not teach the audio side that voice.
"""

from __future__ import annotations

import numpy as np

from ..timing import SAMPLES_PER_FRAME

SPEED_DIVISORS = tuple(range(17, 24))
"""k of the speed factors 20 / k (20/17 ≈ 1.18 down to 20/23 ≈ 0.87)."""
SPEEDS = tuple(20 / k for k in SPEED_DIVISORS)
TILT = (-0.5, 0.9)
"""Range of the first-order filter coefficient c in y = x - c x[-1]."""
SNR_DB = (10.0, 40.0)
"""Range of the noise's level below the speech level, dB."""


def speed_copy(
    audio: np.ndarray, track: np.ndarray, keep: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audio played ``20 / k`` times faster, with the per-frame ``track`` [T, ...] resampled
    linearly to match and ``keep`` [T] (bool or weights) taken as the smaller of its two
    neighbours, so a frame of the copy counts only where both frames it comes from do."""
    from scipy.signal import resample_poly

    s = 20 / k
    fast = resample_poly(audio.astype(np.float64), k, 20).astype(np.float32)
    frames = max(1, len(fast) // SAMPLES_PER_FRAME)
    fast = fast[: frames * SAMPLES_PER_FRAME]
    pos = np.minimum(np.arange(frames) * s, len(track) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(track) - 1)
    w = (pos - lo).reshape(-1, *([1] * (track.ndim - 1)))
    out = (1 - w) * track[lo] + w * track[hi]
    return fast, out.astype(np.float32), np.minimum(keep[lo], keep[hi])


def perturb_channel(
    audio: np.ndarray,
    rng: np.random.Generator,
    tilt: tuple[float, float] = TILT,
    snr_db: tuple[float, float] = SNR_DB,
) -> np.ndarray:
    """A random tilt filter and white noise at a random SNR below the speech level (the 90th
    percentile of the 40 ms frames' RMS); scaled down only if it would clip."""
    from scipy.signal import lfilter

    c = rng.uniform(*tilt)
    y = lfilter([1.0, -c], [1.0], audio.astype(np.float64))
    n = max(1, len(y) // SAMPLES_PER_FRAME)
    rms = np.sqrt(np.mean(y[: n * SAMPLES_PER_FRAME].reshape(n, -1) ** 2, axis=1))
    level = float(np.percentile(rms, 90))
    snr = rng.uniform(*snr_db)
    y = y + rng.standard_normal(len(y)) * level * 10 ** (-snr / 20)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return (y / max(peak, 1.0)).astype(np.float32)


def voice_copies(
    audio: np.ndarray,
    track: np.ndarray,
    keep: np.ndarray,
    count: int,
    rng: np.random.Generator,
    tilt: tuple[float, float] = TILT,
    snr_db: tuple[float, float] = SNR_DB,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``count`` perturbed copies (audio, track, keep) of a clip: a random speed, then a random
    channel and noise each."""
    out = []
    for _ in range(count):
        k = int(rng.integers(SPEED_DIVISORS[0], SPEED_DIVISORS[-1] + 1))
        a, t, kp = speed_copy(audio, track, keep, k)
        out.append((perturb_channel(a, rng, tilt, snr_db), t, kp))
    return out
