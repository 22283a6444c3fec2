"""Helpers of the stage-1 tests: a small subject whose mouth opening is its audio's envelope.

The subject is written directly (blank 32² frames), so it costs well under a second; the
rendered synthetic subjects of ``core.synthetic`` are used where the test needs real pictures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import write_subject

from talkstudio.core import geometry
from talkstudio.core.timing import SAMPLE_RATE, SAMPLES_PER_FRAME


def rest_face() -> np.ndarray:
    """A plausible 68-point face [68, 3] in head units (eye corners about 0.9 apart)."""
    p = np.zeros((68, 3))
    a = np.linspace(0.05 * np.pi, 0.95 * np.pi, 17)
    p[0:17] = np.stack([-0.75 * np.cos(a), 0.9 * np.sin(a) - 0.1, 0.3 * np.ones(17)], 1)
    p[17:22] = np.stack([np.linspace(-0.6, -0.15, 5), -0.55 * np.ones(5), np.zeros(5)], 1)
    p[22:27] = p[17:22][::-1] * [-1, 1, 1]
    p[27:36] = np.stack([np.zeros(9), np.linspace(-0.4, 0.05, 9), -0.2 * np.ones(9)], 1)
    t = np.linspace(0, 2 * np.pi, 7)[:-1]
    for base, side in ((36, -1), (42, 1)):
        p[base : base + 6] = np.stack(
            [side * 0.3 - 0.15 * np.cos(t), -0.3 + 0.05 * np.sin(t), np.zeros(6)], 1
        )
    t = np.linspace(0, 2 * np.pi, 13)[:-1]
    p[48:60] = np.stack([-0.25 * np.cos(t), 0.35 - 0.1 * np.sin(t), np.zeros(12)], 1)
    t = np.linspace(0, 2 * np.pi, 9)[:-1]
    p[60:68] = np.stack([-0.18 * np.cos(t), 0.35 - 0.03 * np.sin(t), np.zeros(8)], 1)
    return p


def speech_like(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voiced syllables with pauses: audio [S] float32 and its amplitude envelope [S]."""
    n = int(seconds * SAMPLE_RATE)
    env = np.zeros(n)
    i = 0
    while i < n:
        if rng.random() < 0.25:
            i += int(rng.uniform(0.1, 0.4) * SAMPLE_RATE)
            continue
        d = int(rng.uniform(0.08, 0.3) * SAMPLE_RATE)
        seg = np.sin(np.linspace(0, np.pi, d)) ** 2 * rng.uniform(0.4, 1.0)
        env[i : i + d] = seg[: max(0, min(d, n - i))]
        i += d
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(100, 180)
    carrier = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    carrier = carrier + 0.3 * rng.standard_normal(n)
    return (0.1 * env * carrier).astype(np.float32), env


def write_envelope_subject(
    root: Path, seconds: float = 8.0, seed: int = 0, audio: bool = True
) -> Path:
    """A valid subject at ``root`` whose jaw and lower lip drop with the audio envelope."""
    rng = np.random.default_rng(seed)
    samples, env = speech_like(seconds, rng)
    frames = -(-len(samples) // SAMPLES_PER_FRAME)
    padded = np.zeros(frames * SAMPLES_PER_FRAME)
    padded[: len(env)] = env
    opening = padded.reshape(frames, -1).mean(1)  # [T]
    lm = np.repeat(rest_face()[None], frames, 0)
    lower = [*range(6, 11), *range(54, 60), *range(64, 68)]
    lm[:, lower, 1] += 0.15 * opening[:, None]
    lm += rng.normal(0, 0.002, lm.shape)
    pose = np.tile(np.eye(4), (frames, 1, 1))
    pose[:, 2, 3] = 6.0
    for i in range(frames):
        a = 0.05 * np.sin(i / 20)
        pose[i, :3, :3] = geometry.rotation_from_euler(a, 0.5 * a, 0.0)
    blank = np.zeros((32, 32, 3), np.uint8)
    unlabelled = np.zeros((32, 32), np.uint8)
    return write_subject(
        root, "envelope", [blank] * frames, unlabelled, lm, pose, samples if audio else None
    )
