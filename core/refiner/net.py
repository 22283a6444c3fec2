"""The refiner network: the head NeRF's low-resolution render + the full-resolution plate in, the
frame at ×2 or ×4 out (docs/design.md "Refiner").

Low resolution L: the torso UNet's trunk (core/torso/unet.py, Fig. 4: strided ↓2 encoder with
modulated deformable blocks, nearest-neighbour ↑2 + 3×3 conv decoder with skips) over the plate
(shrunk to L), the head's premultiplied colour, its opacity and a depth feature. Then one stage
per factor 2 of ``scale``: nearest-neighbour ↑2, a 3×3 conv, and a fusing conv that also sees the
plate and the bilinearly upsampled head at that resolution. A last 3×3 conv gives a colour
correction r and a blend logit ℓ at full resolution S:

    B = up(head) + (1 − up(α)) · plate          (the upsampled head over the sharp plate)
    m = sigmoid(ℓ + 12 · (up(α) − 0.5))         (starts as the head's opacity)
    frame = B + m · r

so outside the head and the blend mask m the full-resolution plate passes through untouched,
and at the start (r = ℓ = 0, zero-initialised) the output is exactly the upsampled composite.
With ``RefinerConfig.mouth_reference`` the upsampling stages also read a real mouth of the
subject aligned onto the wanted lips (core/refiner/reference.py, premultiplied by its feathered
mask M), and the frame is laid under it: frame ← ref + (1 − M) · frame. Before that, the
reference's colour below ``reference_colour_sigma`` pixels is taken from the upsampled
composite B (:func:`colour_matched`), so the lips keep one colour whichever training frame
lends them. No normalisation layers: the net trains on crops and runs on whole frames, which
GroupNorm would tell apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..blur import gaussian_blur
from ..torso.unet import ConvNormAct, UNetTrunk
from .config import RefinerConfig

FEATURES = 5  # head rgb premultiplied (3) + opacity (1) + depth feature (1)
"""Channels of the head's low-resolution render the refiner reads (core/refiner/inputs.py)."""
GUIDE = 7  # plate (3) + upsampled head rgb (3) + upsampled opacity (1)
REFERENCE = 4  # with RefinerConfig.mouth_reference: aligned real mouth (3) + its mask (1)
MASK_GAIN = 12.0
"""Slope of the initial blend mask in the head's opacity: sigmoid(12 · (α − 0.5))."""


@dataclass
class Refined:
    """The refiner's output at full resolution."""

    frame: torch.Tensor  # [B, 3, S, S], not clamped
    mask: torch.Tensor  # [B, 1, S, S] blend mask m in (0, 1)


class RefinerNet(UNetTrunk):
    """Build it from a :class:`RefinerConfig` whose ``scale`` is 2 or 4 (resolved)."""

    def __init__(self, config: RefinerConfig) -> None:
        config.check()
        if config.scale not in (2, 4):
            raise ValueError("RefinerNet needs the scale resolved to 2 or 4 (see resolve_scale)")
        super().__init__(
            3 + FEATURES, config.base_width, config.depth, config.dcn_levels, config.deformable, 0
        )
        self.config = config
        stages = int(math.log2(config.scale))
        widths = [self.widths[0]] + [config.up_width] * stages
        self.lift = nn.ModuleList(ConvNormAct(widths[i], widths[i + 1], 0) for i in range(stages))
        guide = GUIDE + (REFERENCE if config.mouth_reference else 0)
        self.guide = nn.ModuleList(
            ConvNormAct(widths[i + 1] + guide, widths[i + 1], 0) for i in range(stages)
        )
        self.to_out = nn.Conv2d(widths[-1], 4, 3, padding=1)  # correction r (3) + blend logit
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)  # type: ignore[arg-type]

    def forward(
        self,
        inputs: torch.Tensor,  # [B, 5, L, L]: head rgb premultiplied, opacity, depth feature
        plate: torch.Tensor,  # [B, 3, S, S] in [0, 1], S = L · scale
        reference: torch.Tensor | None = None,  # [B, 4, S, S]: aligned mouth and its mask
    ) -> Refined:
        scale = self.config.scale
        if self.config.mouth_reference and (reference is None or reference.shape[1] != REFERENCE):
            raise ValueError(
                "this refiner reads a mouth reference [B, 4, S, S] (RefinerConfig.mouth_reference)"
            )
        lo, hi = inputs.shape[-2:], plate.shape[-2:]
        if inputs.shape[1] != FEATURES or hi != (lo[0] * scale, lo[1] * scale):
            raise ValueError(
                f"refiner inputs {tuple(inputs.shape)} and plate {tuple(plate.shape)}: need "
                f"{FEATURES} input channels and a plate {scale}× their size"
            )
        head, alpha = inputs[:, :3], inputs[:, 3:4]
        up = upsample(torch.cat([head, alpha], dim=1), scale)
        up_head, up_alpha = up[:, :3], up[:, 3:].clamp(0.0, 1.0)
        base = up_head + (1.0 - up_alpha) * plate  # [B, 3, S, S]
        if self.config.mouth_reference:
            assert reference is not None
            reference = colour_matched(reference, base, self.config.reference_colour_sigma)
        plate_lo = F.avg_pool2d(plate, scale)  # [B, 3, L, L]
        y = self.features(torch.cat([plate_lo, inputs], dim=1) * 2.0 - 1.0)  # [B, C, L, L]
        for k, (lift, guide) in enumerate(zip(self.lift, self.guide), start=1):
            y = lift(F.interpolate(y, scale_factor=2.0, mode="nearest"))  # [B, W, L·2^k, ..]
            pooled = F.avg_pool2d(plate, scale >> k) if scale >> k > 1 else plate
            up = upsample(inputs[:, :4], 2**k)  # [B, 4, L·2^k, L·2^k]
            parts = [y, pooled * 2.0 - 1.0, up * 2.0 - 1.0]
            if self.config.mouth_reference:
                assert reference is not None
                ref = F.avg_pool2d(reference, scale >> k) if scale >> k > 1 else reference
                parts.append(ref * 2.0 - 1.0)
            y = guide(torch.cat(parts, dim=1))
        out = self.to_out(y)  # [B, 4, S, S]
        mask = torch.sigmoid(out[:, 3:] + MASK_GAIN * (up_alpha - 0.5))  # [B, 1, S, S]
        frame = base + mask * out[:, :3]
        if self.config.mouth_reference:  # the real mouth laid over it (premultiplied by its mask)
            assert reference is not None
            frame = reference[:, :3] + (1.0 - reference[:, 3:]) * frame
        return Refined(frame, mask)


def colour_matched(reference: torch.Tensor, guide: torch.Tensor, sigma: float) -> torch.Tensor:
    """``reference`` [B, 4, H, W] (a mouth premultiplied by its mask M, and M) with its colour
    and shading below the scale ``sigma`` (pixels) taken from ``guide`` [B, 3, H, W]: the mouth
    keeps its own fine detail (teeth, lip lines) but the guide's lip colour and light. Both low
    passes are Gaussians normalised by the blurred mask, so only the mouth's own pixels count.
    ``sigma`` 0 returns the reference as it is."""
    if sigma <= 0:
        return reference
    h, w = reference.shape[-2:]
    f = 4 if h % 4 == 0 and w % 4 == 0 and sigma >= 8 else 1  # blur at a quarter size
    m = reference[:, 3:]
    stack = torch.cat([reference[:, :3], guide * m, m], dim=1)
    low = gaussian_blur(F.avg_pool2d(stack, f) if f > 1 else stack, sigma / f)
    if f > 1:
        low = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    den = low[:, 6:].clamp_min(1e-3)
    shift = (low[:, 3:6] - low[:, :3]) / den  # guide's low pass minus the mouth's
    colour = reference[:, :3] + m * shift
    return torch.cat([torch.minimum(colour.clamp_min(0.0), m), m], dim=1)


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[B, C, H, W] → [B, C, H·factor, W·factor], bilinear (pixel centres aligned)."""
    return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)
