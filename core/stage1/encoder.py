"""The two encoders of stage 1 (paper Fig. 1, Fig. 2a).

- :class:`LandmarkEncoder` — E_lm: the 37 jaw and lip points of one frame → a 1-D convolution
  along the points → a learnable classification token and learned token positions → Transformer
  encoder layers → the classification token's output is the frame's landmark feature.
- :class:`AudioEncoder` — the trainable part of E_aud: per-frame features of
  :mod:`.features` (log-mel or frozen wav2vec2, plus formants) → linear projection → residual
  1-D convolutions over frames (a few frames of context either side) → the frame's audio feature.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NUM_POINTS = 37


class EncoderLayer(nn.Module):
    """A pre-norm Transformer encoder layer: x + MHA(LN x), then x + FFN(LN x) (GELU).

    Written out (rather than ``nn.TransformerEncoderLayer``) so that training never leaves
    PyTorch's fused attention kernel: dropout acts on the residual branches only.
    """

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, first_only: bool = False) -> torch.Tensor:
        """[N, t, dim] → [N, t, dim], or only the first token's output [N, 1, dim]."""
        n, t, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if first_only:  # the classification token alone: same values, a fraction of the work
            q, x = q[:, :, :1], x[:, :1]
        y = F.scaled_dot_product_attention(q, k, v)  # [N, H, tq, hd]
        x = x + self.drop(self.out(y.transpose(1, 2).reshape(n, x.shape[1], dim)))
        return x + self.drop(self.ffn(self.norm2(x)))


class LandmarkEncoder(nn.Module):
    """E_lm: [N, 37, 3] landmark displacements (in units of their std) → [N, dim] features."""

    def __init__(self, dim: int, layers: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, dim, kernel_size=3, padding=1)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, NUM_POINTS + 1, dim) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, lm: torch.Tensor) -> torch.Tensor:
        n = lm.shape[0]
        x = self.conv(lm.transpose(1, 2)).transpose(1, 2)  # [N, 37, dim]
        x = torch.cat([self.cls.expand(n, -1, -1), x], dim=1) + self.pos  # [N, 38, dim]
        for i, layer in enumerate(self.layers):
            x = layer(x, first_only=i == len(self.layers) - 1)
        return self.norm(x[:, 0])  # [N, dim]


class AudioEncoder(nn.Module):
    """Trainable E_aud head: [B, T, in_dim] normalised features → [B, T, dim]."""

    def __init__(self, in_dim: int, dim: int, layers: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.convs = nn.ModuleList(
            nn.Conv1d(dim, dim, kernel, padding=kernel // 2) for _ in range(layers)
        )
        self.drop = nn.Dropout(dropout)
        self.out_norm = nn.LayerNorm(dim)

    @property
    def reach(self) -> int:
        """Frames of audio context either side of a frame that its feature depends on."""
        return sum(int(c.kernel_size[0]) // 2 for c in self.convs if isinstance(c, nn.Conv1d))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.proj(feats)  # [B, T, dim]
        for norm, conv in zip(self.norms, self.convs):
            h = F.gelu(norm(x)).transpose(1, 2)  # [B, dim, T]
            x = x + self.drop(conv(h).transpose(1, 2))
        return self.out_norm(x)
