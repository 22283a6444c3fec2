"""Formant features per video frame from linear prediction (LPC), as the authors' code uses.

For frame ``i`` (samples ``[640 i, 640 (i + 1))``, docs/design.md "Time") the pre-emphasised, Hamming-
windowed samples give an LPC polynomial by the autocorrelation method (Levinson–Durbin); its
complex roots ``r`` give resonances at ``angle(r) * fs / 2π`` Hz with bandwidth
``-ln|r| * fs / π`` Hz. The three lowest plausible resonances are the formants F1–F3. Frames
with no speech (silence, a pure tone) have no plausible resonances; their missing formants take
neutral values, so the features are always finite.
"""

from __future__ import annotations

import numpy as np

from ..timing import SAMPLE_RATE, SAMPLES_PER_FRAME

LPC_ORDER = 18
"""2 + fs/1000 poles: the usual rule for formant tracking at 16 kHz."""
PRE_EMPHASIS = 0.97
NEUTRAL_FREQS = (500.0, 1500.0, 2500.0)
"""Formant frequencies (Hz) of a neutral vowel, used where a frame has none."""
NEUTRAL_BANDWIDTH = 400.0
MIN_FREQ, MAX_BANDWIDTH = 90.0, 400.0
NUM_FORMANT_FEATURES = 6


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """LPC coefficients ``a`` [N, order + 1] (``a[:, 0] = 1``) from autocorrelations ``r`` [N, >order].

    Frames whose energy ``r[:, 0]`` is zero get ``a = [1, 0, ...]`` (no resonances).
    """
    n = r.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    live = err > 1e-12
    err[~live] = 1.0
    for k in range(1, order + 1):
        acc = r[:, k] + np.einsum("nj,nj->n", a[:, 1:k], r[:, k - 1 : 0 : -1])
        refl = np.where(live, -acc / err, 0.0)
        refl = np.clip(refl, -0.9999, 0.9999)  # keep the filter stable under round-off
        prev = a[:, 1:k].copy()
        a[:, 1:k] = prev + refl[:, None] * prev[:, ::-1]
        a[:, k] = refl
        err = err * (1.0 - refl**2)
    return a


def formant_features(audio: np.ndarray, frames: int) -> np.ndarray:
    """F1–F3 frequencies (kHz) and bandwidths (kHz) per frame: float32 [frames, 6].

    ``audio`` is mono 16 kHz [S]; it is zero-padded (or cut) to ``frames * 640`` samples.
    """
    total = frames * SAMPLES_PER_FRAME
    x = np.zeros(total, dtype=np.float64)
    n = min(total, len(audio))
    x[:n] = audio[:n]
    x[1:] = x[1:] - PRE_EMPHASIS * x[:-1]
    seg = x.reshape(frames, SAMPLES_PER_FRAME) * np.hamming(SAMPLES_PER_FRAME)  # [T, 640]
    spec = np.fft.rfft(seg, n=2 * SAMPLES_PER_FRAME, axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : LPC_ORDER + 1]  # [T, p + 1]
    r[:, 0] *= 1.0 + 1e-9  # white-noise correction: keeps Levinson well conditioned
    a = _levinson(r, LPC_ORDER)  # [T, p + 1]

    # Roots of a(z) as eigenvalues of the companion matrices, all frames at once.
    comp = np.zeros((frames, LPC_ORDER, LPC_ORDER))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(comp)  # [T, p] complex
    freq = np.angle(roots) * SAMPLE_RATE / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-12)) * SAMPLE_RATE / np.pi
    ok = (roots.imag > 0) & (freq > MIN_FREQ) & (freq < SAMPLE_RATE / 2 - 50) & (bw < MAX_BANDWIDTH)
    freq = np.where(ok, freq, np.inf)
    order = np.argsort(freq, axis=1)[:, :3]  # [T, 3]
    f3 = np.take_along_axis(freq, order, 1)
    b3 = np.take_along_axis(bw, order, 1)
    missing = ~np.isfinite(f3)
    f3 = np.where(missing, np.asarray(NEUTRAL_FREQS)[None], f3)
    b3 = np.where(missing, NEUTRAL_BANDWIDTH, b3)
    return (np.concatenate([f3, b3], axis=1) / 1000.0).astype(np.float32)
