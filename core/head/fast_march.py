"""The fast inference march: samples made as the rays advance, colour only where it shows.

The reference path (:func:`~.renderer.sample_rays` then :func:`~.renderer.march`) lists every
occupied sample of every ray before the march starts, although early ray termination evaluates
only the first few of them (a fifth to a quarter on the demo and German_20s heads). :func:`march_lazy` takes the same
samples, at the same distances ``near + (j + 1/2) step`` from the head box's entry, but only as
far as each ray gets:

- a ray scans candidates only inside the box of the occupied cells (:func:`occupied_box`), so the
  transparent margin of the head box and the rays that miss the head cost nothing;
- each round scans a window of the next candidates of every still-visible ray against the
  occupancy grid and takes the next ``chunk`` occupied ones (``chunk`` doubling up to
  ``max_chunk`` as in the reference, fewer where the ray's last round predicts that it stops
  sooner: ``_quota``); the ray's cursor moves past the last one taken;
- the density MLP runs on every sample taken, the colour MLP only where the sample's weight
  ``T_i (1 - exp(-sigma_i delta_i))`` exceeds ``min_weight`` (the others add at most that
  weight times a colour in [0, 1] each).

The composite is Eq. 4-5 as in :func:`~.renderer.march`; it differs from the reference by the
skipped colours and by where the rounds end (a ray stops after the round in which its
transmittance falls below ``stop``, so a few samples past that point may be evaluated or not):
both change a pixel by far less than one 8-bit level (tests/test_head_fast_march.py).
"""

from __future__ import annotations

import torch

from .field import HeadField
from .occupancy import OccupancyGrid
from .rays import ray_box
from .renderer import MarchSettings, RenderOutput, _autocast


def occupied_box(grid: OccupancyGrid | None, bbox: torch.Tensor) -> torch.Tensor | None:
    """The box [2, 3] around the occupied cells of ``grid`` widened by half a cell (``bbox``
    without a grid); None when no cell is occupied."""
    if grid is None:
        return bbox
    bits = grid.bitfield
    lo, hi = [], []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        used = bits.any(dim=others).nonzero(as_tuple=True)[0]  # [n] occupied slices
        if len(used) == 0:
            return None
        lo.append(used[0])
        hi.append(used[-1] + 1)
    cells = torch.stack([torch.stack(lo), torch.stack(hi)]).float()  # [2, 3]
    margin = torch.tensor([[-0.5], [0.5]], device=bbox.device)
    return grid.bbox[0] + (cells + margin) * grid.cell_size


def march_lazy(
    field: HeadField,
    grid: OccupancyGrid | None,
    origins: torch.Tensor,  # [R, 3]
    dirs: torch.Tensor,  # [R, 3]
    landmarks: torch.Tensor,  # [K, 3]
    cam_rotation: torch.Tensor,  # [3, 3]
    settings: MarchSettings,
) -> RenderOutput:
    """Render rays [R, 3] of one frame with samples made on the way (see the module docstring)."""
    num_rays, dev = len(origins), origins.device
    step = settings.step
    out_rgb = torch.zeros(num_rays, 3, device=dev)
    out_op = torch.zeros(num_rays, device=dev)
    out_d1 = torch.zeros(num_rays, device=dev)  # sum w t (t from the ray's first sample)
    out_d2 = torch.zeros(num_rays, device=dev)  # sum w t^2
    first_t = torch.zeros(num_rays, device=dev)
    steps = torch.zeros(num_rays, dtype=torch.long, device=dev)
    evaluated = 0
    near, far = ray_box(origins, dirs, field.bbox)
    n_steps = torch.ceil((far - near) / step).long().clamp_min(0)  # candidates per ray
    box = occupied_box(grid, field.bbox)
    if box is not None:
        # Candidate j sits at near + (j + 1/2) step; keep those within a step of the occupied box.
        lo_t, hi_t = ray_box(origins, dirs, box)
        j0 = torch.floor((lo_t - near) / step - 0.5).long().sub(1).clamp_min(0)
        j1 = torch.minimum(torch.ceil((hi_t - near) / step - 0.5).long() + 2, n_steps)
        rays = ((hi_t > lo_t) & (j1 > j0)).nonzero(as_tuple=True)[0]
    else:
        rays = torch.zeros(0, dtype=torch.long, device=dev)
        j0 = j1 = n_steps
    for part in rays.split(settings.ray_chunk):
        cursor, end = j0[part].clone(), j1[part]
        trans = torch.ones(len(part), device=dev)
        state = (part, cursor, end, trans)
        evaluated += _march_part(
            field, grid, origins, dirs, near, far, landmarks, cam_rotation, settings, state,
            (out_rgb, out_op, out_d1, out_d2, first_t, steps),
        )  # fmt: skip
    norm = out_op.clamp_min(1e-6)
    mean_t = out_d1 / norm
    var = (out_d2 / norm - mean_t * mean_t).clamp_min(0.0)
    depth = torch.where(steps > 0, mean_t + first_t, torch.zeros_like(mean_t))
    return RenderOutput(
        rgb=out_rgb, opacity=out_op, depth=depth, depth_var=var, evaluated=evaluated, steps=steps
    )


def _march_part(
    field: HeadField,
    grid: OccupancyGrid | None,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    landmarks: torch.Tensor,
    cam_rotation: torch.Tensor,
    settings: MarchSettings,
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    outs: tuple[torch.Tensor, ...],
) -> int:
    """March the rays ``state[0]`` [A] (with candidate cursors, ends and transmittances) to the
    end, accumulating into ``outs`` (rgb, opacity, depth sums, first sample, steps)."""
    out_rgb, out_op, out_d1, out_d2, first_t, steps = outs
    ray_ids, cursor, end, trans = state
    dev, step = origins.device, settings.step
    alive = torch.arange(len(ray_ids), device=dev)  # indices into the part's arrays
    chunk = settings.chunk
    evaluated = 0
    rate = torch.zeros(len(ray_ids), device=dev)  # optical depth per sample, last round [A]
    while len(alive):
        quota = _quota(trans[alive], rate[alive], chunk, settings.stop)  # [A, 1]
        ray = ray_ids[alive]  # [A]
        t, take, rank, moved = _scan(
            grid, origins, dirs, near, far, ray, cursor[alive], end[alive], quota, step
        )
        cursor[alive] = cursor[alive] + moved
        a_idx, w_idx = take.nonzero(as_tuple=True)  # [n] ordered by ray, then distance
        if len(a_idx) == 0:  # every ray still in empty cells: scan on
            chunk = min(chunk * 2, max(settings.max_chunk, chunk))
            alive = alive[cursor[alive] < end[alive]]
            continue
        slot = rank[a_idx, w_idx] - 1  # [n] position within this round
        t_s = t[a_idx, w_idx]
        s_ray = ray[a_idx]
        shape = (len(alive), chunk)
        x_s = origins[s_ray] + t_s[:, None] * dirs[s_ray]  # [n, 3]
        sigma, geo = _density(field, x_s, landmarks, cam_rotation, settings.sample_chunk)
        evaluated += len(t_s)
        tau = torch.zeros(shape, device=dev).index_put((a_idx, slot), sigma.float() * step)
        # The first sample of a ray sets its depth origin (keeps the variance precise).
        starts = (slot == 0) & (steps[s_ray] == 0)
        first_t[s_ray[starts]] = t_s[starts]
        t_rel = torch.zeros(shape, device=dev).index_put((a_idx, slot), t_s - first_t[s_ray])
        t_in = trans[alive]
        excl = torch.cumsum(tau, dim=1) - tau
        w = t_in[:, None] * torch.exp(-excl) * (1.0 - torch.exp(-tau))  # [A, M]
        shows = w[a_idx, slot] > settings.min_weight  # [n]
        color = torch.zeros(*shape, 3, device=dev)
        if bool(shows.any()):
            rgb = _color(field, geo[shows], dirs[s_ray[shows]], settings.sample_chunk)
            color = color.index_put((a_idx[shows], slot[shows]), rgb)
        out_rgb[ray] += (w[..., None] * color).sum(1)
        out_op[ray] += w.sum(1)
        out_d1[ray] += (w * t_rel).sum(1)
        out_d2[ray] += (w * t_rel * t_rel).sum(1)
        steps[ray] += take.sum(dim=1)
        t_out = t_in * torch.exp(-tau.sum(1))
        trans[alive] = t_out
        taken = take.sum(dim=1)
        rate[alive] = torch.where(taken > 0, tau.sum(1) / taken.clamp_min(1), rate[alive])
        chunk = min(chunk * 2, max(settings.max_chunk, chunk))
        more = (cursor[alive] < end[alive]) & (t_out > settings.stop)
        alive = alive[more]
    return evaluated


def _scan(
    grid: OccupancyGrid | None,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    ray: torch.Tensor,  # [A]
    cursor: torch.Tensor,  # [A] next candidate of each ray
    end: torch.Tensor,  # [A] candidates end here
    quota: torch.Tensor,  # [A, 1]
    step: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The next occupied samples of rays ``ray``: a window of candidates from ``cursor`` is
    tested against ``grid`` and the first ``quota`` occupied ones taken. Returns their distances
    t [A, W], which are taken [A, W], their rank among the occupied ones [A, W] (1-based) and
    how far each cursor moves [A] (past the last one taken, or past the window)."""
    window = min(max(2 * int(quota.max()), 8), 64)
    j = cursor[:, None] + torch.arange(window, device=cursor.device)  # [A, W]
    t = near[ray, None] + (j + 0.5) * step  # the reference's sample distances
    ok = (j < end[:, None]) & (t < far[ray, None])
    if grid is not None:
        x = origins[ray, None, :] + t[..., None] * dirs[ray, None, :]  # [A, W, 3]
        ok &= grid.occupied(x.reshape(-1, 3)).reshape(ok.shape)
    rank = torch.cumsum(ok, dim=1)
    take = ok & (rank <= quota)
    full = rank[:, -1:] >= quota
    moved = torch.where(full, (rank < quota).sum(dim=1, keepdim=True) + 1, window)[:, 0]
    return t, take, rank, moved


def _density(
    field: HeadField, x: torch.Tensor, landmarks: torch.Tensor, rotation: torch.Tensor, block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma [n] float32, geometry features [n, G]) at points ``x`` [n, 3], ``block`` points
    at a time (blocks that stay in the CPU's cache are faster than one large batch)."""
    sigmas, geos = [], []
    with _autocast(x.device):
        for part in x.split(block):
            feats = field.position_features(part)
            sigma, geo = field.density(part, feats, landmarks, rotation, fast=True)
            sigmas.append(sigma.float())
            geos.append(geo)
    if len(sigmas) == 1:
        return sigmas[0], geos[0]
    return torch.cat(sigmas), torch.cat(geos)


def _color(field: HeadField, geo: torch.Tensor, dirs: torch.Tensor, block: int) -> torch.Tensor:
    """RGB [n, 3] float32 of geometry features [n, G] seen along ``dirs`` [n, 3], in blocks."""
    with _autocast(geo.device):
        parts = [field.color(g, d).float() for g, d in zip(geo.split(block), dirs.split(block))]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _quota(trans: torch.Tensor, rate: torch.Tensor, chunk: int, stop: float) -> torch.Tensor:
    """Samples [A, 1] each ray takes this round: ``chunk``, or fewer where the optical depth per
    sample of the ray's last round (``rate`` [A], 0 before its first) predicts that its
    transmittance ``trans`` [A] falls below ``stop`` sooner (one sample of margin, at least
    two): a ray inside a surface then evaluates few samples past its stop."""
    need = torch.log(trans.clamp_min(stop) / stop) / rate.clamp_min(1e-12)
    quota = torch.where(rate > 0, need.clamp(max=chunk).ceil() + 1, float(chunk))
    return quota.clamp(min(2, chunk), chunk).long()[:, None]
