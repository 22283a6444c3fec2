"""The frozen wav2vec2 front end, loaded from local weights only (never downloaded).

``transformers``' ``Wav2Vec2Model.from_pretrained(path_or_name, local_files_only=True)`` reads a
local folder or the local Hugging Face cache (``facebook/wav2vec2-base-960h`` on a machine that
has it). When the weights are not there, :func:`load_wav2vec2` warns once, naming the feature
that is off, and returns ``None``; the caller falls back to the log-mel front end.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..timing import SAMPLES_PER_FRAME

W2V_HOP = 320
"""Samples between wav2vec2 output frames (50 Hz at 16 kHz)."""
W2V_CENTRE = 200
"""Sample offset of the centre of wav2vec2 frame 0 (its receptive field is 400 samples)."""


class FeatureOffWarning(UserWarning):
    """An optional feature is off because its weights are not on this machine."""


_LOADED: dict[str, Any] = {}
_WARNED: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Warn with ``message`` the first time ``key`` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, FeatureOffWarning, stacklevel=3)


def load_wav2vec2(path_or_name: str) -> Any | None:
    """The frozen ``Wav2Vec2Model`` at ``path_or_name`` (local only), or None when absent."""
    if path_or_name in _LOADED:
        return _LOADED[path_or_name]
    try:
        from transformers import Wav2Vec2Model
    except ImportError:  # pragma: no cover - transformers is a dependency
        warn_once("transformers", "transformers is not installed: wav2vec2 features are off")
        return None
    try:
        model = Wav2Vec2Model.from_pretrained(path_or_name, local_files_only=True)
    except (OSError, ValueError) as exc:
        warn_once(
            f"w2v:{path_or_name}",
            f"wav2vec2 audio features are off: no local weights at {path_or_name!r} "
            f"({type(exc).__name__}). Stage 1 uses the log-mel front end instead. Put the "
            "weights in that folder or the Hugging Face cache to use them (nothing is downloaded).",
        )
        return None
    model.eval()
    model.requires_grad_(False)
    _LOADED[path_or_name] = model
    return model


def forget_loaded() -> None:
    """Drop the loaded models and the warned-once memory (tests use this)."""
    _LOADED.clear()
    _WARNED.clear()


@torch.inference_mode()
def wav2vec2_features(model: Any, audio: np.ndarray, frames: int) -> np.ndarray:
    """wav2vec2 hidden states resampled to the video frames: float32 [frames, hidden].

    ``audio`` mono 16 kHz [S] is padded to ``frames * 640`` samples and normalised to zero mean
    and unit variance (as wav2vec2's feature extractor does). Output frame ``n`` (50 Hz) is
    centred on sample ``320 n + 200``; video frame ``i`` on ``640 i + 320``, so frame ``i`` reads
    the hidden states linearly interpolated at ``n = (640 i + 120) / 320``.
    """
    total = frames * SAMPLES_PER_FRAME
    x = np.zeros(max(total, 400), dtype=np.float32)
    n = min(total, len(audio))
    x[:n] = audio[:n]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    device = next(model.parameters()).device
    hidden = model(torch.from_numpy(x)[None].to(device)).last_hidden_state[0]  # [N, H]
    hidden = hidden.float().cpu()
    pos = (np.arange(frames) * SAMPLES_PER_FRAME + SAMPLES_PER_FRAME / 2 - W2V_CENTRE) / W2V_HOP
    pos = np.clip(pos, 0, hidden.shape[0] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, hidden.shape[0] - 1)
    w = torch.from_numpy((pos - lo).astype(np.float32))[:, None]
    out = hidden[lo] * (1 - w) + hidden[hi] * w  # [frames, H]
    return out.numpy().astype(np.float32)
