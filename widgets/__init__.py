"""Reusable Qt widgets; each is a view of a state object it is given.

The names below are imported on first use (PEP 562), so ``import talkstudio.widgets`` stays
cheap and pulls in neither pyqtgraph's OpenGL module nor QtMultimedia until a view needs them.
Every GL view shares one set of shader programs (pyqtgraph caches them per process): an
application that shows :class:`Landmarks3D` sets ``Qt.AA_ShareOpenGLContexts`` before it creates
its QApplication.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EditState": "state",
    "PlaybackState": "state",
    "Timeline": "timeline",
    "AlphaPanel": "alpha_panel",
    "Landmarks3D": "landmarks3d",
    "Preview": "preview",
    "Transport": "transport",
    "LossHistory": "loss_plot",
    "LossPlot": "loss_plot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
