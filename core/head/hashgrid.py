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

    Rows include each level's offset into the flat table. Corner ``c`` of the 8 is
    ``(cx, cy, cz) = (c>>2&1, c>>1&1, c&1)``. Every level works on contiguous [N] vectors per
    axis and corner (broadcasting over size-2 axes is several times slower on CPU). The hash
    multiplies in int32 with wrap-around, which keeps exactly the low 32 bits that the uint32
    hash keeps; hashed tables have power-of-two sizes, so the modulo is a bit mask.
    """
    n, dev = x.shape[0], x.device
    offsets = layout.offsets()
    rows = torch.empty(layout.levels, n, 8, dtype=torch.int32, device=dev)
    weights = torch.empty(layout.levels, n, 8, dtype=x.dtype, device=dev)
    xt = x.clamp(0.0, 1.0).T.contiguous()  # [3, N]
    primes = torch.tensor([_int32(p) for p in PRIMES], dtype=torch.int32, device=dev)[:, None]
    for level in range(layout.levels):
        res, size = layout.resolution(level), layout.rows(level)
        pos = xt * layout.scale(level) + 0.5  # [3, N]
        low = torch.floor(pos)
        frac = pos - low
        dense = res**3 <= size
        if dense:
            mult = torch.tensor([1, res, res * res], dtype=torch.int32, device=dev)[:, None]
        else:
            mult = primes
        t0 = low.to(torch.int32) * mult  # [3, N] per-axis terms of the low corner
        t1 = t0 + mult  # ... and of the high corner
        w1 = frac
        w0 = 1.0 - frac
        out, wout = rows[level], weights[level]  # [N, 8]: corners written in place (strided)
        for cx in (0, 1):
            tx, wx = (t1[0], w1[0]) if cx else (t0[0], w0[0])
            for cy in (0, 1):
                ty, wy = (t1[1], w1[1]) if cy else (t0[1], w0[1])
                txy = tx + ty if dense else tx ^ ty
                wxy = wx * wy
                for cz in (0, 1):
                    c = cx * 4 + cy * 2 + cz
                    tz, wz = (t1[2], w1[2]) if cz else (t0[2], w0[2])
                    if dense:
                        torch.add(txy, tz, out=out[:, c])
                    else:
                        torch.bitwise_xor(txy, tz, out=out[:, c])
                    torch.mul(wxy, wz, out=wout[:, c])
        if dense:
            out.remainder_(size)
        else:
            out.bitwise_and_(size - 1)
        out.add_(offsets[level])
    return rows, weights


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
