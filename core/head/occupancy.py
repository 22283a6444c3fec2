"""Occupancy grid over the head box: which cells can hold density, so rays skip empty space.

The grid keeps, per cell of a G^3 lattice over the head box, a running maximum of the density
measured there (decayed a little at each update, as in Instant-NGP) and a ``hull`` mask of cells
that may ever be occupied. The hull starts as the visual hull of the head masks (a cell that
projects outside the head mask in most training frames can hold no head) and never grows. The
density is measured under the landmark conditions of many training frames, and
:meth:`OccupancyGrid.bake` finishes with the maximum over a set of training frames, so the
bitfield covers every training expression; the bitfield is dilated by one cell so that edits a
little beyond the training range still find their samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DensityFn = Callable[[torch.Tensor], torch.Tensor]
"""Density [N] at head-frame points [N, 3] under one landmark condition."""


class OccupancyGrid(nn.Module):
    """A G^3 occupancy grid over ``bbox`` [2, 3]; its state is saved with the model."""

    bbox: torch.Tensor
    density: torch.Tensor
    hull: torch.Tensor
    bitfield: torch.Tensor

    def __init__(self, bbox: torch.Tensor, resolution: int = 64, decay: float = 0.95) -> None:
        super().__init__()
        self.resolution = resolution
        self.decay = decay
        g = resolution
        self.register_buffer(
            "bbox", torch.as_tensor(bbox, dtype=torch.float32).reshape(2, 3).clone()
        )
        self.register_buffer("density", torch.zeros(g, g, g))
        self.register_buffer("hull", torch.ones(g, g, g, dtype=torch.bool))
        self.register_buffer("bitfield", torch.ones(g, g, g, dtype=torch.bool))

    @property
    def cell_size(self) -> torch.Tensor:
        return (self.bbox[1] - self.bbox[0]) / self.resolution

    def cell_centers(self) -> torch.Tensor:
        """Head-frame centres of all cells [G^3, 3], index order (i, j, k) = (x, y, z)."""
        c = torch.arange(self.resolution, dtype=torch.float32, device=self.bbox.device) + 0.5
        ii, jj, kk = torch.meshgrid(c, c, c, indexing="ij")
        unit = torch.stack([ii, jj, kk], dim=-1).reshape(-1, 3) / self.resolution
        return self.bbox[0] + unit * (self.bbox[1] - self.bbox[0])

    def cell_index(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat cell index [N] of points ``x`` [N, 3] and whether they lie inside the box [N]."""
        unit = (x - self.bbox[0]) / (self.bbox[1] - self.bbox[0])
        inside = ((unit >= 0) & (unit < 1)).all(dim=-1)
        ijk = (unit * self.resolution).long().clamp(0, self.resolution - 1)
        g = self.resolution
        return (ijk[:, 0] * g + ijk[:, 1]) * g + ijk[:, 2], inside

    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        """Whether points ``x`` [N, 3] fall in occupied cells [N] (False outside the box)."""
        idx, inside = self.cell_index(x)
        return self.bitfield.reshape(-1)[idx] & inside

    def carve(
        self,
        masks: Sequence[np.ndarray],
        K: np.ndarray,
        poses: Sequence[np.ndarray],
        keep_fraction: float = 0.9,
    ) -> None:
        """Visual hull: keep cells inside the (dilated) head mask in >= ``keep_fraction`` of views.

        ``masks`` are boolean head masks [H, W] at the resolution of ``K``; ``poses`` head-to-camera.
        A view where the cell projects outside the image or behind the camera does not vote.
        """
        import cv2

        centers = self.cell_centers().cpu().numpy().astype(np.float64)
        inside = np.zeros(len(centers), np.int32)
        votes = np.zeros(len(centers), np.int32)
        cell = float(self.cell_size.max())
        for mask, pose in zip(masks, poses):
            cam = centers @ pose[:3, :3].T + pose[:3, 3]
            z = cam[:, 2]
            ok = z > 1e-3
            uv = cam[:, :2] / np.where(ok, z, 1.0)[:, None] * np.diag(K)[:2] + K[:2, 2]
            h, w = mask.shape
            # Dilate by the projected cell size so that a cell touching the mask survives.
            radius = int(np.ceil(cell * K[0, 0] / max(float(np.median(z[ok])), 1e-3))) + 2
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
            grown = cv2.dilate(mask.astype(np.uint8), kernel) > 0
            col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
            ok &= (col >= 0) & (col < w) & (row >= 0) & (row < h)
            votes += ok
            inside[ok] += grown[row[ok], col[ok]]
        keep = (votes == 0) | (inside >= keep_fraction * votes)
        g = self.resolution
        self.hull.copy_(torch.from_numpy(keep.reshape(g, g, g)).to(self.hull.device))
        self.bitfield.copy_(self.hull)

    @torch.no_grad()
    def update(
        self,
        density_fn: DensityFn,
        threshold: float,
        jitter: bool = True,
        decay: bool = True,
        cells: torch.Tensor | None = None,
        chunk: int = 65536,
    ) -> None:
        """Measure ``density_fn`` in hull cells (at a random point of each) and refresh the bits.

        ``cells`` [G^3] bool limits the measurement to those cells (default: the whole hull).
        """
        flat = self.density.reshape(-1)
        if decay:
            flat.mul_(self.decay)
        pick = self.hull.reshape(-1) if cells is None else cells.reshape(-1) & self.hull.reshape(-1)
        idx_all = pick.nonzero(as_tuple=True)[0]
        centers = self.cell_centers()[idx_all]
        if jitter:
            centers = centers + (torch.rand_like(centers) - 0.5) * self.cell_size
        for idx, pts in zip(idx_all.split(chunk), centers.split(chunk)):
            flat[idx] = torch.maximum(flat[idx], density_fn(pts).float())
        self.refresh(threshold)

    @torch.no_grad()
    def bake(
        self,
        density_fns: Sequence[DensityFn],
        threshold: float,
        cells: Sequence[torch.Tensor | None] | None = None,
    ) -> None:
        """Replace the density by its maximum over ``density_fns`` (one per condition) at the
        cell centres; ``cells[i]`` (bool [G^3] or None for all) limits where fn i is measured."""
        self.density.zero_()
        for i, fn in enumerate(density_fns):
            region = cells[i] if cells is not None else None
            self.update(fn, threshold, jitter=False, decay=False, cells=region)

    @torch.no_grad()
    def refresh(self, threshold: float) -> None:
        """Bitfield = hull cells whose density exceeds ``threshold``, dilated by one cell."""
        hull = self.hull
        mean = float(self.density[hull].mean()) if bool(hull.any()) else 0.0
        occ = (self.density > min(threshold, mean)) & hull
        grown = F.max_pool3d(occ[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
        self.bitfield.copy_(grown & hull)

    @property
    def occupancy(self) -> float:
        """Fraction of cells marked occupied."""
        return float(self.bitfield.float().mean())
