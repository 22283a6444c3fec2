"""The About box names the running version; F1 lists the keys views handle themselves."""

from __future__ import annotations

from importlib import metadata

from _app_helpers import MULTIMEDIA_NOISE, settings_at
from PySide6.QtCore import Qt

pytestmark = MULTIMEDIA_NOISE


def test_about_names_the_installed_version() -> None:
    from talkstudio.app.about import about_text

    version = metadata.version("talkstudio")
    assert version and f"<b>Talkstudio</b> {version}" in about_text()


def test_f1_lists_delete_for_keyframes(qtbot, tmp_path) -> None:
    from PySide6.QtWidgets import QMessageBox

    from talkstudio.app.actions import shortcut_rows
    from talkstudio.app.main_window import MainWindow

    window = MainWindow(settings=settings_at(tmp_path), device="cpu", use_gl=False)
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    rows = dict(shortcut_rows(window))
    assert rows["Delete the selected keyframe (timeline)"] == "Delete or Backspace"
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    box = window.findChild(QMessageBox, "shortcutsBox")
    assert box is not None and "<b>Delete or Backspace</b>" in box.text()
    box.close()


def test_f1_lists_insert_blink_and_explains_the_more_edits(qtbot, tmp_path) -> None:
    from talkstudio.app.actions import shortcut_rows, show_shortcuts
    from talkstudio.app.main_window import MainWindow

    window = MainWindow(settings=settings_at(tmp_path), device="cpu", use_gl=False)
    qtbot.addWidget(window)
    assert dict(shortcut_rows(window))["Insert blink at the playhead"] == "B"
    box = show_shortcuts(window)
    for words in ("brows", "head motion", "Insert blink", "blink rate"):
        assert words in box.text()
    box.close()
