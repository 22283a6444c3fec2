"""The stage-1 network assembled: E_aud head, E_lm, D_a2l and the zero-initialised output.

Landmark shifting (paper Sec. IV-B): the network works on displacements of the 37 points from
the subject's mean landmarks, in the normalised head frame (see :mod:`.data`):
``disp = (L - mean) / scale``. Its last Linear starts at zero weight and bias, so an untrained
model predicts exactly the mean landmarks. The statistics it needs (mean, scale, the std of the
displacements that scales E_lm's input and the output, and the audio features' mean and std)
are buffers, saved with the weights, so a checkpoint is self-contained.

Teacher-forced (parallel) use: ``forward(feats, prev)`` where ``prev[:, t]`` is the
displacement of frame ``t - 1`` (``prev[:, 0]`` the start: zeros, i.e. the mean). Free-running
inference is :mod:`.infer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .config import Stage1Config
from .decoder import Decoder
from .encoder import NUM_POINTS, AudioEncoder, LandmarkEncoder

if TYPE_CHECKING:
    from .linear_prior import LinearPrior


class Stage1Model(nn.Module):
    """Audio features [B, T, in_dim] + previous landmarks → landmark displacements [B, T, 37, 3]."""

    mean_lm: torch.Tensor
    lm_scale: torch.Tensor
    disp_std: torch.Tensor
    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, config: Stage1Config, audio_in_dim: int) -> None:
        super().__init__()
        self.config = config
        self.audio_in_dim = audio_in_dim
        d = config.feature_dim
        self.audio_encoder = AudioEncoder(
            audio_in_dim, d, config.audio_conv_layers, config.audio_kernel, config.dropout
        )
        self.lm_encoder = LandmarkEncoder(
            d, config.lm_layers, config.lm_heads, config.lm_ffn, config.dropout
        )
        self.decoder = Decoder(
            d,
            config.dec_layers,
            config.dec_heads,
            config.dec_ffn,
            config.dropout,
            config.period,
            config.window,
            config.fusion,
        )
        self.head = nn.Linear(d, NUM_POINTS * 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("mean_lm", torch.zeros(NUM_POINTS, 3))  # [37, 3] head units
        self.register_buffer("lm_scale", torch.ones(3))  # [3] head units per normalised unit
        self.register_buffer("disp_std", torch.ones(3))  # [3] normalised units
        self.register_buffer("feat_mean", torch.zeros(audio_in_dim))  # [in_dim]
        self.register_buffer("feat_std", torch.ones(audio_in_dim))  # [in_dim]
        self.is_prior = False
        """True for the speaker prior (normalised space, no subject); see :mod:`.prior`."""
        self.closed_lm: np.ndarray | None = None
        """The subject's closed mouth [37, 3] (head units), where silences drive the mouth
        (:func:`~.prior.close_silences`); None: silences are left to the network."""
        self.range_factor = 1.0
        """How much wider than the prior's average speaker this subject opens its mouth
        (:func:`~.prior.calibrate_range`); 1 for models trained from scratch."""
        self.sync_offset = 0.0
        """Frames the subject's sound was late against its picture (:mod:`.sync`): it trained
        on the sound moved back by that much, and is scored against its own picture so."""
        self.blend: PriorBlend | None = None
        """The prior this model was fine-tuned from, mixed into its predictions
        (``Stage1Config.prior_blend``, :func:`~.infer.predict`); None: the model alone."""
        self.linear_prior: LinearPrior | None = None
        """On the speaker prior: its linear part (:mod:`.linear_prior`), which a subject's
        training copies beside its checkpoint."""

    # -- statistics --------------------------------------------------------------------------------
    def set_statistics(
        self,
        mean_lm: np.ndarray,
        lm_scale: np.ndarray,
        disp_std: np.ndarray,
        feat_mean: np.ndarray,
        feat_std: np.ndarray,
    ) -> None:
        """Fill the buffers from the training data (see :class:`~.data.Stage1Data`)."""
        for name, value in (
            ("mean_lm", mean_lm),
            ("lm_scale", lm_scale),
            ("disp_std", disp_std),
            ("feat_mean", feat_mean),
            ("feat_std", feat_std),
        ):
            buf = getattr(self, name)
            buf.copy_(torch.as_tensor(np.asarray(value), dtype=buf.dtype).reshape(buf.shape))

    def to_points(self, disp: torch.Tensor) -> torch.Tensor:
        """Head-frame points [..., 37, 3] of normalised displacements [..., 37, 3]."""
        return self.mean_lm + disp * self.lm_scale

    # -- parts -------------------------------------------------------------------------------------
    def encode_audio(self, feats: torch.Tensor) -> torch.Tensor:
        """Audio features [B, T, dim] of raw front-end rows [B, T, in_dim]."""
        x = (feats - self.feat_mean) / self.feat_std
        if self.config.mel_clip_norm and "mel" in self.config.audio_features:
            m = 4 * self.config.n_mels  # the log-mel block leads the row
            x = torch.cat([x[..., :m] - x[..., :m].mean(dim=1, keepdim=True), x[..., m:]], -1)
        return self.audio_encoder(x)

    def encode_landmarks(self, disp: torch.Tensor) -> torch.Tensor:
        """E_lm over every frame: [B, T, 37, 3] displacements → [B, T, dim]."""
        b, t = disp.shape[:2]
        f = self.lm_encoder((disp / self.disp_std).reshape(b * t, NUM_POINTS, 3))
        return f.view(b, t, -1)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """Displacements [B, T, 37, 3] from decoder features [B, T, dim] (zero at init)."""
        b, t = x.shape[:2]
        return self.head(x).view(b, t, NUM_POINTS, 3) * self.disp_std

    def forward(self, feats: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Teacher-forced pass: feats [B, T, in_dim], prev [B, T, 37, 3] → [B, T, 37, 3]."""
        states = self.decoder.prepare(self.encode_audio(feats))
        return self.output(self.decoder(self.encode_landmarks(prev), states))


@dataclass
class PriorBlend:
    """The speaker prior a subject's model was fine-tuned from, fitted to the subject (same mean,
    scale and statistics as the model at the start of fine-tuning), and the weight its free-
    running prediction gets beside the fine-tuned one's (docs/prior.md "Blending")."""

    prior: Stage1Model
    weight: float
    linear: LinearPrior | None = None
    """The prior's linear part (:mod:`.linear_prior`), in the fitted prior's space."""
    linear_weight: float = 0.0
    """Its share of the motion (``Stage1Config.linear_share``)."""
