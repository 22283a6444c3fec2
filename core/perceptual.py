"""VGG perceptual loss, shared by the head NeRF (Eq. 9's L_VGG) and the torso UNet.

The VGG-19 ImageNet weights are loaded through torchvision's own weight loader
(``VGG19_Weights.IMAGENET1K_V1.get_state_dict``) from the local torch cache
(``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``) — never downloaded at run time. When the
file is absent the perceptual term is off and :func:`load_perceptual` says so once.

Loss (pix2pixHD's VGG loss): Σ_l w_l · mean |φ_l(x) − φ_l(y)| over the activations
relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with w = 1/32, 1/16, 1/8, 1/4, 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

# Index (in torchvision's vgg19().features) of each ReLU the loss reads, and its weight.
VGG19_LAYERS: dict[str, int] = {
    "relu1_1": 1,
    "relu2_1": 6,
    "relu3_1": 11,
    "relu4_1": 20,
    "relu5_1": 29,
}
DEFAULT_WEIGHTS: dict[str, float] = {
    "relu1_1": 1 / 32,
    "relu2_1": 1 / 16,
    "relu3_1": 1 / 8,
    "relu4_1": 1 / 4,
    "relu5_1": 1.0,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_noticed: set[str] = set()


def imagenet_mean_std(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std [1, 3, 1, 1] on ``like``'s device and dtype."""
    mean = torch.tensor(IMAGENET_MEAN, device=like.device, dtype=like.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=like.device, dtype=like.dtype).view(1, 3, 1, 1)
    return mean, std


def vgg_weights_path(hub_dir: str | Path | None = None) -> Path:
    """Where torchvision keeps (or would download) the VGG-19 weights."""
    from torchvision.models import VGG19_Weights

    if hub_dir is None:
        hub_dir = torch.hub.get_dir()
    name = VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(hub_dir) / "checkpoints" / name


class PerceptualLoss(nn.Module):
    """Weighted L1 distance between frozen VGG-19 activations of two RGB batches in [0, 1]."""

    def __init__(self, features: nn.Sequential, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self.layers = {VGG19_LAYERS[k]: w for k, w in self.weights.items()}
        self.features = features[: max(self.layers) + 1]
        self.features.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # frozen network: always in inference mode
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] x2 -> []
        h = torch.cat([x, y], dim=0)
        mean, std = imagenet_mean_std(h)
        h = (h - mean) / std
        total = x.new_zeros(())
        n = x.shape[0]
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.layers:
                total = total + self.layers[i] * F.l1_loss(h[:n], h[n:].detach())
        return total


def load_vgg19_features(hub_dir: str | Path | None = None) -> nn.Sequential | None:
    """VGG-19's convolutional trunk with ImageNet weights from the local cache; None if absent."""
    from torchvision.models import VGG19_Weights
    from torchvision.models.vgg import cfgs, make_layers

    path = vgg_weights_path(hub_dir)
    if not path.is_file():
        return None
    state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(
        model_dir=str(path.parent), progress=False, weights_only=True, map_location="cpu"
    )
    features = make_layers(cfgs["E"])  # VGG-19's trunk, without the 120M-weight classifier
    trunk = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    features.load_state_dict(trunk)
    return features


def load_perceptual(
    device: torch.device | str = "cpu", hub_dir: str | Path | None = None
) -> PerceptualLoss | None:
    """The VGG perceptual loss on ``device``, or None (with a one-time notice) without weights."""
    features = load_vgg19_features(hub_dir)
    if features is None:
        path = vgg_weights_path(hub_dir)
        if str(path) not in _noticed:
            _noticed.add(str(path))
            log.warning(
                "VGG perceptual loss is off: no VGG-19 weights at %s. Training uses the pixel "
                "loss alone; put torchvision's vgg19-dcbb9e9d.pth there to switch it on.",
                path,
            )
        return None
    return PerceptualLoss(features).to(device)


def perceptual_notice(hub_dir: str | Path | None = None) -> str:
    """One line for progress messages: whether the perceptual term is on."""
    path = vgg_weights_path(hub_dir)
    if path.is_file():
        return f"VGG perceptual loss on ({path})"
    return f"VGG perceptual loss off: no weights at {path}"
