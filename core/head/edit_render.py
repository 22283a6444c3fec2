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
pass the test and writes them into the cached head image. Along those rays the field values (σ,
colour) of the current landmarks are cached too: only the samples between a ray's first entry
into and last exit from the moved ellipsoids go through the field again (with cached hash
features), and for them only the moved landmarks are encoded: the first density layer is linear
in the per-landmark code blocks, so its part from the hash features and the unmoved landmarks
is kept per sample while further edits move the same landmarks (a slider drag).
The result equals a full re-render up to float rounding.
Per-frame encodings (``posenc``, ``mlp``) change every point, and any landmark change then
re-renders the whole frame.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .field import HeadField
from .occupancy import OccupancyGrid
from .rays import camera_rays, pixel_centers, ray_box
from .renderer import (
    HeadImage,
    MarchSettings,
    RenderOutput,
    _autocast,
    compose,
    field_evaluator,
    march,
    sample_rays_chunked,
)


class FeatureCache:
    """Per-sample rows (hash features; field values) of packed samples, filled on demand
    (amortised O(1) appends). Rows marked stale by :meth:`invalidate` are recomputed in place."""

    def __init__(self, num_samples: int, device: torch.device) -> None:
        self.slot = torch.full((num_samples,), -1, dtype=torch.long, device=device)  # [S]
        self.stale = torch.zeros(num_samples, dtype=torch.bool, device=device)  # [S]
        self.table: torch.Tensor | None = None  # [capacity, F]
        self.size = 0

    def invalidate(self, ids: torch.Tensor | None = None) -> None:
        """Mark the rows of samples ``ids`` (all when None) for recomputation."""
        if ids is None:
            self.stale.copy_(self.slot >= 0)
        elif len(ids):
            self.stale[ids] = self.slot[ids] >= 0

    def get(
        self, ids: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Rows [n, F] of samples ``ids``; ``compute(ids)`` supplies missing and stale ones.

        ``ids`` should not repeat (a march round's samples do not): a repeated missing sample
        would get two rows, both right, one of them never read again."""
        slot = self.slot[ids]
        todo = ids[(slot < 0) | self.stale[ids]]
        if len(todo):
            rows = compute(todo).float()  # [m, F]
            fresh = self.slot[todo] < 0
            missing = todo[fresh]
            need = self.size + len(missing)
            if self.table is None or need > len(self.table):
                cap = max(need, 2 * (0 if self.table is None else len(self.table)), 4096)
                grown = rows.new_empty(cap, rows.shape[1])
                if self.table is not None:
                    grown[: self.size] = self.table[: self.size]
                self.table = grown
            self.slot[missing] = torch.arange(self.size, need, device=ids.device)
            self.size = need
            self.table[self.slot[todo]] = rows
            self.stale[todo] = False
            slot = self.slot[ids]
        assert self.table is not None
        return self.table[slot]


def ray_ellipsoid_spans(
    origins: torch.Tensor,  # [R, 3]
    dirs: torch.Tensor,  # [R, 3]
    centres: torch.Tensor,  # [E, 3]
    rotations: torch.Tensor,  # [E, 3, 3]
    axes: torch.Tensor,  # [E, 3]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where rays cross the ellipsoids ``|R^T (x - c) / axes| < 1``: (ray ids [C], enter [C, E],
    leave [C, E]) for the rays that meet the box around the ellipsoids' bounding spheres (a slab
    test answers the others); enter = +inf and leave = -inf where a ray misses an ellipsoid."""
    dev = origins.device
    if len(centres) == 0 or len(origins) == 0:
        empty = torch.zeros(0, len(centres), device=dev)
        return torch.zeros(0, dtype=torch.long, device=dev), empty, empty
    radius = axes.amax(dim=1, keepdim=True)  # [E, 1]
    lo, hi = (centres - radius).amin(0), (centres + radius).amax(0)  # [3]
    near, far = ray_box(origins, dirs, torch.stack([lo, hi]))
    cand = (near < far).nonzero(as_tuple=True)[0]
    # Ray x = o + t d meets ellipsoid e where (x - c)^T A (x - c) = 1, A = R diag(axes^-2) R^T:
    # qa t^2 + 2 qb t + qc = 0. Each coefficient is a small matrix product over all rays and
    # ellipsoids at once, with positions taken from the first ray's origin (a pinhole camera's
    # rays share it, and then the origin terms vanish).
    a = (rotations / axes[:, None, :].square()) @ rotations.transpose(1, 2)  # [E, 3, 3]
    base = origins[0]
    c = centres - base  # [E, 3]
    ac = (a @ c[:, :, None])[..., 0]  # [E, 3]
    sym = torch.stack(
        [a[:, 0, 0], a[:, 1, 1], a[:, 2, 2], 2 * a[:, 0, 1], 2 * a[:, 0, 2], 2 * a[:, 1, 2]], 1
    )  # [E, 6] on the quadratic monomials
    shared = bool((origins == base).all())
    cc = (c * ac).sum(1) - 1.0  # [E]
    enters, leaves = [], []
    for part in cand.split(8192):
        d = dirs[part]
        qa = _quadratic_monomials(d) @ sym.T  # [r, E]
        qb = -(d @ ac.T)
        qc = cc[None].expand_as(qa)
        if not shared:
            o = origins[part] - base
            pairs = (d[:, :, None] * o[:, None, :]).reshape(len(part), 9)  # d_i o_j
            qb = qb + pairs @ a.reshape(len(a), 9).T
            qc = qc + _quadratic_monomials(o) @ sym.T - 2 * (o @ ac.T)
        disc = qb * qb - qa * qc
        root = disc.clamp_min(0).sqrt()
        meets = disc > 0
        enters.append(torch.where(meets, (-qb - root) / qa, float("inf")))
        leaves.append(torch.where(meets, (-qb + root) / qa, float("-inf")))
    return cand, torch.cat(enters), torch.cat(leaves)


def _quadratic_monomials(v: torch.Tensor) -> torch.Tensor:
    """[x^2, y^2, z^2, xy, xz, yz] of vectors [n, 3] -> [n, 6]."""
    x, y, z = v.unbind(-1)
    return torch.stack([x * x, y * y, z * z, x * y, x * z, y * z], -1)


def segment_hits(
    cand: torch.Tensor,
    enter: torch.Tensor,
    leave: torch.Tensor,
    t_min: torch.Tensor,
    t_max: torch.Tensor,
    num_rays: int,
) -> torch.Tensor:
    """[num_rays] bool: whether ray i's segment [t_min[i], t_max[i]] meets any ellipsoid, from
    the :func:`ray_ellipsoid_spans` answer (cand, enter, leave) for those rays."""
    hit = torch.zeros(num_rays, dtype=torch.bool, device=t_min.device)
    inside = (enter <= t_max[cand, None]) & (leave >= t_min[cand, None])
    hit[cand] = inside.any(dim=1)
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
        self.values = FeatureCache(len(s.t), dev)
        """(sigma, r, g, b) of the samples evaluated so far, valid under ``landmarks``: an edit
        marks stale only the samples inside the changed landmarks' ellipsoids."""
        self.rest = FeatureCache(len(s.t), dev)
        """First density layer without the code of the landmarks ``rest_left_out`` (the hash
        features' term and the other landmarks' code) of the samples re-evaluated under an edit
        that moves only those, valid while the others stay at ``rest_landmarks``: dragging a
        slider then encodes only the landmarks it moves."""
        self.rest_left_out: torch.Tensor | None = None  # [K] bool
        self.rest_landmarks: torch.Tensor | None = None  # [K, 3]
        self.landmarks: torch.Tensor | None = None
        self.result: RenderOutput | None = None
        self.last_rays = 0
        """Rays marched by the latest :meth:`render` call."""
        self.last_evaluated = 0
        """Samples the field evaluated in the latest :meth:`render` call (the others marched
        were answered from ``values``)."""
        self._memo: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        """The latest :meth:`affected_rays` answer (old, new, rays, stale samples), valid until
        ``result`` changes: a preview asks for the same pair right before :meth:`render` does."""

    def _points(self, ids: torch.Tensor) -> torch.Tensor:
        ray = self.samples.ray[ids]
        return self.origins[ray] + self.samples.t[ids, None] * self.dirs[ray]

    def _features(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.cache.get(ids, lambda m: self.field.position_features(self._points(m)))

    def affected_rays(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor | None:
        """Rays [A] that changing ``old`` [K, 3] into ``new`` can change; None: all rays."""
        found = self._changes(old, new)
        return None if found is None else found[0]

    def _changes(
        self, old: torch.Tensor, new: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(affected rays, samples whose field values change) for ``old`` -> ``new``."""
        ell = self.field.encoding.ellipsoids()
        if ell is None or self.result is None:
            return None
        memo = self._memo
        if memo is not None and torch.equal(memo[0], old) and torch.equal(memo[1], new):
            return memo[2], memo[3]
        rays, stale = self._affected(old, new, ell)
        self._memo = (old.clone(), new.clone(), rays, stale)
        return rays, stale

    def _affected(
        self, old: torch.Tensor, new: torch.Tensor, ell: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A ray changes if it meets a changed landmark's ellipsoid (old or new position) before
        its cached march stopped; a sample's value changes only if it lies inside one."""
        assert self.result is not None
        changed = (old != new).any(dim=1).nonzero(as_tuple=True)[0]
        rays = self.head_rays
        none = rays[:0]
        if len(changed) == 0 or len(rays) == 0:
            return none, none
        rot, axes = ell
        s = self.samples
        cand, enter, leave = ray_ellipsoid_spans(
            self.origins[rays],
            self.dirs[rays],
            torch.cat([old[changed], new[changed]]),
            rot[changed].repeat(2, 1, 1),
            axes[changed].repeat(2, 1),
        )
        if len(cand) == 0:
            return none, none
        step = self.settings.step
        first = s.t[s.start[rays]]
        # Where each ray's cached march stopped (its last evaluated sample).
        last = s.t[s.start[rays] + self.result.steps[rays].clamp_min(1) - 1]
        hit = segment_hits(cand, enter, leave, first - step, last + step, len(rays))
        # Samples of the crossing rays between the first entry and the last exit (one step of
        # margin for rounding): every sample inside an ellipsoid lies there.
        lo, hi = enter.amin(dim=1) - step, leave.amax(dim=1) + step  # [C]
        crossing = lo < hi
        cray, lo, hi = rays[cand[crossing]], lo[crossing], hi[crossing]
        count = s.count[cray]
        owner = torch.repeat_interleave(torch.arange(len(cray), device=count.device), count)
        rank = (
            torch.arange(len(owner), device=count.device) - (torch.cumsum(count, 0) - count)[owner]
        )
        ids = s.start[cray][owner] + rank
        t = s.t[ids]
        return rays[hit], ids[(t >= lo[owner]) & (t <= hi[owner])]

    def _edit_evaluator(
        self, old: torch.Tensor, new: torch.Tensor
    ) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """(sigma, rgb) of samples under ``new`` landmarks after an edit from ``old``: the first
        layer is :attr:`rest` plus the moved landmarks' code, so only they are encoded."""
        moved = (old != new).any(dim=1)
        left_out, kept_at = self.rest_left_out, self.rest_landmarks
        if (
            left_out is None
            or kept_at is None
            or bool((moved & ~left_out).any())
            or not torch.equal(kept_at[~left_out], new[~left_out])
        ):
            self.rest = FeatureCache(len(self.samples.t), new.device)
            self.rest_left_out, self.rest_landmarks = moved, new.clone()
            left_out = moved
        field, rot, dirs = self.field, self.rotation, self.dirs

        def rest(ids: torch.Tensor) -> torch.Tensor:
            x = self._points(ids)
            return field.first_layer(x, new, rot, ~left_out, feats=self._features(ids, x))

        def evaluate(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self._points(ids)
            with _autocast(x.device):
                first = self.rest.get(ids, rest) + field.first_layer(x, new, rot, left_out)
                sigma, geo = field.density_after(first)
                rgb = field.color(geo, dirs[self.samples.ray[ids]])
            return sigma.float(), rgb.float()

        return evaluate

    @torch.no_grad()
    def render(self, landmarks: torch.Tensor) -> HeadImage:
        """The frame under ``landmarks`` [K, 3], re-marching only the rays that can change."""
        landmarks = landmarks.to(self.origins.device, torch.float32)
        rays = None
        if self.landmarks is not None:
            found = self._changes(self.landmarks, landmarks)
            if found is None:
                self.values.invalidate()
            else:
                rays = found[0]
                self.values.invalidate(found[1])
        if rays is None:
            field_values = field_evaluator(
                self.field,
                self.origins,
                self.dirs,
                self.samples,
                landmarks,
                self.rotation,
                feats=self._features,
            )
        else:
            assert self.landmarks is not None
            field_values = self._edit_evaluator(self.landmarks, landmarks)

        self.last_evaluated = 0

        def compute(todo: torch.Tensor) -> torch.Tensor:
            self.last_evaluated += len(todo)
            sigma, rgb = field_values(todo)
            return torch.cat([sigma[:, None], rgb], dim=1)

        def evaluate(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            v = self.values.get(ids, compute)
            return v[:, 0], v[:, 1:]

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
