"""A separable Gaussian blur of image tensors (the refiner's colour match, the torso's soft
head outlines)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F


def gaussian_blur(
    x: torch.Tensor,  # [B, C, H, W]
    sigma: float,
    border: Literal["zeros", "replicate"] = "zeros",
) -> torch.Tensor:  # [B, C, H, W]
    """``x`` blurred by a separable Gaussian of ``sigma`` pixels; outside the image it is zero
    or, with ``border="replicate"``, the nearest edge pixel."""
    r = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    p = r  # zero padding inside the convolutions
    if border == "replicate":
        x, p = F.pad(x, (r, r, r, r), mode="replicate"), 0
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, p), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(p, 0), groups=c)
