"""The α panel as a view of EditState: drags, spin boxes, interpolation, key buttons."""

from __future__ import annotations

import pytest
from conftest import face_track, show_widget, spin_key
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from talkstudio.widgets.alpha_panel import AlphaPanel
from talkstudio.widgets.state import EditState


@pytest.fixture
def setup(qtbot) -> tuple[EditState, AlphaPanel]:
    state = EditState()
    state.set_track(face_track(120))
    return state, show_widget(qtbot, AlphaPanel(state), (760, 130))


def test_slider_drag_sets_the_value_live_in_one_undo_step(qtbot, setup) -> None:
    state, panel = setup
    row = panel.rows["mouth"]
    state.set_frame(30)
    live: list[tuple[str, float]] = []
    panel.valueEdited.connect(lambda n, v: live.append((n, v)))
    row.slider.setSliderDown(True)
    for steps in (120, 150, 175):
        row.slider.setValue(steps)
        assert state.value("mouth") == pytest.approx(steps / 100)
        assert row.spin.value() == pytest.approx(steps / 100)  # the spin box follows
    with qtbot.waitSignal(panel.editCommitted, timeout=1000) as committed:
        row.slider.setSliderDown(False)
    assert committed.args == ["mouth"]
    assert live == [("mouth", 1.2), ("mouth", 1.5), ("mouth", 1.75)]
    assert state.keyframes("mouth") == [(30, 1.75)]
    assert state.undo_stack.count() == 1
    state.undo_stack.undo()
    assert state.keyframes("mouth") == []
    assert row.slider.value() == 100 and row.spin.value() == pytest.approx(1.0)


def test_real_mouse_drag_of_the_handle(qtbot, setup) -> None:
    state, panel = setup
    slider = panel.rows["left_eye"].slider
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider
    )
    start = handle.center()
    end = QPoint(start.x() - slider.width() // 4, start.y())
    with qtbot.waitSignal(panel.editCommitted, timeout=1000):
        qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=start)
        for k in range(1, 6):
            qtbot.mouseMove(slider, QPoint(start.x() + (end.x() - start.x()) * k // 5, start.y()))
        qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=end)
    value = state.value("left_eye")
    assert 0.3 < value < 0.8  # a quarter of the groove to the left of 1
    assert panel.rows["left_eye"].spin.value() == pytest.approx(value, abs=0.006)
    assert state.undo_stack.count() == 1


def test_interpolated_value_is_shown_between_keyframes(setup) -> None:
    state, panel = setup
    state.set_keyframe("right_eye", 20, 0.5)
    state.set_keyframe("right_eye", 60, 1.5)
    row = panel.rows["right_eye"]
    state.set_frame(40)
    assert row.spin.value() == pytest.approx(1.0)
    assert row.slider.value() == 100
    assert "interpolated" in row.indicator.text()
    assert not row.delete_button.isEnabled()
    state.set_frame(30)
    assert row.spin.value() == pytest.approx(0.75)
    assert row.slider.value() == 75
    state.set_frame(20)
    assert "keyframe" in row.indicator.text() and row.delete_button.isEnabled()
    state.set_frame(100)
    assert row.spin.value() == pytest.approx(1.5) and "held" in row.indicator.text()
    # Other rows are untouched.
    assert panel.rows["mouth"].spin.value() == pytest.approx(1.0)


def test_spin_box_and_buttons(qtbot, setup) -> None:
    state, panel = setup
    state.set_frame(10)
    row = spin_key(qtbot, panel, "mouth", 0.4)
    assert state.keyframes("mouth") == [(10, pytest.approx(0.4))]
    assert row.slider.value() == 40
    state.set_frame(50)
    qtbot.mouseClick(row.key_button, Qt.MouseButton.LeftButton)  # pin the held value here
    assert state.keyframes("mouth") == [(10, pytest.approx(0.4)), (50, pytest.approx(0.4))]
    qtbot.mouseClick(row.delete_button, Qt.MouseButton.LeftButton)
    assert state.keyframes("mouth") == [(10, pytest.approx(0.4))]
    qtbot.mouseClick(row.reset_button, Qt.MouseButton.LeftButton)
    assert state.keyframes("mouth") == []
    assert row.spin.value() == pytest.approx(1.0) and not row.reset_button.isEnabled()
    state.undo_stack.undo()  # the reset is one step
    assert state.keyframes("mouth") == [(10, pytest.approx(0.4))]
