"""The studio's before/after toggle (\\) on the real engine, and what closing a session (Ctrl+W)
leaves in the status bar (the built-in demo subject at 64², CPU, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from _app_helpers import MULTIMEDIA_NOISE, RENDER_TIMEOUT_MS, make_window, open_and_render
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from talkstudio.core.edit import NEUTRAL_EDIT

pytestmark = MULTIMEDIA_NOISE


@pytest.fixture
def window(qtbot, tmp_path, demo_subject):
    return open_and_render(qtbot, make_window(qtbot, tmp_path), demo_subject)


def _rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, : 3 * w].reshape(h, w, 3).astype(np.float64)


def _full_with(window, edit):
    def ok(result) -> bool:
        return result.kind == "full" and np.allclose(result.alphas, edit, atol=1e-4)

    return ok


def test_backslash_shows_the_unedited_frame_and_back(qtbot, window) -> None:
    state = window.state
    assert not window.before_action.isChecked() and window.preview.badge == ""
    frame = state.frame
    edited = (1.0, 1.0, 2.0, *NEUTRAL_EDIT[3:])  # the mouth opened to twice its opening
    with qtbot.waitSignal(
        window.controller.shown,
        timeout=RENDER_TIMEOUT_MS,
        check_params_cb=_full_with(window, edited),
    ):
        state.set_keyframe("mouth", frame, 2.0)
    after = _rgb(window.preview.image())
    timeline = window.timeline  # the key works wherever the focus is, but in text and number fields
    timeline.setFocus()
    with qtbot.waitSignal(
        window.controller.shown,
        timeout=RENDER_TIMEOUT_MS,
        check_params_cb=_full_with(window, NEUTRAL_EDIT),
    ):
        qtbot.keyClick(timeline, Qt.Key.Key_Backslash)
    assert window.before_action.isChecked()
    assert "BEFORE" in window.preview.badge
    before = _rgb(window.preview.image())
    changed = np.abs(after - before).max(axis=2) > 8
    assert changed.sum() >= 10  # the mouth's edit shows as a difference (at 64², a few pixels)
    assert state.keyframes("mouth") == [(frame, 2.0)]  # comparing changed no edit
    with qtbot.waitSignal(
        window.controller.shown,
        timeout=RENDER_TIMEOUT_MS,
        check_params_cb=_full_with(window, edited),
    ):
        qtbot.keyClick(timeline, Qt.Key.Key_Backslash)
    assert window.preview.badge == "" and not window.before_action.isChecked()
    np.testing.assert_allclose(_rgb(window.preview.image()), after, atol=2.0)
    window.before_action.setChecked(True)
    window.playback.play()  # playback shows the edited frames: the toggle lets go
    assert not window.before_action.isChecked() and window.preview.badge == ""
    window.playback.pause()


def test_closing_the_session_clears_its_render_from_the_status_bar(qtbot, window) -> None:
    assert "full render" in window.status_render.text()
    assert window.status_device.text() == "device: CPU"
    window.activateWindow()
    QTest.keySequence(window, window.actions_.close_session.shortcut())  # Ctrl+W (or Ctrl+F4)
    assert window.stack.currentWidget() is window.welcome
    assert "render" not in window.status_render.text()
    assert "frame" not in window.status_render.text()
    assert window.status_device.text() == "device: –"
    assert not window.before_action.isEnabled()
