"""D_a2l, the stage-1 decoder (paper Fig. 2b): periodic position encoding, causal self-attention
with a per-head distance bias, and a fusion with the aligned audio feature.

Each layer is post-norm, as FaceFormer's: ``x = LN(x + SA(x))``, ``x = LN(x + fuse(x, a))``,
``x = LN(x + FFN(x))``. ``fuse`` is the paper's :class:`LinearFusion` (the audio feature of the
same frame through one Linear) or, for the Table II comparison, FaceFormer's
:class:`BiasedCrossAttention` whose alignment mask lets frame ``i`` attend to audio frame ``i``
only. Self-attention sees at most ``context`` frames (the training window), so a clip of any
length is decoded exactly as the windows were trained; :class:`KVCache` makes a step O(context).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def alibi_slopes(heads: int) -> torch.Tensor:
    """Per-head slopes [heads]: ALiBi's geometric sequence 2^(-8 k / heads), as FaceFormer uses."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (k + 1) for k in range(n)]

    if math.log2(heads).is_integer():
        return torch.tensor(power_of_two(heads))
    low = 2 ** math.floor(math.log2(heads))
    extra = power_of_two(2 * low)[0::2][: heads - low]
    return torch.tensor(power_of_two(low) + extra)


def distance_bias_table(heads: int, period: int, context: int) -> torch.Tensor:
    """Bias [heads, context] for a key ``d`` frames back: ``-floor(d / period) * slope_h``."""
    d = torch.arange(context)
    return -(d // period).float()[None] * alibi_slopes(heads)[:, None]


class PeriodicPositionalEncoding(nn.Module):
    """FaceFormer's PPE: sinusoidal codes of the position modulo ``period``, added to ``x``."""

    pe: torch.Tensor

    def __init__(self, dim: int, period: int, dropout: float) -> None:
        super().__init__()
        pos = torch.arange(period, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(period, dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)  # [period, dim]
        self.period = period
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if x.shape[1] == 1:  # one step of autoregressive decoding
            return self.drop(x + self.pe[offset % self.period])
        idx = (torch.arange(x.shape[1], device=x.device) + offset) % self.period
        return self.drop(x + self.pe[idx])


@dataclass
class KVCache:
    """Keys and values [B, H, L, hd] of the last L <= context positions, starting at ``start``."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    start: int = 0


class BiasedCausalSelfAttention(nn.Module):
    """Causal multi-head self-attention with the per-head distance bias of the table above."""

    table: torch.Tensor
    table_rev: torch.Tensor

    def __init__(self, dim: int, heads: int, dropout: float, period: int, context: int) -> None:
        super().__init__()
        self.heads, self.context, self.dropout = heads, context, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        table = distance_bias_table(heads, period, context)  # [H, context]
        self.register_buffer("table", table, persistent=False)
        self.register_buffer("table_rev", table.flip(-1)[:, None].contiguous(), persistent=False)

    def bias(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """Additive mask [H, Tq, Tk]: the distance bias, -inf for future or out-of-context keys."""
        d = q_pos[:, None] - k_pos[None, :]
        ok = (d >= 0) & (d < self.context)
        vals = self.table[:, d.clamp(0, self.context - 1)]
        return torch.where(ok[None], vals, torch.full_like(vals, float("-inf")))

    def forward(
        self, x: torch.Tensor, q_offset: int = 0, cache: KVCache | None = None
    ) -> torch.Tensor:
        b, t, dim = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        k_start = q_offset
        if cache is not None:
            if cache.k is not None and cache.v is not None:
                k, v, k_start = torch.cat([cache.k, k], 2), torch.cat([cache.v, v], 2), cache.start
            drop = max(0, k.shape[2] - self.context)  # keys no later query can see
            cache.k, cache.v, cache.start = k[:, :, drop:], v[:, :, drop:], k_start + drop
        if cache is not None and t == 1:
            # One new query sees exactly the kept keys: the bias is the table read backwards.
            k, v = cache.k, cache.v
            assert k is not None and v is not None
            mask = self.table_rev[:, :, self.context - k.shape[2] :]  # [H, 1, L]
        else:
            q_pos = torch.arange(t, device=x.device) + q_offset
            k_pos = torch.arange(k.shape[2], device=x.device) + k_start
            mask = self.bias(q_pos, k_pos)  # [H, Tq, Tk]
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[None], dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(b, t, dim))


class LinearFusion(nn.Module):
    """The paper's fusion: the audio feature of the same frame through one Linear(dim → dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def prepare(self, audio: torch.Tensor) -> torch.Tensor:
        return self.linear(audio)  # [B, Ta, dim], all frames at once

    def forward(self, x: torch.Tensor, state: torch.Tensor, q_offset: int = 0) -> torch.Tensor:
        return state[:, q_offset : q_offset + x.shape[1]]


class BiasedCrossAttention(nn.Module):
    """FaceFormer's cross-modal attention; the alignment mask keeps frame i on audio frame i."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def prepare(self, audio: torch.Tensor) -> torch.Tensor:
        b, ta, _ = audio.shape
        return self.kv(audio).view(b, ta, 2, self.heads, -1).permute(2, 0, 3, 1, 4)

    def forward(self, x: torch.Tensor, state: torch.Tensor, q_offset: int = 0) -> torch.Tensor:
        b, t, dim = x.shape
        k, v = state[0], state[1]  # [B, H, Ta, hd]
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)
        q_pos = torch.arange(t, device=x.device)[:, None] + q_offset
        aligned = q_pos == torch.arange(k.shape[2], device=x.device)[None]  # [Tq, Ta]
        mask = torch.zeros(aligned.shape, device=x.device).masked_fill(~aligned, float("-inf"))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(b, t, dim))


class DecoderLayer(nn.Module):
    """One post-norm layer of D_a2l: biased causal self-attention, audio fusion, FFN."""

    def __init__(
        self, dim: int, heads: int, ffn: int, dropout: float, period: int, context: int, fusion: str
    ) -> None:
        super().__init__()
        self.self_attn = BiasedCausalSelfAttention(dim, heads, dropout, period, context)
        self.fusion: LinearFusion | BiasedCrossAttention
        if fusion == "linear":
            self.fusion = LinearFusion(dim)
        else:
            self.fusion = BiasedCrossAttention(dim, heads, dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim)
        )
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        fusion_state: torch.Tensor,
        q_offset: int = 0,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.self_attn(x, q_offset, cache)))
        x = self.norm2(x + self.drop(self.fusion(x, fusion_state, q_offset)))
        return self.norm3(x + self.drop(self.ffn(x)))


class Decoder(nn.Module):
    """D_a2l: [B, T, dim] landmark features of the previous frames + audio → [B, T, dim]."""

    def __init__(
        self,
        dim: int,
        layers: int,
        heads: int,
        ffn: int,
        dropout: float,
        period: int,
        context: int,
        fusion: str,
    ) -> None:
        super().__init__()
        self.ppe = PeriodicPositionalEncoding(dim, period, dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, heads, ffn, dropout, period, context, fusion) for _ in range(layers)
        )

    def prepare(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer fusion state of the audio features [B, Ta, dim] (computed once per clip)."""
        return [layer.fusion.prepare(audio) for layer in self.decoder_layers()]

    def decoder_layers(self) -> list[DecoderLayer]:
        return [layer for layer in self.layers if isinstance(layer, DecoderLayer)]

    def forward(
        self,
        x: torch.Tensor,
        states: list[torch.Tensor],
        q_offset: int = 0,
        caches: list[KVCache] | None = None,
    ) -> torch.Tensor:
        x = self.ppe(x, q_offset)
        for i, layer in enumerate(self.layers):
            x = layer(x, states[i], q_offset, None if caches is None else caches[i])
        return x
