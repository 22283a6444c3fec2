"""Ray marching and volume rendering (paper Eq. 4-5) over the occupancy grid, early-terminated.

Each ray takes samples every ``step`` head units between its entry into and exit from the head box;
samples in empty cells of the occupancy grid are dropped. The rest are packed ray after ray and
evaluated in rounds over the still-visible rays (``chunk`` samples per ray in the first round,
doubling each round up to ``max_chunk``, so a ray that ends early wastes few samples and a long
transparent one needs few rounds): a round composites its samples with the discrete Eq. 4-5,

    C = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i,    T_i = exp(-sum_{j<i} sigma_j delta_j),

and a ray whose transmittance falls below ``stop`` leaves the march (early ray termination).
The same march serves rendering and training (gradients flow through the rounds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .field import HeadField
from .occupancy import OccupancyGrid
from .rays import camera_rays, pixel_centers, ray_box

Evaluate = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""Field at packed sample indices [n] -> (sigma [n], rgb [n, 3])."""


@dataclass
class MarchSettings:
    """How rays are sampled and when they stop."""

    step: float = 0.02
    """Distance between samples along a ray, head units."""
    stop: float = 1e-4
    """A ray stops once its transmittance falls below this; 0 marches every sample."""
    chunk: int = 4
    """Samples per ray in the first round between early-termination checks (then doubling)."""
    max_chunk: int = 16
    """Largest number of samples per ray in one round (bounds the samples wasted past a stop)."""
    ray_chunk: int = 32768
    """Rays marched together (bounds memory on large images)."""
    fast: bool = False
    """Render with :func:`~.fast_march.march_lazy` (samples made as the rays advance, colour
    only where it shows) where :func:`render_rays` allows it; False: the reference path."""
    min_weight: float = 1e-5
    """Fast path: a sample whose compositing weight is at most this gets no colour evaluated."""
    sample_chunk: int = 16384
    """Fast path: samples the field evaluates together (blocks that stay in the CPU's cache)."""


@dataclass
class Samples:
    """Samples of R rays, packed ray after ray in increasing distance."""

    t: torch.Tensor  # [S] distance along the ray (unit direction)
    ray: torch.Tensor  # [S] ray index of each sample
    start: torch.Tensor  # [R] index of each ray's first sample
    count: torch.Tensor  # [R] samples per ray


@dataclass
class RenderOutput:
    """Per-ray results (before compositing over a background)."""

    rgb: torch.Tensor  # [R, 3] premultiplied by opacity
    opacity: torch.Tensor  # [R] accumulated weight sum_i T_i alpha_i
    depth: torch.Tensor  # [R] expected distance along the ray, where opacity > 0
    depth_var: torch.Tensor  # [R] variance of that distance under the ray's weights
    evaluated: int  # samples the field was evaluated at
    steps: torch.Tensor  # [R] long: samples evaluated per ray (its first ``steps`` samples)


def sample_rays(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    bbox: torch.Tensor,
    step: float,
    grid: OccupancyGrid | None,
    jitter: bool = False,
    active: torch.Tensor | None = None,
) -> Samples:
    """Samples of rays ``origins``/``dirs`` [R, 3] inside ``bbox`` in occupied cells of ``grid``.

    Sample j of a ray sits at ``near + (j + u) * step`` with ``u = 0.5``, or uniform in [0, 1)
    per sample when ``jitter``. ``grid=None`` keeps every sample in the box (dense sampling).
    ``active`` [R] bool: rays that get samples at all (the others stay empty).
    """
    dev = origins.device
    near, far = ray_box(origins, dirs, bbox)
    n_steps = torch.ceil((far - near) / step).long().clamp_min(0)
    if active is not None:
        n_steps = torch.where(active, n_steps, torch.zeros_like(n_steps))
    rays = torch.arange(len(origins), device=dev)
    ray = torch.repeat_interleave(rays, n_steps)  # [C] candidates
    first = torch.cumsum(n_steps, 0) - n_steps
    j = torch.arange(len(ray), device=dev) - first[ray]
    u = torch.rand(len(ray), device=dev) if jitter else torch.full((len(ray),), 0.5, device=dev)
    t = near[ray] + (j + u) * step
    keep = t < far[ray]
    if grid is not None:
        keep &= grid.occupied(origins[ray] + t[:, None] * dirs[ray])
    t, ray = t[keep], ray[keep]
    count = torch.bincount(ray, minlength=len(origins))
    return Samples(t=t, ray=ray, start=torch.cumsum(count, 0) - count, count=count)


def sample_rays_chunked(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    bbox: torch.Tensor,
    step: float,
    grid: OccupancyGrid | None,
    ray_chunk: int = 32768,
) -> Samples:
    """:func:`sample_rays` (no jitter) for many rays, ``ray_chunk`` at a time, as one Samples."""
    parts = [
        sample_rays(o, d, bbox, step, grid)
        for o, d in zip(origins.split(ray_chunk), dirs.split(ray_chunk))
    ]
    if len(parts) == 1:
        return parts[0]
    count = torch.cat([p.count for p in parts])
    offsets = [0]
    for p in parts[:-1]:
        offsets.append(offsets[-1] + len(p.count))
    ray = torch.cat([p.ray + off for p, off in zip(parts, offsets)])
    return Samples(
        t=torch.cat([p.t for p in parts]),
        ray=ray,
        start=torch.cumsum(count, 0) - count,
        count=count,
    )


def march(
    evaluate: Evaluate,
    samples: Samples,
    step: float,
    stop: float = 1e-4,
    chunk: int = 4,
    rays: torch.Tensor | None = None,
    max_chunk: int = 16,
) -> RenderOutput:
    """Volume-render (Eq. 4-5) ``samples`` in rounds with early termination.

    Round r evaluates ``min(chunk * 2^r, max_chunk)`` samples of every ray still visible.

    ``rays`` [A] restricts the march to those rays (the others return zeros).
    """
    num_rays = len(samples.count)
    dev = samples.t.device
    alive = torch.arange(num_rays, device=dev) if rays is None else rays
    alive = alive[samples.count[alive] > 0]
    trans = torch.ones(num_rays, device=dev)  # transmittance so far
    steps = torch.zeros(num_rays, dtype=torch.long, device=dev)
    ids, rgbs, ops, depths, depths2 = [], [], [], [], []
    first_t = (
        samples.t[samples.start.clamp(max=max(len(samples.t) - 1, 0))] if len(samples.t) else None
    )
    evaluated = 0
    rank0 = 0
    while len(alive):
        offsets = torch.arange(chunk, device=dev)
        idx = samples.start[alive, None] + rank0 + offsets  # [A, M] packed sample index
        valid = (rank0 + offsets)[None, :] < samples.count[alive, None]  # [A, M]
        flat = idx[valid]
        sigma, rgb = evaluate(flat)
        evaluated += len(flat)
        tau = torch.zeros(valid.shape, device=dev, dtype=sigma.dtype)
        tau = tau.index_put((valid.nonzero(as_tuple=True)), sigma * step)  # [A, M]
        color = torch.zeros(*valid.shape, 3, device=dev, dtype=rgb.dtype)
        color = color.index_put((valid.nonzero(as_tuple=True)), rgb)  # [A, M, 3]
        # Distances from the ray's first sample (keeps the variance below precise in float32).
        t = samples.t[idx.clamp(max=len(samples.t) - 1)] - first_t[alive, None]  # type: ignore[index]
        t = torch.where(valid, t, 0.0)  # [A, M]
        t_in = trans[alive]
        excl = torch.cumsum(tau, dim=1) - tau
        w = t_in[:, None] * torch.exp(-excl) * (1.0 - torch.exp(-tau))  # [A, M]
        ids.append(alive)
        rgbs.append((w[..., None] * color).sum(1))
        ops.append(w.sum(1))
        depths.append((w * t).sum(1))
        depths2.append((w * t * t).sum(1))
        t_out = t_in * torch.exp(-tau.sum(1))
        trans = trans.index_put((alive,), t_out)
        rank0 += chunk
        steps[alive] = samples.count[alive].clamp(max=rank0)
        chunk = min(chunk * 2, max(max_chunk, chunk))
        more = (samples.count[alive] > rank0) & (t_out.detach() > stop)
        alive = alive[more]
    out_rgb = torch.zeros(num_rays, 3, device=dev)
    out_op = torch.zeros(num_rays, device=dev)
    out_depth = torch.zeros(num_rays, device=dev)
    out_depth2 = torch.zeros(num_rays, device=dev)
    if ids:
        cat = torch.cat(ids)
        out_rgb = out_rgb.index_add(0, cat, torch.cat(rgbs).float())
        out_op = out_op.index_add(0, cat, torch.cat(ops).float())
        out_depth = out_depth.index_add(0, cat, torch.cat(depths).float())
        out_depth2 = out_depth2.index_add(0, cat, torch.cat(depths2).float())
    norm = out_op.clamp_min(1e-6)
    mean_t = out_depth / norm
    var = (out_depth2 / norm - mean_t * mean_t).clamp_min(0.0)
    depth = mean_t + (first_t if first_t is not None else 0.0)
    depth = torch.where(samples.count > 0, depth, torch.zeros_like(depth))
    return RenderOutput(
        rgb=out_rgb, opacity=out_op, depth=depth, depth_var=var, evaluated=evaluated, steps=steps
    )


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def field_evaluator(
    field: HeadField,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    samples: Samples,
    landmarks: torch.Tensor,
    cam_rotation: torch.Tensor,
    feats: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Evaluate:
    """The field of one frame's condition as an :data:`Evaluate` over ``samples``.

    ``feats(ids, x)`` may supply cached hash features of sample ``ids`` at points ``x``.
    Runs under float16 autocast on CUDA; returns float32.
    """

    def evaluate(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ray = samples.ray[ids]
        x = origins[ray] + samples.t[ids, None] * dirs[ray]  # [n, 3]
        with _autocast(x.device):
            f = feats(ids, x) if feats is not None else field.position_features(x)
            sigma, rgb = field(x, dirs[ray], landmarks, cam_rotation, feats=f)
        return sigma.float(), rgb.float()

    return evaluate


def render_rays(
    field: HeadField,
    grid: OccupancyGrid | None,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    landmarks: torch.Tensor,
    cam_rotation: torch.Tensor,
    settings: MarchSettings,
    jitter: bool = False,
    active: torch.Tensor | None = None,
) -> RenderOutput:
    """Render rays [R, 3] of one frame (landmarks [K, 3], head-to-camera rotation [3, 3]).

    With ``settings.fast`` (and neither ``jitter`` nor ``active``, i.e. not training) the rays
    go through :func:`~.fast_march.march_lazy`; otherwise through the reference
    :func:`sample_rays` and :func:`march`, ``settings.ray_chunk`` rays at a time.
    """
    if settings.fast and not jitter and active is None:
        from .fast_march import march_lazy

        return march_lazy(field, grid, origins, dirs, landmarks, cam_rotation, settings)
    outs = []
    for o, d, a in zip(
        origins.split(settings.ray_chunk),
        dirs.split(settings.ray_chunk),
        active.split(settings.ray_chunk) if active is not None else [None] * len(origins),
    ):
        s = sample_rays(o, d, field.bbox, settings.step, grid, jitter=jitter, active=a)
        ev = field_evaluator(field, o, d, s, landmarks, cam_rotation)
        outs.append(
            march(ev, s, settings.step, settings.stop, settings.chunk, max_chunk=settings.max_chunk)
        )
    if len(outs) == 1:
        return outs[0]
    return RenderOutput(
        rgb=torch.cat([o.rgb for o in outs]),
        opacity=torch.cat([o.opacity for o in outs]),
        depth=torch.cat([o.depth for o in outs]),
        depth_var=torch.cat([o.depth_var for o in outs]),
        evaluated=sum(o.evaluated for o in outs),
        steps=torch.cat([o.steps for o in outs]),
    )


@dataclass
class HeadImage:
    """A rendered head: colour composited over a background, opacity and depth, [H, W(, 3)]."""

    rgb: torch.Tensor  # [H, W, 3] in [0, 1], over the background
    head: torch.Tensor  # [H, W, 3] premultiplied head colour (no background)
    opacity: torch.Tensor  # [H, W]
    depth: torch.Tensor  # [H, W]


def compose(out: RenderOutput, background: torch.Tensor, size: int) -> HeadImage:
    """Composite per-ray ``out`` over ``background`` [size, size, 3] (float in [0, 1])."""
    head = out.rgb.reshape(size, size, 3)
    op = out.opacity.reshape(size, size)
    rgb = head + (1.0 - op[..., None]) * background
    return HeadImage(rgb=rgb, head=head, opacity=op, depth=out.depth.reshape(size, size))


@torch.no_grad()
def render_image(
    field: HeadField,
    grid: OccupancyGrid | None,
    K: np.ndarray,
    pose: np.ndarray,
    landmarks: torch.Tensor,
    background: torch.Tensor,
    settings: MarchSettings,
) -> HeadImage:
    """Render a ``size`` x ``size`` head image of one frame; ``K`` is at that size.

    ``background`` [size, size, 3] in [0, 1] is what the head is composited over (the subject's
    background plate, or any image).
    """
    size = int(background.shape[0])
    dev = background.device
    origins, dirs = camera_rays(K, pose, pixel_centers(size, dev))
    rot = torch.as_tensor(np.asarray(pose)[:3, :3], dtype=torch.float32, device=dev)
    out = render_rays(field, grid, origins, dirs, landmarks.to(dev), rot, settings)
    return compose(out, background, size)
