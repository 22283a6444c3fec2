"""Stage-1 settings: one dataclass, a docstring under every field, presets from core.presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import CheckpointError
from ..presets import apply_preset

AUDIO_FEATURES = ("mel", "wav2vec2", "phonetic", "mel+phonetic")
FUSIONS = ("linear", "biased_cross_attention")

ARCHITECTURE_FIELDS = (
    "audio_features",
    "n_mels",
    "use_formants",
    "feature_dim",
    "audio_conv_layers",
    "audio_kernel",
    "lm_layers",
    "lm_heads",
    "lm_ffn",
    "dec_layers",
    "dec_heads",
    "dec_ffn",
    "period",
    "fusion",
)
"""Fields that change the network's weights or their meaning: a checkpoint only loads into a
model whose values of these fields are the checkpoint's own."""


@dataclass
class Stage1Config:
    """Audio → 37 jaw/mouth landmarks (paper Sec. IV-B); sizes from the authors' code.

    The defaults are the paper's settings (AdamW 1e-4, one 200-frame window per step: a GPU
    run); the ``preview`` preset (core.presets) trains on a CPU in minutes.
    """

    # -- audio front end (E_aud) ---------------------------------------------------------------
    audio_features: str = "mel"
    """"mel" (log-mel spectrogram, always available), "wav2vec2" (frozen, from local weights;
    falls back to "mel" with a warning when they are absent), "phonetic" (viseme classes of the
    phones PocketSphinx decodes, :mod:`.phonetic`) or "mel+phonetic" (both side by side). A
    saved checkpoint records the front end it was actually trained with."""
    wav2vec2_path: str = "facebook/wav2vec2-base-960h"
    """Local folder or Hugging Face model name of the wav2vec2 weights (local cache only)."""
    n_mels: int = 80
    """Mel bands of the log-mel front end (4 mel frames of 10 ms per 40 ms video frame)."""
    use_formants: bool = True
    """Append the 6 LPC formant features (3 formants' frequency and bandwidth) per frame."""
    normalize_loudness: bool = True
    """Scale each clip to a fixed speech level before the features (gain-invariant driving)."""

    # -- network sizes ---------------------------------------------------------------------------
    feature_dim: int = 64
    """Width of the audio feature, the landmark feature and the decoder (paper: 64)."""
    audio_conv_layers: int = 2
    """Residual 1-D convolutions over frames in the trainable audio encoder."""
    audio_kernel: int = 5
    """Kernel of those convolutions in frames; each sees (kernel - 1) / 2 frames either side."""
    lm_layers: int = 2
    """Transformer encoder layers of the landmark encoder E_lm."""
    lm_heads: int = 4
    """Attention heads of E_lm."""
    lm_ffn: int = 128
    """Feed-forward width of E_lm's layers."""
    dec_layers: int = 2
    """Layers of the decoder D_a2l."""
    dec_heads: int = 4
    """Attention heads of D_a2l."""
    dec_ffn: int = 512
    """Feed-forward width of D_a2l's layers."""
    period: int = 25
    """Period in frames of the periodic position encoding and of the distance bias."""
    fusion: str = "linear"
    """"linear" (the paper's fusion of the aligned audio feature) or "biased_cross_attention"
    (FaceFormer's cross-modal attention with the alignment mask, for Table II)."""
    dropout: float = 0.1
    """Dropout inside the Transformer layers during training."""

    # -- training --------------------------------------------------------------------------------
    steps: int = 20000
    """Optimizer steps."""
    window: int = 200
    """Frames per training window (min(window, training frames)); also the attention context."""
    batch: int = 1
    """Windows per step, stacked into one batch (the authors: 1)."""
    lr: float = 1e-4
    """AdamW learning rate (paper: 1e-4)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup: int = 500
    """Steps of linear learning-rate warm-up; afterwards cosine decay to 10 % at ``steps``."""
    gain_jitter_db: float = 3.0
    """Training windows of the log-mel front end are played up to this many dB louder or
    softer (exactly, in the log-mel domain), so a driving clip's level matters less."""
    input_noise: float = 0.02
    """Std of Gaussian noise on the previous-frame landmark inputs (normalised units)."""
    rollout_passes: int = 2
    """Free-running passes per step (0 = teacher forcing): each feeds the previous pass's own
    predictions back as inputs, so a pass k frames deep matches autoregressive inference."""
    rollout_start: float = 0.3
    """Fraction of ``steps`` after which the rollout passes begin."""
    val_every: int = 100
    """Steps between free-running validations (LMD) reported in the progress."""
    save_every: int = 250
    """Steps between checkpoints (and always at the end)."""
    seed: int = 0
    """Seed of weights, windows and noise."""
    cpu_threads: int = 0
    """Torch CPU threads while training (0: leave torch's setting). The model is small: one
    thread is best on a busy machine, more help only on idle cores."""

    def __post_init__(self) -> None:
        if self.audio_features not in AUDIO_FEATURES:
            raise ValueError(f"audio_features must be one of {AUDIO_FEATURES}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        if self.feature_dim % self.dec_heads or self.feature_dim % self.lm_heads:
            raise ValueError("feature_dim must be divisible by lm_heads and dec_heads")
        if self.audio_kernel % 2 == 0:
            raise ValueError("audio_kernel must be odd")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Stage1Config:
        """The ``name`` preset ("preview" or "paper") with ``overrides`` on top."""
        cfg = apply_preset(cls(), "stage1", name)
        return cls(**{**asdict(cfg), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Stage1Config:
        """Rebuild from ``to_dict`` output; unknown keys (a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"the stage-1 config is invalid ({exc})") from exc

    def architecture_mismatch(self, other: Stage1Config) -> list[str]:
        """``field: ours != theirs`` for every architecture field that differs."""
        return [
            f"{name}: {getattr(self, name)!r} != {getattr(other, name)!r}"
            for name in ARCHITECTURE_FIELDS
            if getattr(self, name) != getattr(other, name)
        ]
