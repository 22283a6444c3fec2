"""A tiny subject whose torso and neck follow the head: what the torso UNet has to learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import make_tiny_subject

from talkstudio.core import subject


def make_torso_subject(root: Path, frames: int = 30, size: int = 48) -> Path:
    """A subject of ``frames`` PNG frames at ``size``²: a textured background, a head (ellipse,
    hair cap, eyes) swaying left and right, a neck below it and shoulders that follow it half as
    far. Masks: person, head (above the neck line) and torso bits."""
    make_tiny_subject(root, frames=frames, size=size, audio=False)
    subj = subject.Subject.open(root)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bg = np.stack(
        [0.35 + 0.3 * xx, 0.45 + 0.2 * np.sin(6.0 * yy), 0.6 - 0.3 * yy * xx], axis=-1
    )  # [S, S, 3]
    subj.write_background((bg * 255).astype(np.uint8))
    for i in range(frames):
        phase = 2 * np.pi * i / 9.0
        cx = 0.5 + 0.16 * np.sin(phase)  # head centre, fraction of the side
        cy = 0.36 + 0.03 * np.cos(phase)
        head = ((xx - cx) / 0.15) ** 2 + ((yy - cy) / 0.19) ** 2 <= 1.0
        hair = head & (yy < cy - 0.07)
        eyes = (np.abs(np.abs(xx - cx) - 0.06) < 0.025) & (np.abs(yy - cy + 0.01) < 0.02)
        neck = (np.abs(xx - cx) < 0.07) & (yy > cy) & (yy < 0.78) & ~head
        sx = 0.5 + 0.5 * (cx - 0.5)  # shoulders follow the head half as far
        torso = (yy >= 0.7) & (np.abs(xx - sx) < 0.12 + 0.9 * (yy - 0.7))
        img = bg.copy()
        img[torso] = (0.15, 0.25, 0.6)
        img[torso & (np.abs(xx - sx) < 0.05)] = (0.9, 0.9, 0.92)  # shirt front
        img[neck] = (0.75, 0.55, 0.45)
        img[head] = (0.92, 0.72, 0.6)
        img[hair] = (0.25, 0.15, 0.1)
        img[head & eyes] = (0.1, 0.1, 0.15)
        labels = np.zeros((size, size), np.uint8)
        labels[head | neck | torso] |= subject.MASK_PERSON
        labels[head] |= subject.MASK_HEAD
        labels[torso] |= subject.MASK_TORSO
        subj.write_frame(i, (img * 255).round().astype(np.uint8))
        subj.write_mask(i, labels)
    return root
