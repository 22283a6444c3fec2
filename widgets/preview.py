"""The frame preview: shows the latest rendered frame, scaled with its aspect kept.

It renders nothing itself: whoever renders (the worker) calls :meth:`Preview.show_frame` with an
RGB uint8 image, the render time and its kind — "fast" (the edited head region over the cached
frame, shown first) or "full" (the refined frame that follows), or, while playing from the
frame cache, "proxy" (a low-resolution render standing in for the full frame). A line at the
bottom says which it is, how long it took and on which device ("full · render 123 ms · CPU");
a note at the top (:meth:`Preview.set_note`) says when playback is rendering ahead, and a badge
at the top right (:meth:`Preview.set_badge`) when the frame is the unedited "before" render.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from talkstudio.core.errors import TalkstudioError

KINDS = ("fast", "full", "proxy")
KIND_COLORS = {
    "fast": QColor(255, 190, 80),
    "full": QColor(120, 220, 140),
    "proxy": QColor(150, 180, 255),
}
NOTE_COLOR = QColor(255, 200, 90)
BADGE_COLOR = QColor(255, 200, 90, 230)
BACKGROUND = QColor(22, 23, 26)


class PreviewError(TalkstudioError):
    """A frame handed to the preview is not an RGB uint8 image."""


class Preview(QWidget):
    """Shows one RGB frame with an overlay line about its render."""

    def __init__(self, parent: QWidget | None = None, device: str = "CPU") -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._kind = ""
        self._ms = 0.0
        self._device = device
        self._note = ""
        self._badge = ""
        self.setMinimumSize(128, 128)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    @property
    def kind(self) -> str:
        """ "fast" or "full" for the frame shown, "" before the first."""
        return self._kind

    def image(self) -> QImage | None:
        """The frame shown, at its own size."""
        return self._image

    def set_device(self, device: str) -> None:
        """Name of the device renders run on ("CPU", "GPU", …), shown in the overlay."""
        self._device = device
        self.update()

    @property
    def note(self) -> str:
        """The line at the top ("" when none)."""
        return self._note

    def set_note(self, text: str) -> None:
        """Show ``text`` at the top of the preview ("" hides it), e.g. "rendering ahead …"."""
        self._set_text("_note", text)

    @property
    def badge(self) -> str:
        """The tag at the top right ("" when none), e.g. that the frame is the unedited one."""
        return self._badge

    def set_badge(self, text: str) -> None:
        """Show ``text`` at the top right of the preview ("" hides it)."""
        self._set_text("_badge", text)

    def _set_text(self, attr: str, text: str) -> None:
        if text != getattr(self, attr):
            setattr(self, attr, text)
            self.update()

    def overlay_text(self) -> str:
        if self._image is None:
            return "no frame yet"
        return f"{self._kind} · render {self._ms:.0f} ms · {self._device}"

    def show_frame(self, rgb: np.ndarray, ms: float, kind: str) -> None:
        """Show ``rgb`` [H, W, 3] uint8, rendered in ``ms`` milliseconds, of ``kind``."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise PreviewError(
                f"the preview shows RGB uint8 images [H, W, 3]; got {rgb.dtype} {rgb.shape}"
            )
        if kind not in KINDS:
            raise PreviewError(f"render kind must be one of {', '.join(KINDS)}; got {kind!r}")
        data = np.ascontiguousarray(rgb)
        h, w, _ = data.shape
        # QImage borrows the buffer: copy() makes the image own its pixels.
        self._image = QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self._ms = float(ms)
        self._kind = kind
        self.update()

    def clear(self) -> None:
        self._image = None
        self._kind = ""
        self.update()

    def image_rect(self) -> QRect:
        """Where the frame is drawn in the widget: as large as fits, aspect kept, centred."""
        if self._image is None:
            return QRect()
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) // 2
        y = (self.height() - size.height()) // 2
        return QRect(x, y, size.width(), size.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self._image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRectF(self.image_rect()), self._image)
        text = self.overlay_text()
        font = p.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.9, 7.0))
        p.setFont(font)
        metrics = p.fontMetrics()
        box = QRect(
            6,
            self.height() - metrics.height() - 10,
            metrics.horizontalAdvance(text) + 12,
            metrics.height() + 4,
        )
        p.fillRect(box, QColor(0, 0, 0, 160))
        p.setPen(KIND_COLORS.get(self._kind, QColor(200, 200, 200)))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        if self._note:
            width = min(metrics.horizontalAdvance(self._note) + 12, self.width() - 12)
            top = QRect(6, 6, width, metrics.height() + 4)
            p.fillRect(top, QColor(0, 0, 0, 170))
            p.setPen(NOTE_COLOR)
            shown = metrics.elidedText(self._note, Qt.TextElideMode.ElideRight, width - 12)
            p.drawText(top, Qt.AlignmentFlag.AlignCenter, shown)
        if self._badge:
            width = min(metrics.horizontalAdvance(self._badge) + 16, self.width() // 2)
            tag = QRect(self.width() - width - 6, 6, width, metrics.height() + 6)
            p.fillRect(tag, BADGE_COLOR)
            p.setPen(QColor(20, 20, 20))
            shown = metrics.elidedText(self._badge, Qt.TextElideMode.ElideRight, width - 12)
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, shown)
        p.end()
