"""Settings of the torso network and its training (paper Sec. IV-C, Fig. 4)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import PartConfig
from ..errors import ConfigError

# Fields that change the network's weights; a checkpoint only loads into a net built with the same.
OUTPUT_MODES = ("masked", "residual", "direct")
ARCHITECTURE_FIELDS = ("base_width", "depth", "deformable", "dcn_levels", "output", "norm_groups")


@dataclass
class TorsoConfig(PartConfig):
    """The torso UNet and its training. Building, checking, saving and loading (presets from
    core.presets): :class:`~talkstudio.core.config.PartConfig`."""

    PART = "torso"
    ARCHITECTURE = ARCHITECTURE_FIELDS

    image_size: int = 128
    """Side in pixels at which the network trains and runs; other sizes resize its output."""
    base_width: int = 32
    """Channels C of the full-resolution level; each level ↓2 doubles them up to 8C (paper: 64)."""
    depth: int = 5
    """Strided ↓2 encoder levels (and as many ↑2 decoder levels); inputs are padded to 2^depth."""
    deformable: bool = True
    """Modulated deformable convolution blocks (DCNv2) after the middle encoder levels; False
    builds the same net with plain 3×3 convolutions in their place."""
    dcn_levels: tuple[int, ...] = (2, 3)
    """Encoder levels (1 = the first ↓2 level) followed by a deformable block."""
    output: str = "masked"
    """How the final 1×1 conv's RGB r makes the frame from the input composite K (head over the
    plate, opacity α): "residual": K + r; "masked": K + (1 − α)·r, the head's opaque pixels
    pass through unchanged; "direct": r alone (pix2pix)."""
    norm_groups: int = 8
    """Groups of the GroupNorm after each convolution (per-image, so batching changes nothing)."""
    steps: int = 1500
    """Optimizer steps of a training run."""
    batch_size: int = 4
    """Training pairs per step."""
    lr: float = 1e-3
    """AdamW learning rate (the paper's 1e-3)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    lr_final_fraction: float = 0.1
    """The learning rate decays linearly over the second half of training to lr × this."""
    smooth_l1_beta: float = 0.02
    """Transition point of the smooth-L1 loss, in [0, 1] intensity units (small: close to L1)."""
    vgg_weight: float = 1.0
    """Weight of the VGG perceptual term (L = SmoothL1 + VGG); it is off when no VGG weights exist."""
    crop_scale_min: float = 0.9
    """Smallest random crop, as a fraction of the frame side, before resizing to image_size."""
    crop_scale_max: float = 1.0
    """Largest random crop (1: the whole frame)."""
    full_frame_fraction: float = 0.5
    """Share of training pairs taken as the whole frame, uncropped (the view used at inference)."""
    rim_px: float = 0.0
    """Training only: each pair's head outline is blurred by a Gaussian of random standard
    deviation up to this many pixels (at ``image_size``), the head's colour with its opacity, so
    that the network learns what lies behind a head whose outline is soft and a few pixels off,
    as a NeRF's is on frames it did not train on (hair, jaw line); 0: the exact head mask, whose
    rim the network never has to fill."""
    cache_mb: int = 1024
    """Frames are kept in memory, resized for cropping, while they fit in this many MiB."""
    checkpoint_every: int = 250
    """Save weights and optimizer state every this many steps (and at the end)."""
    preview_every: int = 100
    """Attach a preview image (input head | output | ground truth) to progress every this many
    steps (0: none)."""
    seed: int = 0
    """Seed of weight initialisation and of the training-pair sampler."""

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        if self.image_size < 8:
            raise ConfigError(f"image_size {self.image_size} is too small (at least 8)")
        if self.base_width < 1 or self.depth < 1:
            raise ConfigError("base_width and depth must be positive")
        if any(not 1 <= lv <= self.depth for lv in self.dcn_levels):
            raise ConfigError(f"dcn_levels {self.dcn_levels} must lie in 1..depth={self.depth}")
        if not 0 < self.crop_scale_min <= self.crop_scale_max <= 1:
            raise ConfigError("need 0 < crop_scale_min <= crop_scale_max <= 1")
        if self.rim_px < 0:
            raise ConfigError(f"torso rim_px must not be negative, got {self.rim_px}")
        if self.output not in OUTPUT_MODES:
            raise ConfigError(f"output {self.output!r} must be one of {OUTPUT_MODES}")
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"torso {name} must be at least 1, got {getattr(self, name)}")
        if self.preview_every < 0:
            raise ConfigError(
                f"torso preview_every {self.preview_every} cannot be negative (0: off)"
            )
