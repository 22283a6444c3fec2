"""The torso UNet of paper Fig. 4: background plate + head image in, full frame out.

Encoder: a 3×3 conv to C channels at full resolution, then ``depth`` levels of a 3×3 conv
strided ↓2 that doubles the channels up to 8C; a DCNv2 block (``deform.DeformBlock``) follows
the middle levels (``dcn_levels``). Decoder, mirrored: per level a nearest-neighbour ↑2 then a
3×3 conv (no transposed convolution, hence no checkerboard), concatenation with the encoder's
skip at that resolution and a 3×3 fusing conv. A final 1×1 conv gives RGB.

Images are float in [0, 1]; ``head_rgb`` is premultiplied by ``head_opacity`` (the head drawn
over black, as a volume renderer outputs it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TorsoConfig
from .deform import DeformBlock

IN_CHANNELS = 7  # background plate (3) + head rgb (3) + head opacity (1)


def _groups(channels: int, wanted: int) -> int:
    if wanted <= 0:
        return 0  # no normalisation
    g = max(1, min(wanted, channels))
    while channels % g:
        g -= 1
    return g


class ConvNormAct(nn.Sequential):
    """3×3 conv (optionally strided) → GroupNorm (none when ``groups`` is 0) → LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, groups: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
            nn.GroupNorm(_groups(cout, groups), cout) if groups else nn.Identity(),
            nn.LeakyReLU(0.2),
        )


class UNetTrunk(nn.Module):
    """Encoder and decoder of Fig. 4 without the output layer: ``in_channels`` in, ``widths[0]``
    feature channels out at the input's resolution (:meth:`features`). The torso UNet and the
    refiner's low-resolution trunk (core/refiner) are built on it; ``norm_groups`` 0 leaves out
    the GroupNorms (for a net trained on small crops and run on whole frames)."""

    def __init__(
        self,
        in_channels: int,
        base_width: int,
        depth: int,
        dcn_levels: tuple[int, ...],
        deformable: bool,
        norm_groups: int,
    ) -> None:
        super().__init__()
        c, g = base_width, norm_groups
        self.depth = depth
        widths = [min(c * 2**i, 8 * c) for i in range(depth + 1)]  # per level, full res first
        self.widths = widths
        self.stem = ConvNormAct(in_channels, widths[0], g)
        self.down = nn.ModuleList(
            ConvNormAct(widths[i], widths[i + 1], g, stride=2) for i in range(depth)
        )
        self.refine = nn.ModuleDict(
            {
                str(level): DeformBlock(widths[level], _groups(widths[level], g), deformable)
                for level in sorted(set(dcn_levels))
            }
        )
        # Decoder level i brings level i+1 up to level i's resolution (i = depth-1 .. 0).
        self.up = nn.ModuleList(ConvNormAct(widths[i + 1], widths[i], g) for i in range(depth))
        self.fuse = nn.ModuleList(ConvNormAct(2 * widths[i], widths[i], g) for i in range(depth))

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return 2**self.depth

    def features(self, x: torch.Tensor) -> torch.Tensor:  # [B, Cin, H, W] -> [B, widths[0], H, W]
        """The decoder's full-resolution features; sides are padded to :attr:`multiple` inside."""
        h, w = x.shape[-2:]
        m = self.multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = [self.stem(x)]  # level 0: [B, C, H, W]
        for level, down in enumerate(self.down, start=1):
            y = down(skips[-1])  # [B, widths[level], H/2^level, W/2^level]
            if str(level) in self.refine:
                y = self.refine[str(level)](y)
            skips.append(y)
        y = skips.pop()
        for i in reversed(range(self.depth)):
            y = self.up[i](F.interpolate(y, scale_factor=2.0, mode="nearest"))  # level i
            y = self.fuse[i](torch.cat([y, skips[i]], dim=1))
        return y[..., :h, :w]


class TorsoUNet(UNetTrunk):
    """The frame-completing UNet; build it from a :class:`TorsoConfig`."""

    def __init__(self, config: TorsoConfig) -> None:
        config.check()
        super().__init__(
            IN_CHANNELS,
            config.base_width,
            config.depth,
            config.dcn_levels,
            config.deformable,
            config.norm_groups,
        )
        self.config = config
        self.to_rgb = nn.Conv2d(self.widths[0], 3, 1)
        if config.output != "direct":  # start as the composite
            nn.init.zeros_(self.to_rgb.weight)
            nn.init.zeros_(self.to_rgb.bias)  # type: ignore[arg-type]

    def forward(
        self,
        background: torch.Tensor,  # [B, 3, H, W] in [0, 1]
        head_rgb: torch.Tensor,  # [B, 3, H, W] premultiplied
        head_opacity: torch.Tensor,  # [B, 1, H, W] in [0, 1]
    ) -> torch.Tensor:  # [B, 3, H, W], the frame (not clamped)
        out = self.correction(background, head_rgb, head_opacity)
        return self.finish(out, background, head_rgb, head_opacity)

    def finish(
        self,
        out: torch.Tensor,  # [B, 3, H, W] the network's output (:meth:`correction`)
        background: torch.Tensor,  # [B, 3, H, W]
        head_rgb: torch.Tensor,  # [B, 3, H, W] premultiplied
        head_opacity: torch.Tensor,  # [B, 1, H, W]
    ) -> torch.Tensor:  # [B, 3, H, W]
        """The frame from the network's output, per ``config.output``: ``masked`` adds it where
        the head is not opaque, ``residual`` adds it everywhere, ``direct`` takes it as is."""
        if self.config.output == "direct":
            return out
        composite = head_rgb + (1.0 - head_opacity) * background  # [B, 3, H, W]
        if self.config.output == "masked":
            return composite + (1.0 - head_opacity) * out
        return composite + out

    def correction(
        self,
        background: torch.Tensor,  # [B, 3, H, W] in [0, 1]
        head_rgb: torch.Tensor,  # [B, 3, H, W] premultiplied
        head_opacity: torch.Tensor,  # [B, 1, H, W] in [0, 1]
    ) -> torch.Tensor:  # [B, 3, H, W]
        """The network's raw output (a correction of the composite, or the frame when direct)."""
        x = torch.cat([background, head_rgb, head_opacity], dim=1) * 2.0 - 1.0  # [B, 7, H, W]
        return self.to_rgb(self.features(x))  # [B, 3, H, W]
