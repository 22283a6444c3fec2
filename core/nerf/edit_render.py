"""Edit-aware re-rendering of one frame: after an α edit, only the rays the edit can reach.

Everything that does not depend on the landmarks is kept per frame: the rays, every occupied
sample along them (the occupancy grid covers all training conditions, so the samples do not
depend on the landmarks), the hash features of the samples already evaluated, and the rendered
head (colour, opacity, depth per ray). The per-point landmark encodings are truncated at each
landmark's reach (:meth:`LandmarkEncoding.reach`), so moving landmark k changes the field only
within that radius of its old or its new position. :meth:`EditRenderer.render` finds the rays
with a sample there, marches just those (reusing cached hash features, computing and caching
the missing ones) and writes them into the cached head image. Rays it does not touch are exactly
what a full re-render computes for them; the touched ones are marched by the same code, so the
result equals a full re-render up to float rounding. Per-frame encodings (``posenc``, ``mlp``)
change every point, and any landmark change then re-renders the whole frame.
"""

from __future__ import annotations

import numpy as np
import torch

from .field import HeadField
from .occupancy import OccupancyGrid
from .rays import camera_rays, pixel_centers
from .renderer import (
    HeadImage,
    MarchSettings,
    RenderOutput,
    compose,
    field_evaluator,
    march,
    sample_rays_chunked,
)


class EditRenderer:
    """Renders one frame (``K`` at ``size``, head-to-camera ``pose``) under changing landmarks."""

    def __init__(
        self,
        field: HeadField,
        grid: OccupancyGrid,
        K: np.ndarray,
        pose: np.ndarray,
        background: torch.Tensor,
        settings: MarchSettings,
    ) -> None:
        self.field, self.grid, self.settings = field, grid, settings
        self.size = int(background.shape[0])
        self.background = background  # [H, W, 3] in [0, 1]
        dev = background.device
        self.origins, self.dirs = camera_rays(K, pose, pixel_centers(self.size, dev))
        self.rotation = torch.as_tensor(np.asarray(pose)[:3, :3], dtype=torch.float32, device=dev)
        with torch.no_grad():
            self.samples = sample_rays_chunked(
                self.origins, self.dirs, field.bbox, settings.step, grid, settings.ray_chunk
            )
            s = self.samples
            self.points = self.origins[s.ray] + s.t[:, None] * self.dirs[s.ray]  # [S, 3]
        self.slot = torch.full((len(s.t),), -1, dtype=torch.long, device=dev)  # [S] cache row
        self.feature_rows: list[torch.Tensor] = []
        self.num_cached = 0
        self._feature_table: torch.Tensor | None = None
        self.landmarks: torch.Tensor | None = None
        self.result: RenderOutput | None = None
        self.last_rays = 0
        """Rays marched by the latest :meth:`render` call."""

    # -- hash feature cache --------------------------------------------------------------------
    def _features(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        missing = ids[self.slot[ids] < 0]
        if len(missing):
            feats = self.field.position_features(self.points[missing]).float()
            self.slot[missing] = torch.arange(
                self.num_cached, self.num_cached + len(missing), device=ids.device
            )
            self.num_cached += len(missing)
            self.feature_rows.append(feats)
            self._feature_table = None
        if self._feature_table is None:
            self._feature_table = torch.cat(self.feature_rows)
            self.feature_rows = [self._feature_table]
        return self._feature_table[self.slot[ids]]

    @property
    def cached_features(self) -> int:
        """Samples whose hash features are cached."""
        return self.num_cached

    # -- rendering -----------------------------------------------------------------------------
    def affected_rays(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor | None:
        """Rays [A] whose samples lie within reach of a changed landmark; None: all rays."""
        reach = self.field.encoding.reach()
        if reach is None:
            return None
        changed = (old != new).any(dim=1).nonzero(as_tuple=True)[0]
        if len(changed) == 0:
            return torch.zeros(0, dtype=torch.long, device=old.device)
        centres = torch.cat([old[changed], new[changed]])  # [2C, 3]
        radius = reach[changed].repeat(2)  # [2C]
        lo = (centres - radius[:, None]).amin(0)
        hi = (centres + radius[:, None]).amax(0)
        cand = ((self.points > lo) & (self.points < hi)).all(dim=1).nonzero(as_tuple=True)[0]
        if len(cand) == 0:
            return cand
        d2 = torch.cdist(
            self.points[cand], centres, compute_mode="donot_use_mm_for_euclid_dist"
        ).square()
        hit = cand[(d2 < radius.square()).any(dim=1)]
        return torch.unique(self.samples.ray[hit])

    @torch.no_grad()
    def render(self, landmarks: torch.Tensor) -> HeadImage:
        """The frame under ``landmarks`` [K, 3], re-marching only the rays that changed."""
        landmarks = landmarks.to(self.origins.device, torch.float32)
        rays = None
        if self.result is not None and self.landmarks is not None:
            rays = self.affected_rays(self.landmarks, landmarks)
        evaluate = field_evaluator(
            self.field,
            self.origins,
            self.dirs,
            self.samples,
            landmarks,
            self.rotation,
            feats=self._features,
        )
        s = self.settings
        if rays is None or self.result is None:
            self.result = march(
                evaluate, self.samples, s.step, s.stop, s.chunk, max_chunk=s.max_chunk
            )
            self.last_rays = int((self.samples.count > 0).sum())
        elif len(rays):
            part = march(
                evaluate, self.samples, s.step, s.stop, s.chunk, rays=rays, max_chunk=s.max_chunk
            )
            self.result.rgb[rays] = part.rgb[rays]
            self.result.opacity[rays] = part.opacity[rays]
            self.result.depth[rays] = part.depth[rays]
            self.result.depth_var[rays] = part.depth_var[rays]
            self.last_rays = len(rays)
        else:
            self.last_rays = 0
        self.landmarks = landmarks.clone()
        return compose(self.result, self.background, self.size)
