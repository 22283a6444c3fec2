"""A trained head: field + occupancy grid + config, saved as safetensors + JSON.

model = HeadModel.load(subject.model_dir("head"), device="cpu")
image = model.render(K, pose, landmarks, background)        # K at background's size
editor = model.editor(K, pose, background)                   # fast re-render after α edits
image = editor.render(edited_landmarks)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_module, save_model
from ..training import resolve_device
from .config import HeadConfig
from .edit_render import EditRenderer
from .field import HeadField
from .landmark_encoding import LandmarkEncoding
from .occupancy import DensityFn, OccupancyGrid
from .renderer import HeadImage, render_image

KIND = "head"


class HeadModel(nn.Module):
    """The head NeRF of one subject in its head box ``bbox`` [2, 3] (head units)."""

    def __init__(
        self,
        config: HeadConfig,
        bbox: np.ndarray | torch.Tensor,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        dev = resolve_device(device)
        self.config = config
        box = torch.as_tensor(np.asarray(bbox, dtype=np.float32)).reshape(2, 3)
        encoding = LandmarkEncoding(
            config.encoding,
            scale_init=config.gaussian_scale,
            cutoff=config.gaussian_cutoff,
            posenc_frequencies=config.posenc_frequencies,
            mlp_width=config.mlp_width,
        )
        self.field = HeadField(
            box,
            config.grid,
            encoding,
            config.mlp_width,
            config.geo_features,
            device=dev,
            density_bias=config.density_bias,
        )
        self.grid = OccupancyGrid(box.clone(), config.occupancy_resolution).to(dev)

    @property
    def device(self) -> torch.device:
        return self.field.bbox.device

    def density_fn(self, landmarks: torch.Tensor, cam_rotation: torch.Tensor) -> DensityFn:
        """Density [N] at head-frame points [N, 3] under one frame's landmarks and rotation."""
        lms = torch.as_tensor(landmarks, dtype=torch.float32, device=self.device)
        rot = torch.as_tensor(cam_rotation, dtype=torch.float32, device=self.device)

        def fn(x: torch.Tensor) -> torch.Tensor:
            feats = self.field.position_features(x)
            return self.field.density(x, feats, lms, rot)[0]

        return fn

    @torch.no_grad()
    def bake_grid(self, landmarks: torch.Tensor, rotations: torch.Tensor, threshold: float) -> None:
        """Occupancy = max density over the conditions ``landmarks`` [F, K, 3] / ``rotations``
        [F, 3, 3], at the cell centres.

        With a truncated per-point encoding the field differs from its landmark-free value only
        within reach of a landmark, so the landmark-free field is measured once over the whole
        grid and each condition only in the cells within reach of its landmarks (a bound on
        the exact maximum from above: never fewer occupied cells).
        """
        reach = self.field.encoding.reach()
        lms = torch.as_tensor(landmarks, dtype=torch.float32, device=self.device)
        rots = torch.as_tensor(rotations, dtype=torch.float32, device=self.device)
        if reach is None:
            fns = [self.density_fn(lm, rot) for lm, rot in zip(lms, rots)]
            self.grid.bake(fns, threshold)
            return
        far = torch.full_like(lms[0], 1e4)  # landmarks out of reach: the landmark-free field
        fns = [self.density_fn(far, rots[0])]
        cells: list[torch.Tensor | None] = [None]
        centers = self.grid.cell_centers()
        slack = 0.5 * float(self.grid.cell_size.norm())
        for lm, rot in zip(lms, rots):
            near = torch.zeros(len(centers), dtype=torch.bool, device=self.device)
            for part in torch.arange(len(centers), device=self.device).split(65536):
                d = torch.cdist(centers[part], lm)
                near[part] = (d < reach + slack).any(dim=1)
            fns.append(self.density_fn(lm, rot))
            cells.append(near)
        self.grid.bake(fns, threshold, cells)

    def render(
        self,
        K: np.ndarray,
        pose: np.ndarray,
        landmarks: np.ndarray | torch.Tensor,
        background: torch.Tensor,
    ) -> HeadImage:
        """Render one frame over ``background`` [S, S, 3] (float in [0, 1]); ``K`` at size S."""
        lms = torch.as_tensor(np.asarray(landmarks, np.float32), device=self.device)
        return render_image(
            self.field, self.grid, K, pose, lms, background.to(self.device), self.config.march()
        )

    def editor(self, K: np.ndarray, pose: np.ndarray, background: torch.Tensor) -> EditRenderer:
        """An :class:`EditRenderer` of one frame (cache of its landmark-free work)."""
        return EditRenderer(
            self.field, self.grid, K, pose, background.to(self.device), self.config.march()
        )

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_meta(self) -> dict[str, Any]:
        """What :meth:`load` needs besides the weights and config (the head's box)."""
        return {"bbox": self.field.bbox.tolist()}

    def save(self, folder: str | Path, meta: dict[str, Any] | None = None) -> None:
        data = self.checkpoint_meta() | dict(meta or {})
        save_model(folder, KIND, self.state_dict(), self.config.to_dict(), data)

    @classmethod
    def load(
        cls,
        folder: str | Path,
        device: str | torch.device = "cpu",
        config: HeadConfig | None = None,
    ) -> HeadModel:
        """The model saved in ``folder`` (its own config unless ``config`` is given)."""

        def build(cfg: HeadConfig, state: Mapping[str, torch.Tensor], meta: dict) -> HeadModel:
            bbox = meta.get("bbox")
            if bbox is None:  # older checkpoints: the box is also a buffer of the field
                bbox = state["field.bbox"].numpy()
            return cls(cfg, np.asarray(bbox, np.float32), device)

        return load_module(folder, KIND, HeadConfig, build, config).eval()
