"""The training presets, named in one place.

``preview`` trains in minutes on a CPU at 128² (head and torso); ``paper`` follows the paper's
settings at 512² and wants a GPU. Each part's config dataclass takes its overrides from here
(``Config.from_preset(name)``); a part lists only the fields it changes.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

PRESET_NAMES = ("preview", "paper")

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "preview": {
        "stage1": {
            "steps": 400,
            "batch": 2,
            "lr": 1e-3,
            "warmup": 50,
            "rollout_passes": 1,
            "val_every": 100,
            "save_every": 100,
        },
        "head": {
            "image_size": 128,
            "steps": 3000,
            "patch_size": 32,
            "grid_levels": 12,
            "grid_log2_table_size": 15,
            "grid_max_resolution": 512,
            "occupancy_resolution": 64,
            "occupancy_interval": 32,
            "step_size": 0.02,
            "bake_frames": 16,
            "lr_grid": 1e-2,
            "lr_mlp": 5e-3,
            "lambda_depth_var": 1.0,
            "checkpoint_every": 500,
        },
        "torso": {"image_size": 128, "base_width": 32, "steps": 300},
    },
    "paper": {
        "stage1": {"steps": 20000},
        "head": {"image_size": 512, "steps": 100_000},
        "torso": {"image_size": 512, "base_width": 64, "steps": 50_000},
    },
}

C = TypeVar("C")


def apply_preset(config: C, part: str, preset: str) -> C:
    """``config`` (a dataclass instance) with the ``preset``'s overrides for ``part`` applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    names = {f.name for f in fields(config)}  # type: ignore[arg-type]
    overrides = {k: v for k, v in PRESETS[preset].get(part, {}).items() if k in names}
    return replace(config, **overrides)  # type: ignore[type-var]
