"""Torso: the deformable-convolution UNet that completes the frame (paper Fig. 4).

``TorsoConfig`` (settings), ``TorsoUNet`` (the network), ``train_torso`` (the training job),
``Compositor``/``compose`` (inference), ``evaluate_torso`` (scores against the baseline).
"""

from .compose import Compositor, compose
from .config import TorsoConfig
from .evaluate import TorsoReport, evaluate_torso
from .train import TorsoTrainResult, train_torso
from .unet import TorsoUNet

__all__ = [
    "Compositor",
    "TorsoConfig",
    "TorsoReport",
    "TorsoTrainResult",
    "TorsoUNet",
    "compose",
    "evaluate_torso",
    "train_torso",
]
