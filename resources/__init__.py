"""Built-in assets: landmark index maps, style sheet, icons and the demo subject's weights."""

from __future__ import annotations

from importlib import resources as _res
from pathlib import Path


def resource_path(name: str) -> Path:
    """Filesystem path of the packaged resource ``name`` (a file shipped in this package)."""
    return Path(str(_res.files(__name__).joinpath(name)))
