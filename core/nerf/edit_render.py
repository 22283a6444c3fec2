"""Edit-aware re-rendering of one frame: after an α edit, only the rays the edit can reach.

Everything that does not depend on the landmarks is kept per frame: the rays, every occupied
sample along them (the occupancy grid covers all training conditions, so the samples do not
depend on the landmarks), the hash features of the samples already evaluated, and the rendered
head (colour, opacity, depth and the number of samples marched, per ray).

The per-point landmark encodings are exactly zero outside each landmark's truncation ellipsoid
(:meth:`LandmarkEncoding.ellipsoids`), so moving landmark k changes the field only inside its
ellipsoid at the old and at the new position. A ray can only change if it enters one of those
ellipsoids before the point where its cached march stopped: before that point all its samples
keep their values, so it stops at the same sample with the same colour.
:meth:`EditRenderer.render` intersects the rays with the ellipsoids, marches just the rays that
pass the test (reusing cached hash features, computing and caching missing ones) and writes them
into the cached head image. The result equals a full re-render up to float rounding.
Per-frame encodings (``posenc``, ``mlp``) change every point, and any landmark change then
re-renders the whole frame.
"""

from __future__ import annotations

from collections.abc import Callable

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


class FeatureCache:
    """Hash features of packed samples, filled on demand (amortised O(1) appends)."""

    def __init__(self, num_samples: int, device: torch.device) -> None:
        self.slot = torch.full((num_samples,), -1, dtype=torch.long, device=device)  # [S]
        self.table: torch.Tensor | None = None  # [capacity, F]
        self.size = 0

    def get(
        self, ids: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Features [n, F] of samples ``ids``; ``compute(missing_ids)`` supplies new ones."""
        missing = ids[self.slot[ids] < 0]
        if len(missing):
            missing = torch.unique(missing)
            feats = compute(missing).float()  # [m, F]
            need = self.size + len(missing)
            if self.table is None or need > len(self.table):
                cap = max(need, 2 * (0 if self.table is None else len(self.table)), 4096)
                grown = feats.new_empty(cap, feats.shape[1])
                if self.table is not None:
                    grown[: self.size] = self.table[: self.size]
                self.table = grown
            self.table[self.size : need] = feats
            self.slot[missing] = torch.arange(self.size, need, device=ids.device)
            self.size = need
        assert self.table is not None
        return self.table[self.slot[ids]]


def ray_hits_ellipsoids(
    origins: torch.Tensor,  # [R, 3]
    dirs: torch.Tensor,  # [R, 3]
    centres: torch.Tensor,  # [E, 3]
    rotations: torch.Tensor,  # [E, 3, 3]
    axes: torch.Tensor,  # [E, 3]
    t_min: torch.Tensor,  # [R]
    t_max: torch.Tensor,  # [R]
) -> torch.Tensor:
    """Whether each ray's segment [t_min, t_max] meets any ellipsoid ``|R^T (x - c) / axes| < 1``."""
    hit = torch.zeros(len(origins), dtype=torch.bool, device=origins.device)
    for part in torch.arange(len(origins), device=origins.device).split(8192):
        o = torch.einsum("rd,edf->ref", origins[part], rotations)  # [r, E, 3] R^T o
        o = (o - torch.einsum("ed,edf->ef", centres, rotations)[None]) / axes[None]
        d = torch.einsum("rd,edf->ref", dirs[part], rotations) / axes[None]
        a = (d * d).sum(-1)
        b = (o * d).sum(-1)
        disc = b * b - a * ((o * o).sum(-1) - 1.0)  # [r, E]
        root = disc.clamp_min(0).sqrt()
        enter, leave = (-b - root) / a, (-b + root) / a
        inside = (disc > 0) & (enter <= t_max[part, None]) & (leave >= t_min[part, None])
        hit[part] = inside.any(dim=1)
    return hit


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
        self.head_rays = (s.count > 0).nonzero(as_tuple=True)[0]  # [H] rays with samples
        self.cache = FeatureCache(len(s.t), dev)
        self.landmarks: torch.Tensor | None = None
        self.result: RenderOutput | None = None
        self.last_rays = 0
        """Rays marched by the latest :meth:`render` call."""
        self._memo: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        """The latest :meth:`affected_rays` answer (old, new, rays), valid until ``result``
        changes: a preview asks for the same pair right before :meth:`render` does."""

    def _points(self, ids: torch.Tensor) -> torch.Tensor:
        ray = self.samples.ray[ids]
        return self.origins[ray] + self.samples.t[ids, None] * self.dirs[ray]

    def _features(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.cache.get(ids, lambda m: self.field.position_features(self._points(m)))

    @property
    def cached_features(self) -> int:
        """Samples whose hash features are cached."""
        return self.cache.size

    def affected_rays(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor | None:
        """Rays [A] that changing ``old`` [K, 3] into ``new`` can change; None: all rays."""
        ell = self.field.encoding.ellipsoids()
        if ell is None or self.result is None:
            return None
        memo = self._memo
        if memo is not None and torch.equal(memo[0], old) and torch.equal(memo[1], new):
            return memo[2]
        rays = self._affected(old, new, ell)
        self._memo = (old.clone(), new.clone(), rays)
        return rays

    def _affected(
        self, old: torch.Tensor, new: torch.Tensor, ell: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        assert self.result is not None
        changed = (old != new).any(dim=1).nonzero(as_tuple=True)[0]
        rays = self.head_rays
        if len(changed) == 0 or len(rays) == 0:
            return rays[:0]
        rot, axes = ell
        s = self.samples
        first = s.t[s.start[rays]]
        # Where each ray's cached march stopped (its last evaluated sample).
        last = s.t[s.start[rays] + self.result.steps[rays].clamp_min(1) - 1]
        hit = ray_hits_ellipsoids(
            self.origins[rays],
            self.dirs[rays],
            torch.cat([old[changed], new[changed]]),
            rot[changed].repeat(2, 1, 1),
            axes[changed].repeat(2, 1),
            first - self.settings.step,
            last + self.settings.step,
        )
        return rays[hit]

    @torch.no_grad()
    def render(self, landmarks: torch.Tensor) -> HeadImage:
        """The frame under ``landmarks`` [K, 3], re-marching only the rays that can change."""
        landmarks = landmarks.to(self.origins.device, torch.float32)
        rays = None
        if self.landmarks is not None:
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
        self._memo = None  # the cached march changes below
        if rays is None or self.result is None:
            self.result = march(
                evaluate, self.samples, s.step, s.stop, s.chunk, max_chunk=s.max_chunk
            )
            self.last_rays = len(self.head_rays)
        elif len(rays):
            part = march(
                evaluate, self.samples, s.step, s.stop, s.chunk, rays=rays, max_chunk=s.max_chunk
            )
            for name in ("rgb", "opacity", "depth", "depth_var", "steps"):
                getattr(self.result, name)[rays] = getattr(part, name)[rays]
            self.last_rays = len(rays)
        else:
            self.last_rays = 0
        self.landmarks = landmarks.clone()
        return compose(self.result, self.background, self.size)
