"""Small display helpers shared by the dialogs: RGB arrays as images, a scaled image label, ETA."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QWidget


def rgb_image(rgb: np.ndarray) -> QImage:
    """A QImage owning a copy of ``rgb`` [H, W, 3] uint8."""
    data = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = data.shape
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def format_eta(seconds: float | None) -> str:
    """ "12 s left", "3 min 05 s left", or "estimating…" before the pace is known."""
    if seconds is None:
        return "estimating…"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s left"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s left"


class FitImage(QFrame):
    """Shows an RGB image as large as fits, aspect kept, centred; a note when there is none."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.placeholder = placeholder

    def sizeHint(self) -> QSize:
        return QSize(240, 160)

    def set_rgb(self, rgb: np.ndarray) -> None:
        self._image = rgb_image(rgb)
        self.update()

    def clear(self) -> None:
        self._image = None
        self.update()

    def has_image(self) -> bool:
        return self._image is not None

    def image(self) -> QImage | None:
        return self._image

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        p = QPainter(self)
        area = self.contentsRect().adjusted(4, 4, -4, -4)
        if self._image is None:
            p.setPen(self.palette().placeholderText().color())
            p.drawText(
                area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder
            )
        else:
            size = self._image.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            x = area.x() + (area.width() - size.width()) // 2
            y = area.y() + (area.height() - size.height()) // 2
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRect(x, y, size.width(), size.height()), self._image)
        p.end()
