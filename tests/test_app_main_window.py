"""The main window on the real engine (the built-in demo subject at 64², CPU, offscreen):
opening, the slider → render → preview path, scrubbing, latest-wins, keyframes with undo/redo
through the window, shortcuts, projects with the unsaved-changes prompt, remembered layout."""

from __future__ import annotations

import numpy as np
import pytest
from _app_helpers import (
    MULTIMEDIA_NOISE,
    OPEN_TIMEOUT_MS,
    RENDER_TIMEOUT_MS,
    click,
    make_window,
    open_and_render,
    settings_at,
)
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from talkstudio.core.edit import frame_edit
from talkstudio.core.landmarks import mouth_opening
from talkstudio.core.project import Project
from talkstudio.core.subject import Subject

pytestmark = MULTIMEDIA_NOISE


@pytest.fixture
def window(qtbot, tmp_path, demo_subject):
    w = make_window(qtbot, tmp_path)
    return open_and_render(qtbot, w, demo_subject)


def _pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    return (
        np.frombuffer(image.constBits(), np.uint8)
        .reshape(h, image.bytesPerLine())[:, : 3 * w]
        .reshape(h, w, 3)
        .copy()
    )


def _wait_shown(qtbot, window, kind: str, **match):
    def ok(r) -> bool:
        return r.kind == kind and all(getattr(r, k) == v for k, v in match.items())

    return qtbot.waitSignal(window.controller.shown, timeout=RENDER_TIMEOUT_MS, check_params_cb=ok)


def test_open_subject_shows_the_first_full_frame(window, demo_subject) -> None:
    meta = Subject.open(demo_subject).meta
    assert window.stack.currentWidget() is window.editor_page
    assert window.state.num_frames == meta.train_frames
    assert window.state.track.shape == (meta.train_frames, 68, 3)
    assert window.preview.kind == "full" and window.preview.image().width() == 64
    assert window.status_device.text() == "device: CPU"
    assert "full render" in window.status_render.text()
    assert meta.name in window.windowTitle()
    assert window.session.recent_files()[0] == str(demo_subject.resolve())
    assert all(d.isVisible() for d in window.docks.values())


@pytest.fixture(scope="module")
def reference(demo_subject):
    """A second engine on the same subject, driven directly (what the preview must show)."""
    from talkstudio.core.engine import Engine

    return Engine.open(demo_subject, device="cpu")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to one level of rounding (float order may differ between threads)."""
    return a.shape == b.shape and int(np.abs(a.astype(int) - b).max()) <= 1


def _changed(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels that differ by more than 8 levels in some channel."""
    return int(np.count_nonzero(np.abs(a.astype(int) - b).max(axis=2) > 8))


@pytest.fixture(scope="module")
def half_open(reference) -> int:
    """A frame whose mouth is open about half way: α3 visibly changes it (at frame 0 the
    demo's mouth is closed, and scaling a closed mouth changes nothing)."""
    opening = mouth_opening(reference.track.lm_world.astype(np.float64))  # [T]
    return int(np.argsort(opening)[len(opening) // 2])


def _go_to(qtbot, window, frame: int) -> np.ndarray:
    """Move the playhead to ``frame``; the pixels of its full render once shown."""
    with _wait_shown(qtbot, window, "full", frame=frame):
        window.state.set_frame(frame)
    return _pixels(window.preview.image())


def test_slider_drag_renders_fast_then_full(qtbot, window, reference, half_open) -> None:
    f = half_open
    before = _go_to(qtbot, window, f)
    base = reference.render(f, (1, 1, 1), 64).rgb
    assert _same(before, base)
    sent = window.client.requests
    slider = window.alpha_panel.rows["mouth"].slider
    slider.setSliderDown(True)
    with _wait_shown(qtbot, window, "fast") as fast:
        slider.setValue(195)  # α3 = 1.95 while the handle is held
    assert window.client.requests > sent
    assert fast.args[0].alphas[:3] == (1.0, 1.0, 1.95)  # the α of the whole frame edit
    during = _pixels(window.preview.image())
    assert window.preview.kind == "fast"
    # the preview shows the engine's fast edit: the re-rendered head region over the cached frame
    expected_fast = reference.render_fast(f, (1, 1, 1.95), 64)
    assert expected_fast.kind == "fast" and _same(during, expected_fast.rgb)
    assert _changed(during, before) >= 10  # the mouth opened on the preview
    sent = window.client.requests
    with _wait_shown(qtbot, window, "full", alphas=frame_edit((1.0, 1.0, 1.95))):
        slider.setSliderDown(False)  # the release asks for the full frame
    # the fast render of 1.95 was already asked for by the drag: the release adds the full only
    assert window.client.requests == sent + 1 and window.client.last_request.mode == "full"
    after = _pixels(window.preview.image())
    assert window.preview.kind == "full"
    assert _same(after, reference.render(f, (1, 1, 1.95), 64).rgb)
    assert _changed(after, before) >= 10
    rows = np.flatnonzero(np.abs(after.astype(int) - before).max(axis=(1, 2)) > 8)
    assert rows.min() > 64 // 3  # below the eyes: the mouth changed, nothing above it
    assert window.state.undo_stack.count() == 1  # the whole drag is one undo step


def test_real_mouse_drag_of_a_slider_updates_the_preview(
    qtbot, window, reference, half_open
) -> None:
    f = half_open
    before = _go_to(qtbot, window, f)
    slider = window.alpha_panel.rows["mouth"].slider
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider
    )
    start = handle.center()
    end = QPoint(start.x() + slider.width() // 3, start.y())
    with _wait_shown(qtbot, window, "full"):
        qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=start)
        for k in range(1, 6):
            qtbot.mouseMove(slider, QPoint(start.x() + (end.x() - start.x()) * k // 5, start.y()))
        qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=end)
    mouth = window.state.value("mouth")
    assert 1.3 < mouth <= 2.0
    assert window.controller.last_shown.alphas[:3] == (1.0, 1.0, round(mouth, 4))
    expected = reference.render(f, (1, 1, mouth), 64).rgb
    shown = _pixels(window.preview.image())
    assert _same(shown, expected)
    assert _changed(shown, before) >= 5


def test_scrub_changes_the_frame_and_the_preview(qtbot, window, reference) -> None:
    before = _pixels(window.preview.image())
    timeline = window.timeline
    target = window.state.num_frames - 5
    with _wait_shown(qtbot, window, "full", frame=target):
        click(timeline.plot.viewport(), timeline.widget_pos((target + 0.5) / 25, 0.3))
    assert window.state.frame == target
    assert window.transport.time_label.text().split("frame ")[1].startswith(f"{target} /")
    shown = _pixels(window.preview.image())
    assert _same(shown, reference.render(target, (1, 1, 1), 64).rgb)
    assert np.mean(np.any(shown != before, axis=2)) > 0.05  # another pose, another frame


def test_latest_request_wins_and_stale_results_are_dropped(qtbot, window) -> None:
    dropped = []
    window.controller.dropped.connect(dropped.append)
    replaced = window.client.replaced
    last = window.state.num_frames - 1
    with _wait_shown(qtbot, window, "full", frame=last):
        for f in range(1, last + 1):  # a fast scrub: one request per frame, no waiting
            window.state.set_frame(f)
            window.controller.flush()
    # only a few of these renders ran: the waiting request was replaced by each newer one
    assert window.client.replaced - replaced >= last - 3
    assert all(r.frame != last for r in dropped)  # what was dropped was stale
    assert window.controller.last_shown.frame == last == window.state.frame


def test_keyframes_add_move_delete_with_undo_redo_through_the_window(qtbot, window) -> None:
    with qtbot.waitActive(window):
        window.activateWindow()
    state, panel, timeline = window.state, window.alpha_panel, window.timeline
    state.set_frame(10)
    panel.rows["left_eye"].spin.setValue(0.2)  # a keyframe at frame 10
    qtbot.mouseClick(panel.rows["mouth"].key_button, Qt.MouseButton.LeftButton)  # key α3 = 1
    assert state.keyframes("left_eye") == [(10, pytest.approx(0.2))]
    assert state.keyframes("mouth") == [(10, 1.0)]
    assert window.isWindowModified()
    timeline.select("left_eye", 10)
    timeline.move_selected(30)
    assert state.keyframes("left_eye") == [(30, pytest.approx(0.2))]
    click(timeline.plot.viewport(), timeline.widget_pos(10 / 25, -3.1))  # the α3 diamond
    assert timeline.selected == ("mouth", 10)
    qtbot.keyClick(timeline.plot, Qt.Key.Key_Delete)
    assert state.keyframes("mouth") == []

    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo delete
    assert state.keyframes("mouth") == [(10, 1.0)]
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo move
    assert state.keyframes("left_eye") == [(10, pytest.approx(0.2))]
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_Z, redo)
    qtbot.keyClick(window, Qt.Key.Key_Z, redo)
    assert state.keyframes("left_eye") == [(30, pytest.approx(0.2))]
    assert state.keyframes("mouth") == []
    for _ in range(4):
        window.actions_.undo.trigger()
    assert not window.isWindowModified()  # back at the clean state
    assert state.keyframes("left_eye") == [] and state.keyframes("mouth") == []


def test_space_plays_and_arrows_step(qtbot, window) -> None:
    with qtbot.waitActive(window):
        window.activateWindow()
    window.state.set_frame(5)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.state.frame == 6
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.state.frame == 4
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.playback.playing
    qtbot.waitUntil(lambda: window.state.frame >= 8, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.playback.playing


def test_ctrl_s_saves_and_ctrl_e_opens_the_export_dialog(qtbot, window, tmp_path) -> None:
    with qtbot.waitActive(window):
        window.activateWindow()
    assert window.save_project_to(tmp_path / "keys")
    window.state.set_keyframe("mouth", 5, 1.5)
    assert window.isWindowModified()
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not window.isWindowModified()
    assert Project.load(tmp_path / "keys.talkproj").edits.track("mouth").keys == {5: 1.5}
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.path_edit.text() == str(tmp_path / "keys.mp4")
    dialog.reject()
    assert not dialog.isVisible()


def test_project_save_load_and_the_unsaved_prompt(qtbot, window, tmp_path, demo_subject):
    window.state.set_keyframe("mouth", 12, 1.6)
    window.state.set_keyframe("right_eye", 3, 0.0)
    assert window.is_dirty() and window.isWindowModified()
    path = tmp_path / "take1"
    assert window.save_project_to(path)
    saved = tmp_path / "take1.talkproj"
    assert window.session.project_path == saved and not window.isWindowModified()
    project = Project.load(saved)
    assert project.subject == demo_subject.resolve()
    assert project.edits.track("mouth").keys == {12: 1.6}
    assert project.audio is None  # the subject's own speech

    window.state.set_keyframe("mouth", 20, 0.5)  # unsaved again
    asked = []
    window.ask_unsaved = lambda: asked.append(1) or "cancel"
    assert not window.open_target(saved)  # cancelled: nothing happens
    assert asked and window.state.keyframes("mouth") == [(12, 1.6), (20, 0.5)]
    window.ask_unsaved = lambda: "discard"
    with qtbot.waitSignal(window.sessionOpened, timeout=RENDER_TIMEOUT_MS):
        assert window.open_target(saved)
    assert window.state.keyframes("mouth") == [(12, 1.6)]
    assert window.state.keyframes("right_eye") == [(3, 0.0)]
    assert not window.is_dirty() and window.state.undo_stack.count() == 0
    assert window.windowTitle().startswith("take1.talkproj")
    assert window.session.recent_files()[0] == str(saved.resolve())


def test_layout_and_recent_files_are_remembered(qtbot, window, tmp_path) -> None:
    window.docks["view3d"].hide()
    window.resize(760, 700)  # within the 800² offscreen screen
    size = (window.width(), window.height())
    assert size == (760, 700)
    window.close()  # saves the layout
    from talkstudio.app.main_window import MainWindow

    again = MainWindow(settings=settings_at(tmp_path), device="cpu", use_gl=False)
    qtbot.addWidget(again)
    again.show()
    assert (again.width(), again.height()) == size
    assert again.stack.currentWidget() is again.welcome
    assert again.welcome.recent.count() == 1
    again.show_editor()  # the docks come back as they were left
    assert not again.docks["view3d"].isVisible() and again.docks["timeline"].isVisible()
    again.reset_layout()
    assert again.docks["view3d"].isVisible()


def test_close_session_and_bad_subject(qtbot, window, tmp_path) -> None:
    assert window.close_session()
    assert window.stack.currentWidget() is window.welcome
    assert window.state.num_frames == 0 and window.session.info is None
    not_a_subject = tmp_path / "empty"
    not_a_subject.mkdir()
    with qtbot.waitSignal(window.errorShown, timeout=RENDER_TIMEOUT_MS) as err:
        window.open_target(not_a_subject)
    assert "empty" in err.args[0]
    assert window.stack.currentWidget() is window.welcome
    assert not window.status_progress.isVisible()


def test_a_failed_render_is_worded_in_the_status_bar(qtbot, window, monkeypatch) -> None:
    engine = window.client.worker.engine

    def broken(*args, **kwargs):
        raise RuntimeError("the device went away")

    monkeypatch.setattr(engine, "render", broken)
    monkeypatch.setattr(engine, "render_fast", broken)
    boxes: list[str] = []
    window.errorShown.connect(boxes.append)
    with qtbot.waitSignal(window.session.renderFailed, timeout=RENDER_TIMEOUT_MS) as failed:
        window.state.set_frame(window.state.frame + 1)  # asks for a full render
    assert isinstance(failed.args[0], RuntimeError)  # the exception itself, worded by the window
    assert window.last_error.startswith("RuntimeError: the device went away")
    assert "in broken" in window.last_error  # with the short trace of an unexpected error
    message = window.statusBar().currentMessage()
    assert message == "render failed: RuntimeError: the device went away"
    assert not boxes and window.session.is_open()  # no message box; the session stays open


def test_start_without_a_target_opens_the_demo_subject(
    qtbot, tmp_path, demo_subject, monkeypatch
) -> None:
    """What ``talkstudio studio`` (and ``talkstudio`` alone) does after the first paint."""
    from talkstudio.app.studio import open_initial

    monkeypatch.setenv("TALKSTUDIO_CACHE", str(demo_subject.parent))  # made once per run
    window = make_window(qtbot, tmp_path)
    assert window.welcome.isVisible()
    with qtbot.waitSignal(
        window.controller.shown,
        timeout=OPEN_TIMEOUT_MS,
        check_params_cb=lambda r: r.kind == "full",
    ):
        open_initial(window, None)
    assert window.session.info is not None
    assert window.session.info.subject.resolve() == demo_subject.resolve()
    assert window.stack.currentWidget() is window.editor_page
    assert window.alpha_panel.rows["mouth"].slider.isEnabled()
    assert window.windowTitle().startswith(Subject.open(demo_subject).meta.name)
