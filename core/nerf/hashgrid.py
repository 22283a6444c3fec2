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


def grid_indices_and_weights(
    x: torch.Tensor, layout: GridLayout
) -> tuple[torch.Tensor, torch.Tensor]:
    """Table rows [L, N, 8] (int32) and trilinear weights [L, N, 8] of ``x`` [N, 3] in [0, 1].

    Level-major so that each level's work runs on contiguous memory. Rows include each level's
    offset into the flat table. Corner ``c`` of the 8 is ``(cx, cy, cz) = (c>>2&1, c>>1&1, c&1)``.
    The hash multiplies in int32 with wrap-around, which keeps exactly the low 32 bits that the
    uint32 hash keeps; the table sizes are powers of two, so the modulo is a bit mask.
    """
    n, dev = x.shape[0], x.device
    offsets = layout.offsets()
    rows = torch.empty(layout.levels, n, 2, 2, 2, dtype=torch.int32, device=dev)
    weights = torch.empty(layout.levels, n, 2, 2, 2, dtype=x.dtype, device=dev)
    x = x.clamp(0.0, 1.0)
    primes = torch.tensor([_int32(p) for p in PRIMES], dtype=torch.int32, device=dev)
    for level in range(layout.levels):
        res, size = layout.resolution(level), layout.rows(level)
        pos = x * layout.scale(level) + 0.5  # [N, 3]
        low = torch.floor(pos)
        frac = pos - low
        lo = low.to(torch.int32)
        vert = torch.stack([lo, lo + 1], dim=-1)  # [N, 3, 2]
        out = rows[level]  # [N, 2, 2, 2]
        if res**3 <= size:  # dense level
            mult = torch.tensor([1, res, res * res], dtype=torch.int32, device=dev)
            t = vert * mult[:, None]
            torch.add(
                (t[:, 0, :, None] + t[:, 1, None, :])[..., None], t[:, 2, None, None, :], out=out
            )
            out.remainder_(size)
        else:  # hashed level, size is a power of two
            t = vert * primes[:, None]
            torch.bitwise_xor(
                (t[:, 0, :, None] ^ t[:, 1, None, :])[..., None], t[:, 2, None, None, :], out=out
            )
            out.bitwise_and_(size - 1)
        out.add_(offsets[level])
        w = torch.stack([1.0 - frac, frac], dim=-1)  # [N, 3, 2]
        torch.mul(
            (w[:, 0, :, None] * w[:, 1, None, :])[..., None],
            w[:, 2, None, None, :],
            out=weights[level],
        )
    return rows.reshape(layout.levels, n, 8), weights.reshape(layout.levels, n, 8)


def _scatter_rows(rows: torch.Tensor, values: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Sum ``values`` [M, F] into ``num_rows`` rows at ``rows`` [M] (int32) -> [num_rows, F]."""
    if rows.device.type == "cpu":
        # bincount is several times faster than index_add_ on CPU (and takes int32 indices).
        cols = [
            torch.bincount(rows, weights=values[:, f], minlength=num_rows)
            for f in range(values.shape[1])
        ]
        return torch.stack(cols, dim=-1).to(values.dtype)
    out = torch.zeros(num_rows, values.shape[1], dtype=values.dtype, device=values.device)
    return out.index_add_(0, rows.long(), values)


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
        g = grad_out.reshape(n, levels, -1).permute(1, 0, 2)  # [L, N, F]
        g = g[:, :, None, :] * weights[..., None].to(g.dtype)  # [L, N, 8, F]
        grad_table = _scatter_rows(rows.reshape(-1), g.reshape(-1, g.shape[-1]), ctx.num_rows)
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
