"""Qt's standard icons, readable on the studio's dark theme.

Fusion's media and arrow icons (play, pause, seek, undo/redo arrows, volume) are near-black
glyphs: on the dark theme an *enabled* one is darker than a disabled one. :func:`themed_icon`
returns the style's icon, with such dark glyphs repainted light (normal) and dim grey
(disabled); coloured icons (folders, disks) are returned as they are.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyle

GLYPH_COLOR = QColor(220, 223, 228)
"""Colour of a dark glyph when enabled (the theme's text colour)."""
GLYPH_DISABLED = QColor(107, 112, 120)
"""Colour of a dark glyph when disabled (the theme's disabled text colour)."""
DARK_LIMIT = 60
"""A glyph whose opaque pixels average below this grey level (0–255) is repainted."""
SIZES = (16, 24, 32, 48)


def _rgba(pixmap: QPixmap) -> np.ndarray:
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    h, w = image.height(), image.width()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, : 4 * w].reshape(h, w, 4).copy()  # [H, W, 4], owning its pixels


def is_dark_glyph(icon: QIcon) -> bool:
    """Whether ``icon`` is a dark monochrome glyph (unreadable on a dark background)."""
    rgba = _rgba(icon.pixmap(QSize(24, 24)))
    opaque = rgba[..., 3] > 128
    if not opaque.any():
        return False
    return float(rgba[opaque][:, :3].mean()) < DARK_LIMIT


def _tinted(pixmap: QPixmap, color: QColor) -> QPixmap:
    out = QPixmap(pixmap.size())
    out.setDevicePixelRatio(pixmap.devicePixelRatio())
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.drawPixmap(0, 0, pixmap)
    p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
    p.fillRect(out.rect(), color)
    p.end()
    return out


def themed_icon(style: QStyle, which: QStyle.StandardPixmap) -> QIcon:
    """The style's standard icon ``which``; a dark glyph comes back light (and dim disabled)."""
    icon = style.standardIcon(which)
    if not is_dark_glyph(icon):
        return icon
    themed = QIcon()
    for side in SIZES:
        source = icon.pixmap(QSize(side, side))
        themed.addPixmap(_tinted(source, GLYPH_COLOR), QIcon.Mode.Normal)
        themed.addPixmap(_tinted(source, GLYPH_DISABLED), QIcon.Mode.Disabled)
    return themed
