"""Speech-like audio at 16 kHz: phrases of syllables with a glottal source through formants.

Voiced sounds are a Rosenberg glottal pulse train (its derivative, as radiated from the lips)
following a pitch contour that falls over each phrase and rises on stressed syllables, filtered by
three resonators whose frequencies glide between vowel targets. Consonants are fricative noise
(band-passed per place), plosive bursts after a short closure, or nasal murmurs. Phrases are
separated by pauses, and the room adds a faint noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..timing import SAMPLE_RATE
from .config import STREAM_SPEECH, SynthConfig

# Vowel targets: F1, F2, F3 (Hz, adult male) and how far the jaw opens (0-1).
VOWELS = {
    "a": (730.0, 1200.0, 2500.0, 1.0),
    "e": (520.0, 1800.0, 2500.0, 0.6),
    "i": (300.0, 2250.0, 2950.0, 0.3),
    "o": (520.0, 900.0, 2450.0, 0.75),
    "u": (330.0, 850.0, 2300.0, 0.35),
    "@": (520.0, 1450.0, 2500.0, 0.55),
}
BANDWIDTHS = (80.0, 100.0, 140.0)
"""Formant bandwidths in Hz."""
# Noise bands (Hz) of the unvoiced consonants.
FRICATIVES = {"s": (4000.0, 7400.0), "sh": (2000.0, 5000.0), "f": (1200.0, 7400.0)}
BLOCK = 80
"""Samples per block over which the formant filters keep their coefficients (5 ms)."""


@dataclass
class Speech:
    """A synthesised utterance and what it was made of, per sample."""

    audio: np.ndarray  # [S] float32 in [-1, 1]
    openness: np.ndarray  # [S] articulatory jaw openness target in [0, 1] (0 in pauses)
    voiced: np.ndarray  # [S] amplitude of the voiced source (0 where unvoiced or silent)


@dataclass
class _Tracks:
    """Per-sample control tracks built from the syllable plan."""

    amp_v: np.ndarray
    amp_n: dict[str, np.ndarray]
    formants: np.ndarray  # [S, 3] targets (NaN where no vowel sets them)
    openness: np.ndarray
    f0: np.ndarray


def _ramp(n: int, attack: int, release: int) -> np.ndarray:
    """A raised-cosine envelope [n] with the given attack and release lengths."""
    env = np.ones(n)
    a, r = min(attack, n // 2), min(release, n // 2)
    if a:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if r:
        env[n - r :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, r + 1) / r)
    return env


def _plan(rng: np.random.Generator, num_samples: int, f0_base: float) -> _Tracks:
    """Lay out phrases, syllables and pauses over ``num_samples`` samples."""
    sr = SAMPLE_RATE
    n = num_samples + sr  # room for the last syllable to finish; cropped below
    t = _Tracks(
        np.zeros(n),
        {k: np.zeros(n) for k in (*FRICATIVES, "burst")},
        np.full((n, 3), np.nan),
        np.zeros(n),
        np.full(n, f0_base),
    )
    pos = int(sr * rng.uniform(0.25, 0.5))
    names = list(VOWELS)
    while pos < num_samples - int(0.3 * sr):
        end = min(num_samples - int(0.2 * sr), pos + int(sr * rng.uniform(1.0, 3.2)))
        start = pos
        while pos < end - int(0.12 * sr):
            kind = rng.choice(["none", "fric", "plosive", "nasal"], p=[0.3, 0.3, 0.25, 0.15])
            if kind == "fric":
                name = str(rng.choice(list(FRICATIVES)))
                m = int(sr * rng.uniform(0.05, 0.12))
                t.amp_n[name][pos : pos + m] = rng.uniform(0.25, 0.5) * _ramp(m, 160, 240)
                t.openness[pos : pos + m] = 0.15
                pos += m
            elif kind == "plosive":
                pos += int(sr * rng.uniform(0.03, 0.06))  # closure: silence, lips shut
                m = int(sr * rng.uniform(0.015, 0.03))
                t.amp_n["burst"][pos : pos + m] = 0.7 * np.exp(-np.arange(m) / (0.006 * sr))
                pos += m
            elif kind == "nasal":
                m = int(sr * rng.uniform(0.05, 0.09))
                t.amp_v[pos : pos + m] = 0.22 * _ramp(m, 160, 160)
                t.formants[pos : pos + m] = (260.0, 1150.0, 2300.0)
                t.openness[pos : pos + m] = 0.05
                pos += m
            m = int(sr * rng.uniform(0.09, 0.22))
            vowel = VOWELS[names[int(rng.integers(len(names)))]]
            stress = rng.uniform(0.45, 1.0)
            t.amp_v[pos : pos + m] = np.maximum(t.amp_v[pos : pos + m], stress * _ramp(m, 400, 560))
            t.formants[pos : pos + m] = vowel[:3]
            t.openness[pos : pos + m] = vowel[3] * (0.6 + 0.4 * stress)
            t.f0[pos : pos + m] *= 1.0 + 0.12 * (stress - 0.45)  # pitch accent
            pos += m
        # declination over the phrase
        k = np.arange(pos - start) / max(1, pos - start)
        t.f0[start:pos] *= 1.1 - 0.22 * k
        pos += int(sr * rng.uniform(0.15, 0.7))
    keep = slice(0, num_samples)
    return _Tracks(
        t.amp_v[keep],
        {k: v[keep] for k, v in t.amp_n.items()},
        t.formants[keep],
        t.openness[keep],
        t.f0[keep],
    )


def _glides(formants: np.ndarray) -> np.ndarray:
    """Fill the NaN gaps of ``formants`` [S, 3] by linear interpolation and smooth (30 ms)."""
    out = np.empty_like(formants)
    idx = np.arange(len(formants))
    for k in range(3):
        have = ~np.isnan(formants[:, k])
        default = VOWELS["@"][k]
        out[:, k] = np.interp(idx, idx[have], formants[have, k]) if have.any() else default
    win = np.hanning(int(0.03 * SAMPLE_RATE))
    win /= win.sum()
    return np.stack([np.convolve(out[:, k], win, mode="same") for k in range(3)], -1)


def _resonate(x: np.ndarray, freq: np.ndarray, bw: float) -> np.ndarray:
    """Two-pole resonator (unity gain at 0 Hz) with a frequency [S] held per 5 ms block."""
    sr = SAMPLE_RATE
    y = np.empty_like(x)
    zi = np.zeros(2)
    c = -np.exp(-2.0 * np.pi * bw / sr)
    for start in range(0, len(x), BLOCK):
        f = freq[start]
        b_ = 2.0 * np.exp(-np.pi * bw / sr) * np.cos(2.0 * np.pi * f / sr)
        a_ = 1.0 - b_ - c
        y[start : start + BLOCK], zi = signal.lfilter(
            [a_], [1.0, -b_, -c], x[start : start + BLOCK], zi=zi
        )
    return y


def synthesize_speech(cfg: SynthConfig, num_samples: int) -> Speech:
    """Speech-like audio [num_samples] for ``cfg``'s seed (voice, words, timing)."""
    rng = cfg.rng(STREAM_SPEECH)
    sr = SAMPLE_RATE
    female = bool(rng.integers(2))
    f0_base = rng.uniform(175.0, 225.0) if female else rng.uniform(95.0, 135.0)
    scale = 1.15 if female else 1.0
    t = _plan(rng, num_samples, f0_base)
    knots = np.arange(0, num_samples + 800, 800)
    wobble = np.interp(np.arange(num_samples), knots, rng.normal(0.0, 0.015, len(knots)))
    f0 = (
        t.f0
        * (1.0 + wobble)
        * (1.0 + 0.004 * np.sin(2 * np.pi * 5.5 * np.arange(num_samples) / sr))
    )
    phase = np.cumsum(f0 / sr)
    frac = phase % 1.0
    open_q, close_q = 0.4, 0.16  # Rosenberg pulse: opening and closing fractions of a period
    flow = np.where(
        frac < open_q,
        0.5 - 0.5 * np.cos(np.pi * frac / open_q),
        np.where(frac < open_q + close_q, np.cos(0.5 * np.pi * (frac - open_q) / close_q), 0.0),
    )
    source = np.diff(flow, prepend=0.0) * t.amp_v
    source += 0.02 * rng.standard_normal(num_samples) * t.amp_v  # breathiness
    formants = _glides(t.formants) * scale
    voiced = source
    for k in range(3):
        voiced = _resonate(voiced, formants[:, k], BANDWIDTHS[k])
    voiced /= np.max(np.abs(voiced)) + 1e-9
    noise = rng.standard_normal(num_samples)
    unvoiced = np.zeros(num_samples)
    for name, (lo, hi) in FRICATIVES.items():
        sos = signal.butter(4, [lo, min(hi, 7600.0)], btype="bandpass", fs=sr, output="sos")
        gain = 0.35 if name == "f" else 1.0
        unvoiced += gain * t.amp_n[name] * signal.sosfilt(sos, noise)
    sos = signal.butter(2, [1500.0, 6000.0], btype="bandpass", fs=sr, output="sos")
    unvoiced += t.amp_n["burst"] * signal.sosfilt(sos, noise)
    audio = voiced + 0.5 * unvoiced
    audio = signal.sosfilt(signal.butter(6, 7000.0, fs=sr, output="sos"), audio)
    audio *= 0.6 / (np.max(np.abs(audio)) + 1e-9)
    audio += 10 ** (-62 / 20) * rng.standard_normal(num_samples)  # room noise floor
    return Speech(np.clip(audio, -1.0, 1.0).astype(np.float32), t.openness, t.amp_v)
