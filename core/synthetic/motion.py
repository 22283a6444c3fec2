"""Time series of the synthetic person, one value per 25 fps frame: mouth, eyes, head pose.

* The mouth follows the speech's loudness envelope (frame RMS in dB, attack faster than release,
  lightly smoothed), shaped by how open the spoken vowel is.
* The eyes blink at random times with a 9-frame lid profile and otherwise stay nearly open.
* The head turns a few degrees about the neck and sways slightly, with small nods on loud
  syllables; the torso follows part of the sway.
"""

from __future__ import annotations

import numpy as np

from ..geometry import rotation_from_euler
from ..timing import FPS, SAMPLES_PER_FRAME, pad_to_frames
from .config import STREAM_BLINK, STREAM_MOTION, SynthConfig
from .speech import Speech

BLINK_PROFILE = np.array([0.85, 0.55, 0.25, 0.05, 0.0, 0.1, 0.35, 0.65, 0.9])
"""Eye opening over the 9 frames of a blink (closing faster than opening)."""
NECK_PIVOT = np.array([0.0, 0.95, 0.85])
"""The point (internal head frame, head units) the head turns about: the top of the neck."""


def frame_envelope(audio: np.ndarray) -> np.ndarray:
    """RMS [T] of the audio [S] in every frame's 640 samples (the last one zero-padded)."""
    frames = pad_to_frames(np.asarray(audio, dtype=np.float64)).reshape(-1, SAMPLES_PER_FRAME)
    return np.sqrt(np.mean(frames**2, axis=1))


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of ``x`` [T] along time, ``sigma`` in frames (edges held)."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def mouth_track(speech: Speech, mouth_max: float) -> np.ndarray:
    """Jaw drop [T] (head units) driven by the speech's envelope.

    Loudness in dB is mapped to [0, 1] over the 30 dB below the loud frames, passed through an
    attack/release follower (the jaw opens faster than it closes), shaped by the vowel's
    openness and smoothed with a Gaussian of 0.8 frames.
    """
    env = frame_envelope(speech.audio)
    db = 20.0 * np.log10(env + 1e-9)
    loud = np.percentile(db, 95)
    level = np.clip((db - (loud - 30.0)) / 30.0, 0.0, 1.0)
    follow = np.zeros_like(level)
    prev = 0.0
    for i, v in enumerate(level):
        prev += (0.7 if v > prev else 0.4) * (v - prev)
        follow[i] = prev
    art = pad_to_frames(speech.openness).reshape(-1, SAMPLES_PER_FRAME).mean(axis=1)
    shape = 0.45 + 0.55 * _smooth(art, 1.0)
    return mouth_max * np.clip(_smooth(follow**1.2 * shape, 0.8), 0.0, 1.0)


def eye_track(cfg: SynthConfig, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Eye openings [T, 2] (left, right) and the blink start frames [B]."""
    rng = cfg.rng(STREAM_BLINK)
    lo, hi = cfg.blink_interval
    base = 1.0 - 0.03 * np.abs(_smooth(rng.standard_normal(frames + 2)[:frames], 6.0)) * 3.0
    eyes = np.clip(base, 0.9, 1.0)
    starts = []
    t = rng.uniform(0.5, max(0.6, lo))
    while int(t * FPS) < frames:
        starts.append(int(t * FPS))
        t += rng.uniform(lo, hi)
    for s in starts:
        seg = slice(s, min(frames, s + len(BLINK_PROFILE)))
        eyes[seg] = np.minimum(eyes[seg], BLINK_PROFILE[: seg.stop - seg.start])
    return np.stack([eyes, eyes], axis=1), np.asarray(starts, dtype=np.int64)


def _wander(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """A smooth random signal [T]: three sinusoids of 0.05-0.45 Hz, peak about ``amplitude``."""
    t = np.arange(frames) / FPS
    out = np.zeros(frames)
    for _ in range(3):
        f = rng.uniform(0.05, 0.45)
        out += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 2.25


def head_motion(
    cfg: SynthConfig, base: np.ndarray, mouth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Head poses [T, 4, 4] (internal head frame to camera) and torso shifts [T, 3].

    ``base`` [4, 4] is the rest pose; ``mouth`` [T] adds small nods while speaking.
    """
    rng = cfg.rng(STREAM_MOTION)
    frames = len(mouth)
    s = cfg.head_motion
    nod = np.radians(1.5) * s * _smooth(mouth / (np.max(mouth) + 1e-9), 3.0)
    pitch = _wander(rng, frames, np.radians(3.0) * s) + nod
    yaw = _wander(rng, frames, np.radians(4.0) * s)
    roll = _wander(rng, frames, np.radians(2.0) * s)
    shift = np.stack(
        [
            _wander(rng, frames, 0.05 * s),
            _wander(rng, frames, 0.03 * s),
            _wander(rng, frames, 0.08 * s),
        ],
        -1,
    )
    poses = np.repeat(base[None], frames, axis=0)
    for i in range(frames):
        rot = rotation_from_euler(pitch[i], yaw[i], roll[i])
        poses[i, :3, :3] = base[:3, :3] @ rot
        poses[i, :3, 3] = base[:3, 3] + base[:3, :3] @ (NECK_PIVOT - rot @ NECK_PIVOT) + shift[i]
    breath = 0.004 * np.sin(2 * np.pi * 0.25 * np.arange(frames) / FPS + rng.uniform(0, 6.3))
    body = 0.4 * shift
    body[:, 1] += breath
    return poses, body
