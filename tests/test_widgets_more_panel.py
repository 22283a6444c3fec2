"""The "More" rows of the edits panel: brows and head-motion sliders, blink insertion and rate."""

from __future__ import annotations

import pytest
from conftest import face_track, show_widget, spin_key

from talkstudio.core.blinks import BlinkSchedule
from talkstudio.core.edit import TypicalOpening
from talkstudio.core.landmarks import eye_opening
from talkstudio.widgets.alpha_panel import AlphaPanel
from talkstudio.widgets.state import EditState


@pytest.fixture
def setup(qtbot) -> tuple[EditState, AlphaPanel]:
    state = EditState()
    track = face_track(120)
    state.set_track(track, TypicalOpening.of_track(track), BlinkSchedule(auto=False))
    return state, show_widget(qtbot, AlphaPanel(state), (760, 240))


def test_brow_slider_drag_is_one_undo_step_and_moves_the_brows(qtbot, setup) -> None:
    state, panel = setup
    row = panel.rows["brows"]
    assert (row.slider.minimum(), row.slider.maximum()) == (-100, 100)
    assert row.slider.value() == 0 and row.spin.value() == 0.0
    before = state.edited_landmarks()
    state.set_frame(20)
    row.slider.setSliderDown(True)
    for steps in (20, 45, 60):
        row.slider.setValue(steps)
    with qtbot.waitSignal(panel.editCommitted, timeout=1000):
        row.slider.setSliderDown(False)
    assert state.keyframes("brows") == [(20, 0.6)]
    assert state.undo_stack.count() == 1
    assert state.undo_stack.text(0) == "Set brows to 0.60 at frame 20"
    after = state.edited_landmarks()
    assert before is not None and after is not None
    assert (after[17:27, 1] < before[17:27, 1]).all()  # up (y points down)
    state.undo_stack.undo()
    assert row.slider.value() == 0 and state.keyframes("brows") == []


def test_head_motion_spin_box_keys_a_still_head(qtbot, setup) -> None:
    state, panel = setup
    state.set_frame(5)
    row = spin_key(qtbot, panel, "head_motion", 0.0)
    assert state.keyframes("head_motion") == [(5, 0.0)]
    assert state.frame_edit(100)[6] == 0.0  # held after the last key
    assert row.indicator.text() == "◆ keyframe"


def test_insert_blink_and_blink_rate(qtbot, setup) -> None:
    state, panel = setup
    row = panel.blink
    state.set_frame(60)
    assert not row.delete_button.isEnabled()
    with qtbot.waitSignal(panel.editCommitted, timeout=1000):
        row.insert_button.click()
    assert state.keyframes("blink") == [(60, 1.0)]
    assert state.undo_stack.text(state.undo_stack.count() - 1) == "Insert blink at frame 60"
    assert row.indicator.text() == "◆ blink here" and row.delete_button.isEnabled()
    closed = state.edited_landmarks()
    assert closed is not None and eye_opening(closed, True) == pytest.approx(0.0, abs=1e-9)
    state.set_frame(62)
    assert row.indicator.text() == "◇ blink at 60"

    assert row.rate.text() == "auto"
    row.rate.setValue(20)
    assert state.blink_rate == 20.0
    assert state.undo_stack.text(state.undo_stack.count() - 1) == "Set blink rate to 20/min"
    assert min(state.frame_edit(f)[4] for f in range(120)) == 0.0  # synthesised blinks now
    state.undo_stack.undo()
    assert state.blink_rate is None and row.rate.text() == "auto"
    row.delete_button.setEnabled(True)
    state.set_frame(60)
    row.delete_button.click()
    assert state.keyframes("blink") == []
