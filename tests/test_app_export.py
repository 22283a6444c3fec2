"""The export dialog on the real engine (the built-in demo subject): a probed 64² MP4 with sound,
written off the GUI thread; cancel."""

from __future__ import annotations

import pytest
from _app_helpers import (
    MULTIMEDIA_NOISE,
    RENDER_TIMEOUT_MS,
    GuiTicks,
    make_window,
    open_and_render,
)
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from talkstudio.core import media
from talkstudio.core.timing import SAMPLES_PER_FRAME, num_frames

pytestmark = MULTIMEDIA_NOISE


class _UrlSink(QObject):
    """Stands for the desktop's file manager: notes the URLs it is asked to open."""

    def __init__(self, into: list) -> None:
        super().__init__()
        self.into = into

    @Slot(QUrl)
    def take(self, url: QUrl) -> None:
        self.into.append(url)


@pytest.fixture
def window(qtbot, tmp_path, demo_subject):
    return open_and_render(qtbot, make_window(qtbot, tmp_path), demo_subject)


def test_export_writes_a_probed_mp4_off_the_gui_thread(qtbot, window, tmp_path) -> None:
    window.state.set_keyframe("mouth", 4, 1.8)
    window.show_export()
    dialog = window.export_dialog
    assert dialog.isVisible()
    assert not dialog.folder_button.isEnabled()  # nothing written yet
    assert dialog.end_spin.value() == window.state.num_frames - 1  # the whole clip by default
    out = tmp_path / "take.mp4"
    dialog.path_edit.setText(str(out))
    dialog.size_spin.setValue(64)
    dialog.start_spin.setValue(2)
    dialog.end_spin.setValue(12)  # frames 2..12: 11 frames
    assert dialog.range_label.text().startswith("11 frames, 0.44 s")
    with (
        GuiTicks(lambda: dialog.job is not None and dialog.job.running) as ticks,
        qtbot.waitSignal(dialog.exported, timeout=RENDER_TIMEOUT_MS) as done,
    ):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.job is not None and dialog.job.running  # the click did not wait for it
        assert not dialog.export_button.isEnabled() and dialog.cancel_button.isEnabled()
        assert not dialog.browse_button.isEnabled() and not dialog.whole_button.isEnabled()
    assert done.args[0] == out and out.is_file()
    # the GUI thread kept handling its timer while the engine thread rendered and encoded
    assert ticks.while_busy >= 1, ticks.states

    info = media.probe(out)
    assert info.has_video and info.has_audio and (info.width, info.height) == (64, 64)
    frames = media.read_video_frames(out)
    samples = 11 * SAMPLES_PER_FRAME  # the driving audio of frames 2..12
    assert len(frames) == num_frames(samples) == 11
    audio = media.load_audio(out)
    assert abs(len(audio) / 16000 - len(frames) / 25) <= 1 / 25
    qtbot.waitUntil(lambda: dialog.job is None)
    assert dialog.progress.value() == dialog.progress.maximum() == 11
    assert dialog.eta_label.text().startswith(f"wrote {out}")
    assert dialog.close_button.isEnabled() and dialog.whole_button.isEnabled()
    # "Show in folder" hands the folder to the desktop (Qt's handler of file: URLs)
    opened: list[QUrl] = []
    handler = _UrlSink(opened)
    QDesktopServices.setUrlHandler("file", handler, "take")
    try:
        assert dialog.folder_button.isEnabled()
        qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in opened] == [str(out.parent)]
    s = window.session.export_settings
    assert (s.size, s.start_frame, s.end_frame, s.path) == (64, 2, 13, str(out))


def test_cancelled_export_leaves_no_file(qtbot, window, tmp_path) -> None:
    window.show_export()
    dialog = window.export_dialog
    out = tmp_path / "cancelled.mp4"
    dialog.path_edit.setText(str(out))
    dialog.size_spin.setValue(64)
    job = dialog.start_export()
    assert job is not None
    with qtbot.waitSignal(job.progress, timeout=RENDER_TIMEOUT_MS):
        pass
    with qtbot.waitSignal(job.cancelled, timeout=RENDER_TIMEOUT_MS):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job is None)
    assert list(tmp_path.glob("cancelled*")) == []
    assert not any(".part" in p.name or p.name.startswith(".") for p in tmp_path.iterdir())
    assert dialog.eta_label.text().startswith("cancelled")
    assert dialog.export_button.isEnabled() and not dialog.cancel_button.isEnabled()
    # the engine thread is free again: the preview still answers
    with qtbot.waitSignal(window.controller.shown, timeout=RENDER_TIMEOUT_MS):
        window.state.set_frame(7)
