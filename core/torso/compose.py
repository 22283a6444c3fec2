"""Inference: complete rendered heads into full frames with a trained torso UNet.

    compositor = Compositor.load(subject.model_dir("torso"), device="cpu")
    frames = compositor(background, head_rgb, head_opacity)      # or compose(..., model=...)

Inputs are float tensors in [0, 1], batched ``[B, C, H, W]`` or single ``[C, H, W]``; the
background may be one plate ``[3, H, W]`` for the whole batch. ``head_rgb`` is premultiplied by
``head_opacity`` (the head over black, as the NeRF renders it). The network runs at its
``image_size``; at other sizes its inputs are resized to it and its output (a correction of the
head-over-plate composite) is resized back and applied at full size, so the rendered head and
the background plate keep their detail.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import load_module
from ..errors import TalkstudioError
from .config import TorsoConfig
from .train import KIND, resolve_device
from .unet import TorsoUNet


class Compositor:
    """A trained :class:`TorsoUNet` in inference mode on one device."""

    def __init__(self, net: TorsoUNet, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.config = net.config

    @classmethod
    def load(
        cls,
        folder: str | Path,
        device: str | torch.device = "cpu",
        config: TorsoConfig | None = None,
    ) -> Compositor:
        """The model saved in ``folder``; with ``config``, build that network and demand a match."""
        net = load_module(folder, KIND, TorsoConfig, lambda cfg, *_: TorsoUNet(cfg), config)
        return cls(net, device)

    @torch.no_grad()
    def __call__(
        self,
        background: torch.Tensor,  # [B, 3, H, W] | [3, H, W]
        head_rgb: torch.Tensor,  # [B, 3, H, W] | [3, H, W]
        head_opacity: torch.Tensor,  # [B, 1, H, W] | [1, H, W] | [B, H, W] | [H, W]
    ) -> torch.Tensor:  # [B, 3, H, W] | [3, H, W], clamped to [0, 1]
        x, single, out_device = self._inputs(background, head_rgb, head_opacity)
        out = self.net.finish(self._correction(x), *x)
        out = out.clamp(0.0, 1.0).to(out_device)
        return out[0] if single else out

    @torch.no_grad()
    def plate(
        self,
        background: torch.Tensor,  # as __call__
        head_rgb: torch.Tensor,
        head_opacity: torch.Tensor,
    ) -> torch.Tensor:  # [B, 3, H, W] | [3, H, W], clamped to [0, 1]
        """The frame without its head: the background completed by the network (body, neck,
        hair), what the head is composed over. With the ``masked`` output (the default) the
        frame is exactly ``head_rgb + (1 − head_opacity) · plate``; with ``residual`` the
        correction is added to the background where the frame adds it to the composite; with
        ``direct`` it is the network's frame."""
        x, single, out_device = self._inputs(background, head_rgb, head_opacity)
        correction = self._correction(x)
        out = correction if self.config.output == "direct" else x[0] + correction
        out = out.clamp(0.0, 1.0).to(out_device)
        return out[0] if single else out

    def _inputs(
        self, background: torch.Tensor, head_rgb: torch.Tensor, head_opacity: torch.Tensor
    ) -> tuple[list[torch.Tensor], bool, torch.device]:
        """(background, head, opacity) batched [B, C, H, W] on the network's device, whether the
        call was unbatched, and the device the result goes back to."""
        single = head_rgb.ndim == 3
        head = head_rgb[None] if single else head_rgb
        if head.ndim != 4 or head.shape[1] != 3:
            raise TalkstudioError(
                f"head_rgb must be [B, 3, H, W] or [3, H, W], got {head_rgb.shape}"
            )
        b, _, h, w = head.shape
        alpha = head_opacity
        if alpha.ndim == head.ndim - 1:  # no channel axis
            alpha = alpha.unsqueeze(-3)
        alpha = alpha.reshape(b, 1, *alpha.shape[-2:])
        bg = background if background.ndim == 4 else background[None]
        bg = bg.expand(b, -1, -1, -1)
        if bg.shape[-2:] != (h, w) or alpha.shape[-2:] != (h, w):
            raise TalkstudioError(
                f"background {tuple(background.shape)}, head {tuple(head_rgb.shape)} and opacity "
                f"{tuple(head_opacity.shape)} must share one height and width"
            )
        x = [t.to(self.device, torch.float32) for t in (bg, head, alpha)]
        return x, single, head.device

    def _correction(self, x: list[torch.Tensor]) -> torch.Tensor:  # [B, 3, H, W]
        """The network's output at the inputs' size. The network runs at its own size; at
        another size its output is resized to the inputs', so the full-size head and plate keep
        their own detail when it is applied."""
        size = self.config.image_size
        h, w = x[0].shape[-2:]
        if (h, w) == (size, size):
            return self.net.correction(*x)
        small = [_resize(t, (size, size)) for t in x]
        return _resize(self.net.correction(*small), (h, w))


def compose(
    background: torch.Tensor,
    head_rgb: torch.Tensor,
    head_opacity: torch.Tensor,
    model: Compositor | str | Path,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The full frame(s) from a background plate and a rendered head (see :class:`Compositor`).

    ``model`` is a loaded :class:`Compositor` or the folder of a trained torso model.
    """
    compositor = model if isinstance(model, Compositor) else Compositor.load(model, device)
    return compositor(background, head_rgb, head_opacity)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, C, H, W] → [B, C, *size]: antialiased bilinear (area-like when shrinking)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
