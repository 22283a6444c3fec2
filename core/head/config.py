"""Settings of the head NeRF and its training (paper Sec. IV-C, Eq. 6-9)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Self

from ..config import PartConfig
from ..errors import ConfigError
from .encoding import HashGridConfig
from .landmark_encoding import ENCODING_KINDS, EncodingKind
from .renderer import MarchSettings

# Fields that decide the shapes of the weights: a checkpoint only loads into the same.
ARCHITECTURE_FIELDS = (
    "encoding",
    "posenc_frequencies",
    "grid_levels",
    "grid_features",
    "grid_log2_table_size",
    "grid_base_resolution",
    "grid_max_resolution",
    "mlp_width",
    "geo_features",
    "occupancy_resolution",
)


@dataclass
class HeadConfig(PartConfig):
    """The head NeRF and its training. Building, checking, saving and loading (presets from
    core.presets): :class:`~talkstudio.core.config.PartConfig`."""

    PART = "head"
    ARCHITECTURE = ARCHITECTURE_FIELDS

    image_size: int = 512
    """Side in pixels at which the head trains and is evaluated (the subject's K is scaled)."""
    steps: int = 100_000
    """Optimizer steps of a training run (the least, with ``steps_per_frame``)."""
    steps_per_frame: float = 0.0
    """With more than ``steps / steps_per_frame`` training frames, train for ``steps_per_frame``
    steps per frame instead, at most ``max_steps``: a long clip's head sees each frame about as
    often as a short one's (:meth:`steps_for`); 0: always ``steps``."""
    max_steps: int = 0
    """The most steps ``steps_per_frame`` may ask for; 0: no limit."""
    patch_size: int = 64
    """Rays per step form a patch_size x patch_size patch (the paper's 64 x 64)."""
    patch_scale_max: int = 0
    """Largest pixel stride of a patch (random 1..max per step); 0: image_size // patch_size."""
    head_patch_fraction: float = 0.8
    """Share of patches centred on a random head pixel (the rest anywhere in the frame)."""
    encoding: EncodingKind = "gaussian"
    """Landmark encoding (Table III): gaussian (Eq. 8a), gaussian_no_depth, keypoint (Eq. 7),
    posenc (gamma of the flattened landmarks) or mlp."""
    gaussian_scale: float = 0.05
    """Initial standard deviation of every landmark Gaussian (and Eq. 7's alpha), head units."""
    gaussian_cutoff: float = 3.5
    """Gaussian weights are truncated beyond this many standard deviations (exp(-6.1) = 0.2 %)."""
    posenc_frequencies: int = 4
    """Frequencies of gamma(.) for the "posenc" encoding."""
    grid_levels: int = 16
    """Hash grid levels (authors: 16)."""
    grid_features: int = 2
    """Features per hash grid level (authors: 2)."""
    grid_log2_table_size: int = 16
    """log2 of the hash table size per level (authors: 16)."""
    grid_base_resolution: int = 16
    """Coarsest hash grid resolution over the head box (authors: 16)."""
    grid_max_resolution: int = 2048
    """Finest hash grid resolution over the head box (authors: 2048)."""
    grid_implementation: Literal["tcnn", "torch"] = "tcnn"
    """Hash grid backend: tiny-cuda-nn when it imports on CUDA, else the torch reference."""
    density_bias: float = 3.0
    """Initial density is about e^density_bias inside the visual hull, so that rays stop near
    the hull's surface from the first step instead of crossing the whole box."""
    mlp_width: int = 64
    """Width of the density and colour MLPs (two hidden layers each)."""
    geo_features: int = 15
    """Geometry features passed from the density MLP to the colour MLP."""
    occupancy_resolution: int = 128
    """Cells per axis of the occupancy grid over the head box (authors: 128)."""
    occupancy_interval: int = 16
    """Steps between occupancy grid updates."""
    occupancy_alpha: float = 0.01
    """A cell is occupied when one ray step through it is at least this opaque."""
    bake_frames: int = 24
    """Training frames (spanning mouth and eye openings) whose maximum density the final grid holds."""
    step_size: float = 0.0075
    """Ray sampling step, head units (10 cm)."""
    stop_transmittance: float = 1e-4
    """Early ray termination threshold when rendering."""
    train_stop_transmittance: float = 1e-3
    """Early ray termination threshold during training."""
    march_chunk: int = 8
    """Samples per ray in the first round between early-termination checks (then doubling up to
    16). 8 rather than 4: a training step on German_20s then marches in fewer rounds and
    evaluates fewer samples in all (21.3 against 22.0 thousand; the rounds run 8 + 16 + 16 …
    against 4 + 8 + 16 …), about 10 % faster a step on 2 CPU cores."""
    fast_render: bool = True
    """Render (not train) with :mod:`.fast_march` (samples made as the rays advance, colour only
    where it shows, a sparse landmark code); False: the reference path. Both give the same
    image to a small fraction of one 8-bit level (tests/test_head_fast_march.py)."""
    lr_grid: float = 5e-3
    """Adam learning rate of the hash grid and the Gaussian parameters (authors: 5e-3)."""
    lr_mlp: float = 5e-4
    """Adam learning rate of the MLPs (authors: 5e-4)."""
    lr_final_fraction: float = 0.1
    """Learning rates decay exponentially to this fraction at the last step."""
    lambda_pix: float = 10.0
    """lambda_1 of Eq. 9: weight of the pixel loss."""
    lambda_alpha: float = 5.0
    """lambda_2 of Eq. 9: weight of the opacity cross-entropy against the head mask."""
    lambda_vgg: float = 0.05
    """lambda_3 of Eq. 9: weight of the VGG term inside the pixel loss (off without weights)."""
    eye_weight: float = 1.0
    """Scale of Eq. 9's e^(1-r)-weighted eye-region pixel loss (1: as in the paper)."""
    eye_patch_fraction: float = 0.25
    """Share of patches centred on an eye at stride 1 (the eye fine-tuning of the paper's
    training, spread over the run). Their frames are drawn by ``eye_closed_share``."""
    eye_closed_share: float = 0.5
    """Share of the eye patches taken from frames where that eye is closed (r below
    ``eye_closed_ratio``). Blinks are a few per cent of the frames; drawn uniformly they are
    too rare to learn, and the head renders open eyes whatever the eye landmarks say."""
    eye_closed_ratio: float = 0.5
    """Eye-closure ratio r below which an eye counts as closed for ``eye_closed_share``."""
    mouth_patch_fraction: float = 0.0
    """Share of patches centred on the mouth at stride 1, the counterpart of the eye patches
    (0: none, as in the paper). Their frames are drawn by ``mouth_open_share``."""
    mouth_open_share: float = 0.5
    """Share of the mouth patches taken from the frames with the most open mouths (tracked
    opening at or above its ``mouth_open_quantile``). Speech keeps the lips nearly closed most
    of the time: drawn uniformly, the open mouth and its interior are too rare to learn, and
    the head renders a dark line between the lips whatever the landmarks say."""
    mouth_open_quantile: float = 0.75
    """Quantile of the training frames' mouth opening from which a mouth counts as open."""
    region_image_size: int = 0
    """Side in pixels of the frames the eye and mouth patches come from (0: ``image_size``).
    Above ``image_size`` (at most the subject's size) these stride-1 patches see the lips and
    eyelids at that finer resolution, so a head trained at 128² still learns an inner-lip gap
    of a few pixels that 128² reduces to one; renders above 128² then show it."""
    mouth_weight: float = 0.0
    """Weight of a smooth-L1 term over the pixels inside the outer lips (not part of Eq. 9)."""
    lambda_depth_var: float = 0.0
    """Weight of a term outside Eq. 9: the variance of each head ray's termination distance.
    It makes surfaces compact, so rays stop after fewer samples (faster training and rendering
    on CPU); 0 leaves Eq. 9 as in the paper."""
    smooth_l1_beta: float = 0.1
    """Transition point of the smooth-L1 loss, intensity units in [0, 1]."""
    face_mask_fraction: float = 0.1
    """Early part of training during which rays outside the face mask fade in (mask fades out)."""
    checkpoint_every: int = 1000
    """Save weights, occupancy grid and optimizer state every this many steps (and at the end)."""
    preview_every: int = 250
    """Attach a preview image (render | truth) to progress every this many steps and at the end
    (0: none; the command line, which shows none, trains without)."""
    seed: int = 0
    """Seed of the initialisation and of the patch sampler."""

    @property
    def grid(self) -> HashGridConfig:
        return HashGridConfig(
            levels=self.grid_levels,
            features=self.grid_features,
            log2_table_size=self.grid_log2_table_size,
            base_resolution=self.grid_base_resolution,
            max_resolution=self.grid_max_resolution,
            implementation=self.grid_implementation,
        )

    def march(self, training: bool = False) -> MarchSettings:
        stop = self.train_stop_transmittance if training else self.stop_transmittance
        return MarchSettings(
            step=self.step_size,
            stop=stop,
            chunk=self.march_chunk,
            fast=self.fast_render and not training,
        )

    @property
    def occupancy_threshold(self) -> float:
        """Density at which one ray step is ``occupancy_alpha`` opaque."""
        return -math.log(1.0 - self.occupancy_alpha) / self.step_size

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Self:
        """As :meth:`PartConfig.from_preset`; ``steps`` given here is exactly that many steps
        (``steps_per_frame`` 0 unless given too)."""
        if "steps" in overrides:
            overrides.setdefault("steps_per_frame", 0.0)
        return super().from_preset(name, **overrides)

    def steps_for(self, frames: int) -> int:
        """The steps of a run on ``frames`` training frames (``steps``, or more for a long clip
        with ``steps_per_frame``)."""
        wanted = max(self.steps, round(self.steps_per_frame * frames))
        return min(wanted, self.max_steps) if self.max_steps else wanted

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        if self.encoding not in ENCODING_KINDS:
            raise ConfigError(f"encoding {self.encoding!r} is not one of {ENCODING_KINDS}")
        if self.image_size < 16 or self.patch_size < 4:
            raise ConfigError("image_size must be >= 16 and patch_size >= 4")
        if self.steps < 1:
            raise ConfigError(f"head steps must be at least 1, got {self.steps}")
        if self.steps_per_frame < 0 or self.max_steps < 0:
            raise ConfigError("head steps_per_frame and max_steps cannot be negative (0: off)")
        if self.max_steps and self.max_steps < self.steps:
            raise ConfigError(
                f"head max_steps {self.max_steps} is below steps {self.steps}: raise it, or 0"
            )
        if self.step_size <= 0 or self.occupancy_resolution < 4:
            raise ConfigError("step_size > 0 and occupancy_resolution >= 4 required")
        for name in ("checkpoint_every", "occupancy_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"head {name} must be at least 1, got {getattr(self, name)}")
        if self.preview_every < 0:
            raise ConfigError(
                f"head preview_every {self.preview_every} cannot be negative (0: off)"
            )
        if self.grid_implementation not in ("tcnn", "torch"):
            raise ConfigError(f"grid_implementation {self.grid_implementation!r}: tcnn or torch")
        if not 0 <= self.face_mask_fraction <= 1 or not 0 <= self.head_patch_fraction <= 1:
            raise ConfigError("face_mask_fraction and head_patch_fraction must lie in [0, 1]")
        shares = (
            "eye_patch_fraction",
            "eye_closed_share",
            "eye_closed_ratio",
            "mouth_patch_fraction",
            "mouth_open_share",
            "mouth_open_quantile",
        )
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.eye_patch_fraction + self.mouth_patch_fraction > 1:
            raise ConfigError(
                f"eye_patch_fraction + mouth_patch_fraction is "
                f"{self.eye_patch_fraction + self.mouth_patch_fraction:g}; they share the "
                "patches, so lower one of them to make the sum at most 1"
            )
        if self.region_image_size < 0:
            raise ConfigError(
                f"region_image_size must be 0 (image_size) or a side in pixels, "
                f"got {self.region_image_size}"
            )
        for name in ("eye_weight", "mouth_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
