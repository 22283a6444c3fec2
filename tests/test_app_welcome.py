"""The welcome page and what the window does before a subject is open (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from _app_helpers import MULTIMEDIA_NOISE, settings_at
from PySide6.QtCore import Qt

from talkstudio.app.render_controller import merge_modes
from talkstudio.app.session import RECENT_KEY, demo_status
from talkstudio.app.wizard import PAGE_PRESET, PAGE_VIDEO

pytestmark = MULTIMEDIA_NOISE

SHIPPED_DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.json"


def _window(qtbot, tmp_path):
    from talkstudio.app.main_window import MainWindow

    window = MainWindow(settings=settings_at(tmp_path), device="cpu", use_gl=False)
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    return window


def test_welcome_page_before_anything_is_open(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path)
    assert window.stack.currentWidget() is window.welcome
    assert window.windowTitle() == "Talkstudio"
    assert not any(d.isVisible() for d in window.docks.values())
    a = window.actions_
    assert not a.save.isEnabled() and not a.export.isEnabled() and not a.play.isEnabled()
    assert SHIPPED_DEMO.is_file()  # this repository ships the demo subject: it is offered
    assert demo_status() == (True, "")
    qtbot.wait(50)  # the demo check runs right after the first paint
    assert window.welcome.demo_button.isEnabled() and a.open_demo.isEnabled()
    assert not window.welcome.demo_note.isVisible()
    assert window.welcome.recent_empty.isVisible() and not window.welcome.recent.isVisible()


def test_a_missing_demo_is_not_offered_and_the_page_says_why(qtbot, tmp_path, monkeypatch) -> None:
    import talkstudio.core.demo

    monkeypatch.setattr(talkstudio.core.demo, "demo_resources", lambda: tmp_path / "no-demo")
    available, note = demo_status()
    assert not available and "missing" in note and "python -m scripts.make_demo" in note
    window = _window(qtbot, tmp_path)
    qtbot.waitUntil(window.welcome.demo_note.isVisible)
    assert window.welcome.demo_note.text() == note
    assert not window.welcome.demo_button.isEnabled()
    assert not window.actions_.open_demo.isEnabled()


def test_recent_entries_open_and_missing_ones_are_disabled(qtbot, tmp_path, demo_subject):
    subject = demo_subject
    settings = settings_at(tmp_path)
    settings.setValue(RECENT_KEY, [str(subject), str(tmp_path / "gone.talkproj")])
    settings.sync()
    window = _window(qtbot, tmp_path)
    recent = window.welcome.recent
    assert recent.count() == 2
    assert recent.item(0).flags() & Qt.ItemFlag.ItemIsEnabled
    assert not recent.item(1).flags() & Qt.ItemFlag.ItemIsEnabled
    opened = []
    window.welcome.openRecent.connect(opened.append)
    recent.itemActivated.emit(recent.item(1))  # a missing file does nothing
    recent.itemActivated.emit(recent.item(0))
    assert opened == [str(subject)]
    window.close_session()  # nothing open: stays on the welcome page


def test_create_subject_opens_the_wizard(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path)
    qtbot.mouseClick(window.welcome.create_button, Qt.MouseButton.LeftButton)
    wizard = window.wizard
    assert wizard.isVisible()
    assert wizard.currentId() == PAGE_VIDEO and not wizard.video_page.isComplete()
    wizard.reject()
    window.train_subject(tmp_path)  # the other way in: a preprocessed subject
    assert wizard.isVisible() and wizard.currentId() == PAGE_PRESET
    assert wizard.subject_dir() == tmp_path
    wizard.reject()


def test_render_modes_merge() -> None:
    assert merge_modes("", "fast") == "fast"
    assert merge_modes("fast", "full") == "fast+full"
    assert merge_modes("full", "fast") == "fast+full"
    assert merge_modes("fast+full", "fast") == "fast+full"
    assert merge_modes("full", "full") == "full"


def test_f1_lists_every_shortcut_the_window_has(qtbot, tmp_path) -> None:
    from PySide6.QtWidgets import QMessageBox

    from talkstudio.app.actions import shortcut_rows

    window = _window(qtbot, tmp_path)
    with qtbot.waitActive(window):
        window.activateWindow()
    rows = dict(shortcut_rows(window))
    for what, keys in (
        ("Play / pause", "Space"),
        ("Previous frame", "Left"),
        ("Next frame", "Right"),
        ("Undo", "Ctrl+Z"),
        ("Save project", "Ctrl+S"),
        ("Export video", "Ctrl+E"),
        ("Keyboard shortcuts", "F1"),
    ):
        assert rows[what] == keys, (what, rows)
    assert rows["Redo"].split(" or ")[0] == "Ctrl+Shift+Z"
    qtbot.keyClick(window, Qt.Key.Key_F1)
    box = window.findChild(QMessageBox, "shortcutsBox")
    assert box is not None and box.isVisible()
    for keys in ("Space", "Ctrl+Shift+Z", "Ctrl+E"):
        assert f"<b>{keys}" in box.text()
    box.close()
