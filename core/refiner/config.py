"""Settings of the high-resolution refiner and its training (docs/design.md "Refiner")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import PartConfig
from ..errors import ConfigError

SCALES = (0, 2, 4)


@dataclass
class RefinerConfig(PartConfig):
    """The ×2/×4 upsampling refiner and its training. Building, checking, saving and loading
    (presets from core.presets): :class:`~talkstudio.core.config.PartConfig`."""

    PART = "refiner"
    ARCHITECTURE = (
        "scale",
        "plate",
        "base_width",
        "depth",
        "deformable",
        "dcn_levels",
        "up_width",
        "mouth_reference",
    )

    scale: int = 0
    """Upsampling factor from the head's render to the frame: 2 or 4; 0 picks it from the
    subject's side over the head's training size (512 / 128 = 4)."""
    plate: Literal["mean", "background", "torso", "auto"] = "mean"
    """What the refiner composes over at full resolution: "mean", the per-pixel mean of the
    cached training frames (background plus the average body: the untrained refiner is the
    head-pasted-on-mean-frame baseline); "background", the subject's background plate (the
    body is then learnt from scratch, as the torso UNet does); or "torso", per frame, the
    background completed by the subject's trained torso UNet around the upsampled head
    (:meth:`Compositor.plate <talkstudio.core.torso.compose.Compositor.plate>`: the untrained
    refiner is today's path, head and torso at L upsampled over the sharp background; the
    torso must be trained first, and retraining it calls for retraining the refiner); or "auto",
    whichever of "mean" and "torso" composes the training frames better before training
    (:func:`~talkstudio.core.refiner.data.choose_plate`; "mean" without a trained torso). A
    saved refiner records the plate it was trained over, never "auto"."""
    base_width: int = 32
    """Channels C of the low-resolution trunk's first level (a torso-UNet trunk, Fig. 4)."""
    depth: int = 3
    """Strided ↓2 levels of the trunk; the low-resolution crops are padded to 2^depth."""
    deformable: bool = True
    """Modulated deformable convolution blocks after the trunk's middle levels (as the torso)."""
    dcn_levels: tuple[int, ...] = (1, 2)
    """Trunk levels (1 = the first ↓2 level) followed by a deformable block."""
    up_width: int = 16
    """Channels of each nearest-neighbour ↑2 stage above the trunk."""
    mouth_reference: bool = False
    """Take the mouth from the subject's own video: the training frame whose lip shape is
    nearest, aligned onto the wanted lips (core/refiner/reference.py), is laid over the refined
    frame inside a feathered mouth mask, and the upsampling stages read it to blend around it,
    so teeth and the inner lips are real at full resolution instead of the blurred render."""
    reference_colour_sigma: float = 4.0
    """With ``mouth_reference``: the reference's colour and shading below this scale (Gaussian
    σ in pixels of the refined frame; about 0.05 mouth widths at 512²) are taken from the
    upsampled head render, so the lips keep one colour from frame to frame whichever training
    frame lends them, and the reference lends the fine detail only (teeth, lip lines); 0 keeps
    the reference's own colour. 4 rather than 8 (and 30 before that): the real mouth comes from
    another frame, so every coarser shade it lends costs PSNR; at 4 TaoKai's head PSNR is
    +0.23 dB higher, German_20s's level, mouth sharpness 0.77 / 0.85 against 0.81 / 0.87
    (docs/design.md "Refiner")."""
    steps: int = 3000
    """Optimizer steps of a training run."""
    batch_size: int = 4
    """Crops per step."""
    crop_size: int = 128
    """Side of a training crop at the frame's resolution (a multiple of ``scale``)."""
    mouth_fraction: float = 0.3
    """Share of crops centred on the mouth (its landmarks' centre, jittered)."""
    eye_fraction: float = 0.2
    """Share of crops centred on an eye; the rest fall anywhere in the frame."""
    cache_frames: int = 0
    """Training frames rendered by the head once and cached as the refiner's input, spread evenly
    over the training split; 0: all of them."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    lr_final_fraction: float = 0.1
    """The learning rate decays linearly over the second half of training to lr × this."""
    smooth_l1_beta: float = 0.02
    """Transition point of the smooth-L1 loss, in [0, 1] intensity units."""
    edge_weight: float = 0.5
    """Weight of the image-gradient term: L1 between the horizontal and vertical finite
    differences of output and frame (sharp edges, teeth and lashes)."""
    mask_weight: float = 0.05
    """Weight of the blend mask's cross-entropy against the person mask."""
    vgg_weight: float = 0.0
    """Weight of the VGG perceptual term; 0 (off) by default, and off whenever no weights exist."""
    checkpoint_every: int = 250
    """Save weights and optimizer state every this many steps (and at the end)."""
    preview_every: int = 100
    """Attach a preview (input upsampled | output | frame) to progress every this many steps
    (0: none)."""
    seed: int = 0
    """Seed of weight initialisation and of the crop sampler."""

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        if self.scale not in SCALES:
            raise ConfigError(f"refiner scale {self.scale} must be 2 or 4 (0: from the subject)")
        if self.base_width < 1 or self.depth < 1 or self.up_width < 1:
            raise ConfigError("refiner base_width, depth and up_width must be positive")
        if any(not 1 <= lv <= self.depth for lv in self.dcn_levels):
            raise ConfigError(f"dcn_levels {self.dcn_levels} must lie in 1..depth={self.depth}")
        if self.crop_size % (4 * 2**self.depth):
            raise ConfigError(
                f"refiner crop_size {self.crop_size} must be a multiple of {4 * 2**self.depth} "
                "(4 × 2^depth), so its low-resolution crop fits the trunk at either scale"
            )
        if self.mouth_fraction < 0 or self.eye_fraction < 0:
            raise ConfigError("mouth_fraction and eye_fraction cannot be negative")
        if self.mouth_fraction + self.eye_fraction > 1:
            raise ConfigError("mouth_fraction + eye_fraction must be at most 1")
        if not self.reference_colour_sigma >= 0:
            raise ConfigError(
                f"reference_colour_sigma {self.reference_colour_sigma} must be 0 (off) or more"
            )
        if self.cache_frames < 0:
            raise ConfigError(f"cache_frames {self.cache_frames} cannot be negative (0: all)")
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"refiner {name} must be at least 1, got {getattr(self, name)}")
        if self.preview_every < 0:
            raise ConfigError(
                f"refiner preview_every {self.preview_every} cannot be negative (0: off)"
            )
