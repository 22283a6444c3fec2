"""The one mapping between video frames and audio samples (docs/design.md "Time").

Frame ``i`` covers the audio samples ``[i * 640, (i + 1) * 640)`` at 16 kHz and 25 fps. A clip
of ``S`` samples has ``ceil(S / 640)`` frames; the last one is padded with silence.
"""

from __future__ import annotations

import numpy as np

FPS = 25
SAMPLE_RATE = 16_000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640


def num_frames(num_samples: int) -> int:
    """Frames needed to cover ``num_samples`` audio samples: ``ceil(num_samples / 640)``."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return -(-num_samples // SAMPLES_PER_FRAME)


def frame_sample_range(frame: int) -> tuple[int, int]:
    """Half-open sample range ``[start, stop)`` that frame ``frame`` covers."""
    return frame * SAMPLES_PER_FRAME, (frame + 1) * SAMPLES_PER_FRAME


def pad_to_frames(audio: np.ndarray) -> np.ndarray:
    """Pad mono ``audio`` [S] with silence to a whole number of frames [num_frames(S) * 640]."""
    total = num_frames(len(audio)) * SAMPLES_PER_FRAME
    if total == len(audio):
        return audio
    out = np.zeros(total, dtype=audio.dtype)
    out[: len(audio)] = audio
    return out
