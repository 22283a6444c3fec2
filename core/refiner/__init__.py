"""Refiner: the ×2/×4 upsampling network after the head NeRF (docs/design.md "Refiner").

``RefinerConfig`` (settings), ``RefinerNet`` (the network), ``train_refiner`` (the training job),
``Refiner`` (inference), ``render_refined`` (refined frames of the subject's own track).
"""

from .config import RefinerConfig
from .infer import Refiner, render_refined
from .net import RefinerNet
from .train import RefinerTrainResult, train_refiner

__all__ = [
    "Refiner",
    "RefinerConfig",
    "RefinerNet",
    "RefinerTrainResult",
    "render_refined",
    "train_refiner",
]
