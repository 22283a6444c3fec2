"""Multi-resolution hash grid encoding (Instant-NGP), the PyTorch reference implementation.

The layout follows tiny-cuda-nn's ``HashGrid`` encoding so that the two backends share one
parameter vector (see :mod:`.encoding`):

- level ``l`` has scale ``s_l = base_resolution * b**l - 1`` with
  ``b = exp(ln(max_resolution / base_resolution) / (levels - 1))`` and
  ``resolution_l = ceil(s_l) + 1`` vertices per axis;
- an input ``x`` in ``[0, 1]^3`` sits at ``x * s_l + 0.5`` in level ``l``'s vertex lattice;
- level ``l`` owns ``min(next_multiple_of_8(resolution_l**3), 2**log2_table_size)`` table rows,
  stored level after level in one flat ``[rows, features]`` parameter;
- a vertex indexes its level's rows densely (``x + y r + z r^2``) where the level fits, and by the
  spatial hash ``(x * 1) xor (y * 2654435761) xor (z * 805459861)`` where it does not, both taken
  modulo the level's row count;
- features are trilinearly interpolated from the 8 surrounding vertices.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

PRIMES = (1, 2654435761, 805459861)
"""Per-axis multipliers of the spatial hash (Teschner et al., as in Instant-NGP)."""


@dataclass(frozen=True)
class GridLayout:
    """Per-level sizes of a hash grid, shared by both backends."""

    levels: int
    features: int
    log2_table_size: int
    base_resolution: int
    max_resolution: int

    @property
    def per_level_scale(self) -> float:
        if self.levels <= 1:
            return 1.0
        return math.exp(math.log(self.max_resolution / self.base_resolution) / (self.levels - 1))

    def scale(self, level: int) -> float:
        return self.base_resolution * self.per_level_scale**level - 1.0

    def resolution(self, level: int) -> int:
        return math.ceil(self.scale(level)) + 1

    def rows(self, level: int) -> int:
        dense = self.resolution(level) ** 3
        dense = (dense + 7) // 8 * 8
        return min(dense, 1 << self.log2_table_size)

    def offsets(self) -> list[int]:
        """Start row of every level and the total row count, [levels + 1]."""
        out = [0]
        for level in range(self.levels):
            out.append(out[-1] + self.rows(level))
        return out

    @property
    def out_dim(self) -> int:
        return self.levels * self.features


def _int32(value: int) -> int:
    """``value`` modulo 2**32 as a signed 32-bit integer (two's complement)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= (1 << 31) else value


@functools.lru_cache(maxsize=16)
def _level_constants(
    layout: GridLayout, dtype: torch.dtype, device: torch.device
) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-level constants of ``layout`` shaped for [L, 3, N] / [L, N, 8] broadcasting: the number
    of dense levels (a prefix: a level is dense iff ``resolution**3 <= 2**log2_table_size``, and
    the resolution grows with the level), scales [L, 1, 1], per-axis index multipliers
    [L, 3, 1] (int32: ``1, r, r^2`` dense, the hash primes hashed), row counts and offsets
    [L, 1, 1] (int32)."""
    levels = range(layout.levels)
    dense = [layout.resolution(lv) ** 3 <= layout.rows(lv) for lv in levels]
    n_dense = sum(dense)
    assert all(dense[:n_dense]) and not any(dense[n_dense:]), "dense levels must come first"
    primes = [_int32(p) for p in PRIMES]
    mult = [
        [1, layout.resolution(lv), layout.resolution(lv) ** 2] if dense[lv] else primes
        for lv in levels
    ]
    i32 = torch.int32
    return (
        n_dense,
        torch.tensor([layout.scale(lv) for lv in levels], dtype=dtype, device=device)[
            :, None, None
        ],
        torch.tensor(mult, dtype=i32, device=device)[:, :, None],
        torch.tensor([layout.rows(lv) for lv in levels], dtype=i32, device=device)[:, None, None],
        torch.tensor(layout.offsets()[:-1], dtype=i32, device=device)[:, None, None],
    )


def grid_indices_and_weights(
    x: torch.Tensor, layout: GridLayout
) -> tuple[torch.Tensor, torch.Tensor]:
    """Table rows [L, N, 8] (int32) and trilinear weights [L, N, 8] of ``x`` [N, 3] in [0, 1].

    Rows include each level's offset into the flat table. Corner ``c`` of the 8 is
    ``(cx, cy, cz) = (c>>2&1, c>>1&1, c&1)``. All levels and corners are computed together
    (N stays the contiguous axis), the dense levels and the hashed ones each as one block, in
    blocks of :data:`POINT_BLOCK` points: a training step's small batches cost per operation,
    and large blocks fall out of the cache. The hash multiplies in int32 with wrap-around,
    which keeps exactly the low 32 bits that the uint32 hash keeps; hashed tables have
    power-of-two sizes, so the modulo is a bit mask.
    """
    levels, n = layout.levels, x.shape[0]
    rows = torch.empty(levels, n, 8, dtype=torch.int32, device=x.device)
    weights = torch.empty(levels, n, 8, dtype=x.dtype, device=x.device)
    xt = x.clamp(0.0, 1.0).T.contiguous()  # [3, N]
    step = -(-n // max(-(-n // POINT_BLOCK), 1))  # equal blocks of at most POINT_BLOCK
    for start in range(0, n, max(step, 1)):
        end = min(start + step, n)
        _block_indices(xt[:, start:end], layout, rows[:, start:end], weights[:, start:end])
    return rows, weights


POINT_BLOCK = 2048
"""Points whose indices and weights are computed together: [L, 3, block] blocks that stay in
the CPU's cache (larger ones ran several times slower per point on a 2-core AMD EPYC)."""


def _block_indices(
    xt: torch.Tensor, layout: GridLayout, rows: torch.Tensor, weights: torch.Tensor
) -> None:
    """:func:`grid_indices_and_weights` of points ``xt`` [3, n] into ``rows`` / ``weights``
    [L, n, 8]: the 8 corners are made at once as [L, 2, 2, 2, n] (x, y, z corner, point) by
    broadcasting the low and high corners' per-axis terms, then moved to the corner-last layout."""
    n_dense, scale, mult, size, offset = _level_constants(layout, xt.dtype, xt.device)
    levels, n = layout.levels, xt.shape[1]
    pos = (xt[None] * scale).add_(0.5)  # [L, 3, n]
    low = torch.floor(pos)
    w1 = pos.sub_(low)  # fraction towards the high corner
    t0 = low.to(torch.int32).mul_(mult)  # [L, 3, n] per-axis terms of the low corner
    t = torch.stack([t0, t0 + mult], 1)  # [L, 2, 3, n]: low / high corner, axis, point
    w = torch.stack([1.0 - w1, w1], 1)
    corner_w = w[:, :, None, None, 0] * w[:, None, :, None, 1] * w[:, None, None, :, 2]
    corner = torch.empty(levels, 2, 2, 2, n, dtype=torch.int32, device=xt.device)
    dense, hashed = slice(0, n_dense), slice(n_dense, levels)
    if n_dense:
        tx, ty, tz = (
            t[dense, :, None, None, 0],
            t[dense, None, :, None, 1],
            t[dense, None, None, :, 2],
        )
        torch.add(tx + ty, tz, out=corner[dense])
        corner[dense].remainder_(size[dense, :, :, None, None])
    if n_dense < levels:
        tx, ty, tz = (
            t[hashed, :, None, None, 0],
            t[hashed, None, :, None, 1],
            t[hashed, None, None, :, 2],
        )
        torch.bitwise_xor(tx ^ ty, tz, out=corner[hashed])
        corner[hashed].bitwise_and_(size[hashed, :, :, None, None] - 1)
    corner.add_(offset[:, :, :, None, None])
    rows.copy_(corner.reshape(levels, 8, n).transpose(1, 2))
    weights.copy_(corner_w.reshape(levels, 8, n).transpose(1, 2))


def _scatter_rows(rows: torch.Tensor, values: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Sum ``values`` [F, M] into ``num_rows`` rows at ``rows`` [M] (int32) -> [num_rows, F]."""
    if rows.device.type == "cpu":
        # bincount is several times faster than index_add_ on CPU (and takes int32 indices).
        out = torch.empty(num_rows, values.shape[0], dtype=values.dtype)
        for f, v in enumerate(values):
            out[:, f] = torch.bincount(rows, weights=v, minlength=num_rows)
        return out
    out = torch.zeros(num_rows, values.shape[0], dtype=values.dtype, device=values.device)
    return out.index_add_(0, rows.long(), values.T)


class _Interpolate(torch.autograd.Function):
    """Weighted sum of 8 table rows per (level, point); backward scatters into the table."""

    @staticmethod
    def forward(ctx, table, rows, weights):
        # table [R, F], rows [L, N, 8], weights [L, N, 8] -> [N, L * F]
        levels, n, _ = rows.shape
        out = torch.nn.functional.embedding_bag(
            rows.reshape(-1, 8),
            table,
            per_sample_weights=weights.reshape(-1, 8).to(table.dtype),
            mode="sum",
        )  # [L * N, F]
        ctx.save_for_backward(rows, weights)
        ctx.num_rows = table.shape[0]
        return out.reshape(levels, n, -1).permute(1, 0, 2).reshape(n, -1)

    @staticmethod
    def backward(ctx, grad_out):
        rows, weights = ctx.saved_tensors
        levels, n, _ = rows.shape
        g = grad_out.reshape(n, levels, -1).permute(2, 1, 0)  # [F, L, N]
        w = weights.to(grad_out.dtype)
        per = torch.stack([w * g[f][..., None] for f in range(g.shape[0])])  # [F, L, N, 8]
        grad_table = _scatter_rows(rows.reshape(-1), per.reshape(g.shape[0], -1), ctx.num_rows)
        return grad_table, None, None


class TorchHashGrid(nn.Module):
    """The PyTorch hash grid: points [N, 3] in [0, 1]^3 -> features [N, levels * features]."""

    def __init__(self, layout: GridLayout, chunk: int = 65536) -> None:
        super().__init__()
        self.layout = layout
        self.chunk = chunk
        rows = layout.offsets()[-1]
        # Instant-NGP initialises the table uniformly in [-1e-4, 1e-4].
        self.params = nn.Parameter(torch.empty(rows, layout.features).uniform_(-1e-4, 1e-4))

    @property
    def out_dim(self) -> int:
        return self.layout.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for part in x.split(self.chunk):
            rows, weights = grid_indices_and_weights(part.detach(), self.layout)
            outs.append(_Interpolate.apply(self.params, rows, weights))
        if not outs:
            return x.new_zeros(0, self.out_dim)
        return torch.cat(outs) if len(outs) > 1 else outs[0]
