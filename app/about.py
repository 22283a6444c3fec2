"""The text of the About box: what Talkstudio is and which version runs."""

from __future__ import annotations

import platform
from importlib import metadata


def talkstudio_version() -> str:
    """The installed package's version, or a note when the package metadata is missing."""
    try:
        return metadata.version("talkstudio")
    except metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


def about_text() -> str:
    """Rich text for the About box: name, version, what it does, the Python and Qt versions."""
    from PySide6 import __version__ as pyside_version

    return (
        f"<b>Talkstudio</b> {talkstudio_version()}<br>"
        "Audio-driven, editable talking heads (Gaussian-landmark NeRF).<br>"
        "Drag α1/α2/α3 to edit the eyes and the mouth.<br><br>"
        f"<small>Python {platform.python_version()} · PySide6 {pyside_version}</small>"
    )
