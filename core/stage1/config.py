"""Stage-1 settings: one dataclass, a docstring under every field, presets from core.presets."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import PartConfig
from ..errors import ConfigError

AUDIO_FEATURES = ("mel", "wav2vec2", "phonetic", "mel+phonetic")
FUSIONS = ("linear", "biased_cross_attention")
INITS = ("prior", "scratch")

ARCHITECTURE_FIELDS = (
    "audio_features",
    "n_mels",
    "use_formants",
    "mel_clip_norm",
    "phone_lattice_scale",
    "ppg_scale",
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
class Stage1Config(PartConfig):
    """Audio → 37 jaw/mouth landmarks (paper Sec. IV-B); sizes from the authors' code.

    The defaults are the paper's settings (AdamW 1e-4, one 200-frame window per step: a GPU
    run); the ``preview`` preset (core.presets) trains on a CPU in minutes. Building, checking,
    saving and loading: :class:`~talkstudio.core.config.PartConfig`.
    """

    PART = "stage1"
    ARCHITECTURE = ARCHITECTURE_FIELDS

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
    mel_clip_norm: bool = False
    """Subtract each log-mel column's mean over the clip (over the window in training) before
    the audio encoder: the voice's and the microphone's average spectrum go, what changes with
    the mouth stays (cepstral mean normalisation, for a speaker-independent prior)."""
    phone_lattice_scale: float = 0.0
    """With a phonetic front end, > 0 makes the viseme fractions of a row phone posteriors from
    PocketSphinx's phone lattice at this acoustic scale (:mod:`.phone_lattice`, another search
    than the phone loop's); 0 keeps the phone loop's best path as one-hot fractions. Measured,
    not taken: docs/prior.md "Phone posteriors"."""
    ppg_scale: float = 0.0
    """> 0 appends 42 phone posteriors per frame, scored by PocketSphinx's acoustic model without a
    search (:mod:`.ppg`), at this softmax scale on the phones' log-likelihoods; 0 leaves them
    out. Rows are mel, phonetic, posteriors, formants, in that order."""
    normalize_loudness: bool = True
    """Scale each clip to a fixed speech level before the features (gain-invariant driving)."""
    smooth_frames: float = 1.5
    """At inference, smooth the predicted track over time with a Gaussian of this standard
    deviation in frames (0: off), keeping the clip's amount of motion: the free-running
    prediction jitters from frame to frame, which no mouth does (docs/prior.md)."""

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

    # -- where training starts ---------------------------------------------------------------------
    init: str = "prior"
    """"prior" (fine-tune the shipped speaker prior, docs/prior.md: its audio front end and
    window replace the settings above, its network sizes must be these; a missing prior falls
    back to "scratch" with a notice) or "scratch" (random weights, the settings above)."""
    prior_path: str = ""
    """Folder of the prior to start from ("" = the shipped ``talkstudio/resources/prior``)."""
    finetune_lr: float = 3e-4
    """AdamW learning rate when starting from the prior (``lr`` is for training from scratch)."""
    prior_blend: float = 0.3
    """A model fine-tuned from the prior keeps the prior it started from, fitted to the subject
    (``prior.safetensors`` beside the checkpoint); at inference this share of the motion comes
    from that prior's own prediction, the rest from the fine-tuned one's, at the fine-tuned
    one's size. The fine-tune learns the subject's mouth from one voice, the prior heard 26
    (docs/prior.md "Blending"). 0: the fine-tuned model alone."""
    linear_share: float = 0.0
    """This share of the motion comes from the prior's linear part (``linear.safetensors``
    beside the checkpoint, :mod:`.linear_prior`: phone posteriors to landmarks, fitted on many
    speakers), brought to the fine-tuned motion's size; the fine-tuned model and
    ``prior_blend`` share the rest. 0: not used, the default (docs/prior.md "A cross-validated
    yardstick, and the linear part": 0.4 with ``prior_blend`` 0.2 gained on held-out training
    speakers with priors built on two thirds of them, not with the shipped prior)."""
    mouth_weight: float = 0.0
    """Weight of the mouth-shape term added to Eq. 2 (:func:`~.train.frame_loss`: the inner-lip
    gap and the corner-to-corner line); 0 trains on Eq. 2 alone, as the paper does."""

    # -- training --------------------------------------------------------------------------------
    sync_audio: bool = True
    """Measure how far the footage's sound is off its picture with the prior's linear part and
    train on the sound moved back in line (:mod:`.sync`); False trains on the sound as it is."""
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
    voice_copies: int = 0
    """Perturbed copies of the subject's training audio (another speed, pitch and vocal-tract
    length, microphone and noise: :mod:`.augment`) trained on beside the clean one, with the
    landmark track resampled to match, so that what the network learns from one voice is less
    tied to that voice (docs/prior.md)."""
    input_noise: float = 0.02
    """Std of Gaussian noise on the previous-frame landmark inputs (normalised units)."""
    rollout_passes: int = 2
    """Free-running passes per step (0 = teacher forcing): each feeds the previous pass's own
    predictions back as inputs, so a pass k frames deep matches autoregressive inference."""
    rollout_start: float = 0.3
    """Fraction of ``steps`` after which the rollout passes begin."""
    val_every: int = 100
    """Steps between free-running validations (LMD) reported in the progress."""
    checkpoint_every: int = 250
    """Steps between checkpoints (also at the end, and when training is cancelled)."""
    seed: int = 0
    """Seed of weights, windows and noise."""
    cpu_threads: int = 0
    """Torch CPU threads while training (0: leave torch's setting). The model is small: one
    thread is best on a busy machine, more help only on idle cores."""

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        if self.audio_features not in AUDIO_FEATURES:
            raise ConfigError(f"audio_features must be one of {AUDIO_FEATURES}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {FUSIONS}")
        if self.feature_dim % self.dec_heads or self.feature_dim % self.lm_heads:
            raise ConfigError("feature_dim must be divisible by lm_heads and dec_heads")
        if self.ppg_scale < 0:
            raise ConfigError("ppg_scale must not be negative (0: no phone posteriors)")
        if self.phone_lattice_scale < 0:
            raise ConfigError("phone_lattice_scale must not be negative (0: the best path)")
        if self.audio_kernel % 2 == 0:
            raise ConfigError("audio_kernel must be odd")
        if not 0 <= self.prior_blend < 1:
            raise ConfigError(f"stage1 prior_blend must be in [0, 1), got {self.prior_blend}")
        if not 0 <= self.linear_share < 1 or self.prior_blend + self.linear_share >= 1:
            raise ConfigError(
                f"stage1 linear_share must be in [0, 1) and leave the fine-tuned model a share "
                f"(prior_blend {self.prior_blend} + linear_share {self.linear_share} < 1)"
            )
        if self.init not in INITS:
            raise ConfigError(f"stage1 init must be one of {INITS}, got {self.init!r}")
        if self.steps < 1:
            raise ConfigError(f"stage1 steps must be at least 1, got {self.steps}")
        for name in ("window", "batch", "warmup", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"stage1 {name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.rollout_start <= 1:
            raise ConfigError("stage1 needs lr > 0 and rollout_start in [0, 1]")
        if self.rollout_passes < 0 or self.cpu_threads < 0 or self.voice_copies < 0:
            raise ConfigError(
                "stage1 rollout_passes, cpu_threads and voice_copies must not be negative"
            )
