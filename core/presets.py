"""The training presets, named in one place.

``preview`` trains in minutes on a CPU (the head at 256², refined to the subject's 512²; the torso
at 128² for 1200 steps: at 300 it lost to the mean frame, docs/design.md "Torso"); ``paper``
follows the paper's
settings at 512² and wants a GPU. A :class:`Preset` holds, per part, the settings it changes
from that part's config defaults; ``Config.from_preset(name)`` (core.config) applies them and
refuses a setting the config does not have, so a misspelt key is an error, never dropped.
This module imports nothing heavy (no torch), so the GUI can list the presets cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import ConfigError
from .subject import MODEL_PARTS

TRAIN_STAGE: Mapping[str, str] = MappingProxyType({part: f"train {part}" for part in MODEL_PARTS})
"""The :attr:`Progress.stage <talkstudio.core.progress.Progress.stage>` of each part's trainer
(the parts, in training order, are ``core.subject.MODEL_PARTS``)."""
REFINER_CACHE_STAGE = "render head"
"""The stage of the refiner's trainer while it renders the head's inputs, before its steps."""


@dataclass(frozen=True)
class Preset:
    """The settings a named preset changes, per part (the rest keep the config's defaults)."""

    name: str
    stage1: Mapping[str, Any]
    head: Mapping[str, Any]
    torso: Mapping[str, Any]
    refiner: Mapping[str, Any]

    def __post_init__(self) -> None:
        for part in MODEL_PARTS:  # read-only, so a caller cannot change a preset for everyone
            object.__setattr__(self, part, MappingProxyType(dict(getattr(self, part))))

    def overrides(self, part: str) -> Mapping[str, Any]:
        """The settings this preset changes in ``part``'s config."""
        if part not in MODEL_PARTS:
            raise ConfigError(f"unknown part {part!r}; the parts are {', '.join(MODEL_PARTS)}")
        return getattr(self, part)


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "preview": Preset(
            "preview",
            stage1={
                "steps": 400,
                "batch": 2,
                "lr": 1e-3,
                "warmup": 50,
                "rollout_passes": 1,
                "val_every": 100,
                "checkpoint_every": 100,
            },
            head={
                # 256² (refined ×2 to 512²) with a finer hash grid than at 128²: +1.0 dB head
                # PSNR at 512² on German_20s, for about 1.4× the head's training time; 6000 steps
                # rather than 3000: +0.4 dB (docs/design.md "Refiner")
                "image_size": 256,
                "steps": 6000,
                # a long clip trains longer, 9 steps a frame up to 12000 (a 1-min clip): its
                # many frames were each seen 4 times in 6000 steps (docs/design.md "Refiner")
                "steps_per_frame": 9.0,
                "max_steps": 12000,
                "patch_size": 32,
                "grid_levels": 12,
                "grid_log2_table_size": 16,
                "grid_max_resolution": 1024,
                "occupancy_resolution": 64,
                "occupancy_interval": 32,
                "step_size": 0.02,
                "bake_frames": 16,
                "lr_grid": 1e-2,
                "lr_mlp": 5e-3,
                "lambda_depth_var": 1.0,
                "mouth_patch_fraction": 0.25,
                "mouth_open_share": 0.5,
                "mouth_weight": 1.0,
                "checkpoint_every": 500,
            },
            # the head's outline blurred by up to 2 px while training, so the plate behind a
            # rendered head's soft rim is the head's own edge, not the background (docs/design.md
            # "Torso")
            torso={"image_size": 128, "base_width": 32, "steps": 1200, "rim_px": 2.0},
            refiner={
                "steps": 600,
                "cache_frames": 200,
                "base_width": 24,
                "plate": "auto",
                "mouth_reference": True,
            },
        ),
        "paper": Preset(
            "paper",
            stage1={"steps": 20000},
            head={"image_size": 512, "steps": 100_000},
            torso={"image_size": 512, "base_width": 64, "steps": 50_000},
            refiner={
                "steps": 20_000,
                "base_width": 48,
                "up_width": 32,
                "batch_size": 8,
                "plate": "auto",
                "mouth_reference": True,
            },
        ),
    }
)

PRESET_NAMES = tuple(PRESETS)


def preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a :class:`ConfigError` listing the names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}"
        ) from None
