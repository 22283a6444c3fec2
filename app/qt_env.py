"""Keep OpenCV's bundled Qt from reaching PySide6.

``opencv-contrib-python`` (which mediapipe brings) ships Qt 5 plugins and, when ``cv2`` is
imported, points ``QT_QPA_PLATFORM_PLUGIN_PATH`` and ``QT_QPA_FONTDIR`` at them. PySide6 is Qt 6;
handing it Qt 5 plugins can break the platform plugin. :func:`clean_qt_environment` removes those
variables when they point into the cv2 package; the studio calls it before creating its
QApplication, whatever was imported before.
"""

from __future__ import annotations

import os

_CV2_VARS = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "QT_PLUGIN_PATH")


def clean_qt_environment() -> list[str]:
    """Drop Qt variables that point into OpenCV's package; return the names removed."""
    removed = []
    for name in _CV2_VARS:
        value = os.environ.get(name, "")
        if value and f"{os.sep}cv2{os.sep}" in value:
            del os.environ[name]
            removed.append(name)
    return removed
