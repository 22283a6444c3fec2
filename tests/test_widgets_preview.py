"""The preview shows the frame it is given, aspect kept, with the render line."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import show_widget

from talkstudio.widgets.preview import Preview, PreviewError


def _color(img, x: int, y: int) -> tuple[int, int, int]:
    c = img.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def _near(got: tuple[int, int, int], want: tuple[int, int, int], tol: int = 10) -> bool:
    """Equal up to the display's colour conversion (an X server may shift a few levels)."""
    return max(abs(a - b) for a, b in zip(got, want)) <= tol


def test_preview_shows_the_image_letterboxed(qtbot) -> None:
    preview = show_widget(qtbot, Preview(), (300, 300))
    rgb = np.zeros((40, 80, 3), np.uint8)  # 2:1, left half red, right half blue
    rgb[:, :40] = (220, 30, 30)
    rgb[:, 40:] = (30, 40, 210)
    preview.show_frame(rgb, 123.4, "full")
    assert preview.overlay_text() == "full · render 123 ms · CPU"
    rect = preview.image_rect()
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (0, 75, 300, 150)
    img = preview.grab().toImage()
    assert _near(_color(img, 75, 150), (220, 30, 30))
    assert _near(_color(img, 225, 120), (30, 40, 210))
    assert max(_color(img, 150, 30)) < 40  # letterbox above the picture is dark
    assert max(_color(img, 150, 272)) < 60  # and below it, left of nothing but the overlay box
    # A new frame replaces the old one; the kind and time are shown.
    preview.set_device("GPU")
    preview.show_frame(np.full((40, 20, 3), 200, np.uint8), 7.0, "fast")  # 1:2, tall
    assert preview.overlay_text() == "fast · render 7 ms · GPU"
    img = preview.grab().toImage()
    assert _near(_color(img, 150, 100), (200, 200, 200))
    assert _near(_color(img, 80, 100), (200, 200, 200))
    assert max(_color(img, 60, 100)) < 40  # now pillarboxed: x in [75, 225) only
    assert max(_color(img, 240, 100)) < 40


def test_preview_keeps_its_own_copy_of_the_pixels(qtbot) -> None:
    preview = Preview()
    qtbot.addWidget(preview)
    rgb = np.full((8, 8, 3), 90, np.uint8)
    preview.show_frame(rgb, 1.0, "fast")
    rgb[:] = 0  # the caller reuses its buffer
    image = preview.image()
    assert image is not None and image.pixelColor(4, 4).red() == 90


def test_preview_refuses_bad_frames(qtbot) -> None:
    preview = Preview()
    qtbot.addWidget(preview)
    with pytest.raises(PreviewError, match="RGB uint8"):
        preview.show_frame(np.zeros((8, 8, 3), np.float32), 1.0, "fast")
    with pytest.raises(PreviewError, match="RGB uint8"):
        preview.show_frame(np.zeros((8, 8), np.uint8), 1.0, "fast")
    with pytest.raises(PreviewError, match="fast, full"):
        preview.show_frame(np.zeros((8, 8, 3), np.uint8), 1.0, "slow")
    assert preview.image() is None and preview.overlay_text() == "no frame yet"
