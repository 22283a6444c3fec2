"""Modulated deformable convolution (DCNv2) block of the torso UNet.

The paper uses DCNv3 (InternImage); it has no maintained CPU implementation, so the UNet uses
torchvision's ``deform_conv2d``, i.e. DCNv2 (Zhu et al. 2019):

    y(p) = Σ_k  w_k · x(p + p_k + Δp_k) · m_k

with a learnt offset Δp_k and modulation m_k per output position and kernel tap, both
predicted from the input by a 3×3 convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import deform_conv2d


class ModulatedDeformConv2d(nn.Module):
    """A k×k DCNv2 convolution whose offsets and masks come from a zero-initialised 3×3 conv.

    The mask is ``2·sigmoid(·)``, so at initialisation (zero offsets, unit masks) the layer is
    exactly a plain convolution with its weights; training then learns where to look.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        offset_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % offset_groups:
            raise ValueError("in_channels must be divisible by offset_groups")
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = kernel_size // 2
        self.offset_groups = offset_groups
        self.backend = "auto"
        """Which kernel runs it: "auto", "torchvision" or "torch" (see modulated_deform_conv)."""
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        taps = kernel_size * kernel_size
        # 2 offset coordinates (dy, dx) and 1 mask logit per tap and offset group.
        self.offset_mask = nn.Conv2d(
            in_channels, 3 * offset_groups * taps, 3, stride=stride, padding=1
        )
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)  # type: ignore[arg-type]

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets [B, 2·G·k², H', W'] (dy, dx interleaved per tap) and masks [B, G·k², H', W']."""
        out = self.offset_mask(x)
        n = self.offset_groups * self.kernel_size**2
        return out[:, : 2 * n], 2.0 * torch.sigmoid(out[:, 2 * n :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, Cin, H, W] -> [B, Cout, H', W']
        offset, mask = self.offsets_and_mask(x)
        return modulated_deform_conv(
            x, offset, mask, self.weight, self.bias, self.stride, self.padding, self.backend
        )


def modulated_deform_conv(
    x: torch.Tensor,  # [B, Cin, H, W]
    offset: torch.Tensor,  # [B, 2·G·k², H', W']
    mask: torch.Tensor,  # [B, G·k², H', W']
    weight: torch.Tensor,  # [Cout, Cin, k, k]
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int = 1,
    backend: str = "auto",
) -> torch.Tensor:  # [B, Cout, H', W']
    """DCNv2, through torchvision's kernel or the PyTorch reference :func:`_modulated_deform_conv`.

    ``backend``: "torchvision", "torch", or "auto" — torchvision on CUDA, the reference on CPU,
    where torchvision's backward is several times slower than grid_sample's. Both agree to
    float32 rounding (tests/test_torso_net.py). Runs in float32 under autocast.
    """
    if backend == "auto":
        backend = "torchvision" if x.is_cuda else "torch"
    if backend not in ("torchvision", "torch"):
        raise ValueError(f"unknown deformable-convolution backend {backend!r}")
    dtype = x.dtype
    args = (x.float(), offset.float(), mask.float(), weight.float())
    b = None if bias is None else bias.float()
    if backend == "torch":
        y = _modulated_deform_conv(*args, stride=stride, padding=padding)
        y = y if b is None else y + b.view(1, -1, 1, 1)
    else:
        y = deform_conv2d(
            args[0], args[1], args[3], b, stride=stride, padding=padding, mask=args[2]
        )
    return y.to(dtype)


def _modulated_deform_conv(
    x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, stride: int = 1, padding: int = 1
) -> Tensor:
    """PyTorch reference of torchvision's ``deform_conv2d`` without the bias (same layout and
    sampling rule; shapes as in :func:`modulated_deform_conv`).

    Each tap k samples x bilinearly at p·stride − padding + p_k + Δp_k (zero outside the
    image), is scaled by m_k, and the k² sampled maps are contracted with the weights.
    """
    bsz, cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    _, _, ho, wo = offset.shape
    groups = mask.shape[1] // (kh * kw)
    cg = cin // groups
    off = offset.view(bsz, groups, kh * kw, 2, ho, wo)
    msk = mask.view(bsz, groups, kh * kw, ho, wo)
    base_y = (torch.arange(ho, device=x.device, dtype=x.dtype) * stride - padding).view(-1, 1)
    base_x = (torch.arange(wo, device=x.device, dtype=x.dtype) * stride - padding).view(1, -1)
    cols = []  # per tap: [B, Cin, H', W']
    for t in range(kh * kw):
        per_group = []
        for g in range(groups):
            py = base_y + t // kw + off[:, g, t, 0]  # [B, H', W'] pixel centres, rows
            px = base_x + t % kw + off[:, g, t, 1]
            # grid_sample (align_corners=False) puts -1/+1 on the image's outer edges.
            grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1)
            xs = x[:, g * cg : (g + 1) * cg]
            sampled = F.grid_sample(xs, grid, "bilinear", "zeros", align_corners=False)
            per_group.append(sampled * msk[:, g, t].unsqueeze(1))
        cols.append(torch.cat(per_group, dim=1))
    col = torch.stack(cols, dim=2)  # [B, Cin, k², H', W']
    y = torch.einsum("bckhw,ock->bohw", col, weight.reshape(cout, cin, kh * kw))
    return y


class DeformBlock(nn.Module):
    """Residual refinement block: x + act(norm(DCN(x))), or a plain 3×3 conv when not deformable;
    ``groups`` 0: no normalisation.

    Zero-initialised offsets make the deformable and the plain variant start from the same
    function (given the same weights), which keeps the deformable-vs-plain comparison fair.
    """

    def __init__(self, channels: int, groups: int, deformable: bool = True) -> None:
        super().__init__()
        self.deformable = deformable
        self.conv: nn.Module
        if deformable:
            self.conv = ModulatedDeformConv2d(channels, channels, 3)
        else:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm: nn.Module = nn.GroupNorm(groups, channels) if groups else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> same
        return x + F.leaky_relu(self.norm(self.conv(x)), 0.2)
