"""A linear audio-to-motion prior from phone posteriors (docs/prior.md "A cross-validated
yardstick, and the linear part").

Beside the network prior, the speaker prior carries a ridge regression from the acoustic model's
phone posteriors (:mod:`.ppg`, 42 per frame, ±``context`` frames around each, plus a constant) to
the speaker-normalised displacements of the 37 stage-1 points (each coordinate's motion at unit
spread per clip). It is fitted in closed form on the corpus's training clips
(``scripts/make_prior.py``), needs no training per subject, and hears no voice: the posteriors
come from a model trained on many speakers. Held out by speaker, a subject's prediction follows
other voices better with a share of its motion (``Stage1Config.linear_share``,
:func:`~.infer.blended`).

File: ``linear.safetensors`` in the prior's folder, copied beside a subject's stage-1 checkpoint
when its training starts from the prior: ``weights`` float32 [(2 context + 1) 42 + 1, 111],
``scale``, ``context`` and ``stride`` (the posteriors' softmax scale, the frames either side,
and every how many 10-ms frames they are scored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..landmarks import STAGE1_POINTS
from .ppg import PPG_DIM, STRIDES, ppg_features

LINEAR_FILE = "linear.safetensors"
OUTPUTS = len(STAGE1_POINTS) * 3
SCALE = 0.5
"""Softmax scale of the posteriors (the linear probe of docs/prior.md: 0.3-1.0 alike)."""
CONTEXT = 6
"""Frames of posteriors either side of a frame (±0.24 s)."""
STRIDE = 4
"""Every how many 10-ms frames the posteriors are scored (:func:`~.ppg.ppg_features`): one per
video frame, four times cheaper than all, for 0.01 less r on the folds of docs/prior.md."""
RIDGE = 0.05
"""Ridge penalty on the weights, in units of one clip's weight in the fit."""


def design(posteriors: np.ndarray, context: int) -> np.ndarray:
    """Rows float64 [T, (2 context + 1) 42 + 1]: each frame's posteriors [T, 42] with those of
    the ``context`` frames either side (the first and last frames repeat at the ends), and 1."""
    p = np.asarray(posteriors, np.float64)
    t = len(p)
    padded = np.pad(p, ((context, context), (0, 0)), mode="edge")
    cols = [padded[i : i + t] for i in range(2 * context + 1)]
    return np.concatenate([*cols, np.ones((t, 1))], axis=1)


@dataclass
class LinearPrior:
    """The ridge regression of the module docstring."""

    weights: np.ndarray  # float32 [(2 context + 1) 42 + 1, 111]
    scale: float = SCALE
    context: int = CONTEXT
    stride: int = STRIDE

    def __post_init__(self) -> None:
        rows = (2 * self.context + 1) * PPG_DIM + 1
        if self.weights.shape != (rows, OUTPUTS):
            raise CheckpointError(
                f"the linear prior's weights are {self.weights.shape}, expected {(rows, OUTPUTS)} "
                f"for ±{self.context} frames; build the prior again (scripts/make_prior.py)"
            )
        if self.stride not in STRIDES:
            raise CheckpointError(
                f"the linear prior's stride is {self.stride}, not one of {STRIDES}; build the "
                "prior again (scripts/make_prior.py)"
            )

    @classmethod
    def fit(
        cls,
        clips: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        scale: float = SCALE,
        context: int = CONTEXT,
        ridge: float = RIDGE,
        stride: int = STRIDE,
    ) -> LinearPrior:
        """Fitted on ``clips``: (16 kHz audio [S], speaker-normalised displacements [T, 37, 3],
        tracked [T] bool) each; untracked frames are left out. Each clip counts the same
        whatever its length, and each coordinate's motion (about the clip's mean) is brought to
        unit spread before the fit: it learns when each point moves, the small lip motions as
        much as the jaw's, not how far each speaker moves them. The fitted weights are then
        scaled by each coordinate's spread averaged over the clips, which restores the average
        speaker's proportions (the subject's own size is applied at prediction,
        :func:`~.infer.sized_like`)."""
        dim = (2 * context + 1) * PPG_DIM + 1
        gram = np.zeros((dim, dim))
        cross = np.zeros((dim, OUTPUTS))
        spreads = []
        for audio, disp, tracked in clips:
            x = design(ppg_features(audio, len(disp), scale, stride), context)[tracked]
            y = np.asarray(disp, np.float64).reshape(len(disp), OUTPUTS)[tracked]
            if len(x) < 2:
                continue
            y = y - y.mean(axis=0)
            spread = y.std(axis=0) + 1e-9
            spreads.append(spread)
            w = 1.0 / np.sqrt(len(x))
            gram += (w * x).T @ (w * x)
            cross += (w * x).T @ (w * y / spread)
        if not spreads:
            raise ValueError("no tracked frames to fit the linear prior on")
        weights = np.linalg.solve(gram + ridge * np.eye(dim), cross) * np.mean(spreads, axis=0)
        return cls(weights.astype(np.float32), float(scale), int(context), int(stride))

    def displacements(self, audio_16k: np.ndarray, frames: int) -> np.ndarray:
        """Speaker-normalised displacements float32 [frames, 37, 3] for ``audio_16k``."""
        x = design(ppg_features(audio_16k, frames, self.scale, self.stride), self.context)
        return (x @ self.weights).reshape(frames, len(STAGE1_POINTS), 3).astype(np.float32)

    def save(self, folder: str | Path) -> None:
        from ..checkpoint import save_weights

        save_weights(
            Path(folder) / LINEAR_FILE,
            {
                "weights": torch.from_numpy(np.ascontiguousarray(self.weights, np.float32)),
                "scale": torch.tensor([self.scale], dtype=torch.float32),
                "context": torch.tensor([self.context], dtype=torch.int64),
                "stride": torch.tensor([self.stride], dtype=torch.int64),
            },
        )

    @classmethod
    def load(cls, folder: str | Path) -> LinearPrior | None:
        """The linear prior in ``folder``; None when it has none (a prior or subject made
        before it existed). A damaged file raises :class:`CheckpointError`."""
        from ..checkpoint import load_weights

        path = Path(folder) / LINEAR_FILE
        if not path.is_file():
            return None
        todo = "delete it to predict without the linear prior, or train stage 1 again"
        t = load_weights(path, todo)
        try:
            return cls(
                t["weights"].float().numpy(),
                float(t["scale"][0]),
                int(t["context"][0]),
                int(t["stride"][0]) if "stride" in t else 1,  # files before the stride: 1
            )
        except (KeyError, IndexError) as exc:
            raise CheckpointError(f"{path} lacks {exc}; {todo}") from exc
