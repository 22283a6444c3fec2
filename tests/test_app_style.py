"""The dark theme: the style sheet's images resolve, and what Fusion draws itself (spin box
arrows, list views) is light on dark, not black on dark."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import QDoubleSpinBox, QListWidget

from talkstudio.app.studio import configure_application, dark_palette, style_sheet


def _gray(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1)
    return rows[:, : image.width()].copy()  # [H, W]


@pytest.fixture
def themed(qapp):
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    configure_application(qapp)
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)


def test_style_sheet_images_exist() -> None:
    sheet = style_sheet()
    assert "@RESOURCES@" not in sheet
    urls = re.findall(r"url\(([^)]+)\)", sheet)
    assert len(urls) >= 4
    assert all(Path(u).is_file() for u in urls), urls


def test_palette_is_dark_with_light_text() -> None:
    p = dark_palette()
    role = QPalette.ColorRole
    for back, text in ((role.Window, role.WindowText), (role.Base, role.Text)):
        assert p.color(text).lightness() - p.color(back).lightness() > 150


def test_spin_box_arrows_and_lists_are_light_on_dark(qtbot, themed) -> None:
    spin = QDoubleSpinBox()
    spin.setRange(0, 2)
    spin.setValue(1.0)
    spin.resize(120, 30)
    lst = QListWidget()
    lst.addItems(["item one", "item two"])
    lst.resize(160, 60)
    for w in (spin, lst):
        qtbot.addWidget(w)
        w.show()
    spin_px = _gray(spin.grab().toImage())
    arrows = spin_px[:, -16:]  # the button column
    assert np.median(spin_px) < 80  # a dark field
    assert arrows.max() > 180  # with light arrows in it
    list_px = _gray(lst.grab().toImage())
    assert np.median(list_px) < 80 and list_px.max() > 180  # dark list, light text
