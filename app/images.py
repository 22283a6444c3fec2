"""Small display helpers shared by the dialogs: RGB arrays as images, a scaled image label, a
window that shows an image at full size, ETA."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)


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
    """Shows an RGB image as large as fits, aspect kept, centred; a note when there is none.

    ``imageChanged`` fires when an image is set or cleared; ``activated`` on a double click on
    an image (to show it larger, :class:`ImageWindow`).
    """

    imageChanged = Signal(bool)  # noqa: N815 (Qt signal naming)
    """An image was set (True) or cleared (False)."""
    activated = Signal()

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.placeholder = placeholder

    def sizeHint(self) -> QSize:
        return QSize(240, 160)

    def set_rgb(self, rgb: np.ndarray) -> None:
        self.set_image(rgb_image(rgb))

    def set_image(self, image: QImage) -> None:
        self._image = image
        self.update()
        self.imageChanged.emit(True)

    def clear(self) -> None:
        had = self._image is not None
        self._image = None
        self.update()
        if had:
            self.imageChanged.emit(False)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._image is not None and event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit()
        super().mouseDoubleClickEvent(event)

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


class ImageWindow(QDialog):
    """A resizable, non-modal window with an image: fitted to the window, or at 100 % with
    scroll bars. Opens as large as the image, up to nine tenths of the screen."""

    def __init__(self, image: QImage, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("imageWindow")
        self.setSizeGripEnabled(True)
        self.fitted = FitImage()
        self.fitted.set_image(image)
        self.actual = QLabel()
        self.actual.setPixmap(QPixmap.fromImage(image))
        self.actual.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.actual)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.views = QStackedWidget()
        self.views.addWidget(self.fitted)
        self.views.addWidget(scroll)
        self.fit_box = QCheckBox("Fit to the window")
        self.fit_box.setChecked(True)
        self.fit_box.toggled.connect(lambda fit: self.views.setCurrentIndex(0 if fit else 1))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(QLabel(f"{image.width()} × {image.height()} px"))
        row.addStretch(1)
        row.addWidget(self.fit_box)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.views, 1)
        layout.addLayout(row)
        self.setMinimumSize(320, 240)
        screen = (parent.screen() if parent is not None else None) or (
            QGuiApplication.primaryScreen()
        )
        room = screen.availableGeometry().size() * 0.9 if screen is not None else QSize(1200, 900)
        want = QSize(image.width() + 40, image.height() + 80)
        self.resize(want.boundedTo(room).expandedTo(self.minimumSize()))
