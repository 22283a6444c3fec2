"""EditModel without Qt: events, undoable commands, merging drags, the clean state, the playhead."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import face_track

from talkstudio.core.edit import CHANNEL_NAMES, EditError, Edits
from talkstudio.core.edit_state import EditModel, Event
from talkstudio.core.undo import UndoHistory


class Log:
    """Collects the events of an EditModel."""

    def __init__(self, m: EditModel) -> None:
        self.frames: list[int] = []
        self.keys: list[str] = []
        self.alphas: list[list[float]] = []
        self.tracks = 0
        m.events.frame_changed.connect(self.frames.append)
        m.events.keyframes_changed.connect(self.keys.append)
        m.events.alphas_changed.connect(lambda: self.alphas.append(m.current_alphas().tolist()))
        m.events.track_changed.connect(self._track)

    def _track(self) -> None:
        self.tracks += 1


@pytest.fixture
def model() -> EditModel:
    m = EditModel()
    m.set_track(face_track(100))
    return m


def history(m: EditModel) -> UndoHistory:
    assert isinstance(m.history, UndoHistory)
    return m.history


def test_event_calls_in_order_and_disconnects() -> None:
    event: Event[int] = Event()
    seen: list[tuple[str, int]] = []

    def a(v: int) -> None:
        seen.append(("a", v))

    event.connect(a)
    event.connect(lambda v: seen.append(("b", v)))
    event.emit(3)
    event.disconnect(a)
    event.emit(4)
    assert seen == [("a", 3), ("b", 3), ("b", 4)]
    with pytest.raises(ValueError):
        event.disconnect(a)


def test_keyframe_edits_undo_and_redo(model: EditModel) -> None:
    log = Log(model)
    h = history(model)
    model.set_keyframe("mouth", 10, 2.0)
    model.set_keyframe("mouth", 30, 0.0)
    model.move_keyframe("mouth", 30, 50)
    model.delete_keyframe("mouth", 10)
    assert model.keyframes("mouth") == [(50, 0.0)]
    assert h.texts() == [
        "Set α3 mouth to 2.00 at frame 10",
        "Set α3 mouth to 0.00 at frame 30",
        "Move α3 mouth keyframe from frame 30 to 50",
        "Delete α3 mouth keyframe at frame 10",
    ]
    h.undo()
    h.undo()
    assert model.keyframes("mouth") == [(10, 2.0), (30, 0.0)]
    h.redo()
    assert model.keyframes("mouth") == [(10, 2.0), (50, 0.0)]
    while h.can_undo():
        h.undo()
    assert model.keyframes("mouth") == [] and model.value("mouth", 77) == 1.0
    assert log.keys == ["mouth"] * (4 + 2 + 1 + 3)  # one event per edit, undo and redo
    model.set_keyframe("left_eye", 3, 0.5)  # a new edit drops the undone steps
    assert h.count() == 1 and not h.can_redo()


def test_move_onto_a_keyframe_restores_it_on_undo(model: EditModel) -> None:
    model.set_keyframe("left_eye", 5, 0.2)
    model.set_keyframe("left_eye", 9, 1.8)
    model.move_keyframe("left_eye", 5, 9)
    assert model.keyframes("left_eye") == [(9, 0.2)]
    history(model).undo()
    assert model.keyframes("left_eye") == [(5, 0.2), (9, 1.8)]


def test_reset_is_one_step_and_skipped_without_keyframes(model: EditModel) -> None:
    h = history(model)
    model.reset("right_eye")
    assert h.count() == 0
    model.set_keyframe("right_eye", 1, 0.4)
    model.set_keyframe("right_eye", 60, 1.6)
    model.reset("right_eye")
    assert model.keyframes("right_eye") == [] and h.texts()[-1] == "Reset α2 right eye"
    h.undo()
    assert model.keyframes("right_eye") == [(1, 0.4), (60, 1.6)]


def test_a_drag_is_one_step_until_it_ends(model: EditModel) -> None:
    h = history(model)
    model.set_frame(40)
    for v in (1.1, 1.3, 1.7):
        model.set_value_live("mouth", v)
    assert h.count() == 1 and h.texts() == ["Set α3 mouth to 1.70 at frame 40"]
    model.end_live_edit()
    for v in (0.9, 0.4):
        model.set_value_live("mouth", v)
    model.set_value_live("left_eye", 0.5)  # another factor: a step of its own
    assert h.count() == 3
    h.undo()
    h.undo()
    assert model.keyframes("mouth") == [(40, 1.7)] and model.keyframes("left_eye") == []
    h.undo()
    assert model.keyframes("mouth") == []


def test_a_saved_step_is_never_merged_into(model: EditModel) -> None:
    h = history(model)
    model.set_value_live("mouth", 1.2)
    h.set_clean()
    model.set_value_live("mouth", 1.4)  # same drag, but the state after 1.2 was saved
    assert h.count() == 2 and not h.is_clean()
    h.undo()
    assert h.is_clean() and model.value("mouth") == pytest.approx(1.2)
    h.undo()
    model.set_keyframe("mouth", 5, 0.3)  # the saved state is gone for good
    while h.can_undo():
        h.undo()
    assert not h.is_clean()


def test_alphas_changed_only_when_values_at_the_frame_change(model: EditModel) -> None:
    model.set_keyframe("right_eye", 0, 0.0)
    model.set_keyframe("right_eye", 50, 2.0)
    model.set_frame(10)
    log = Log(model)
    model.set_frame(20)
    model.set_frame(20)  # no move, no event
    assert log.frames == [20]
    assert log.alphas == [[1.0, pytest.approx(0.8), 1.0]]
    model.set_keyframe("mouth", 90, 1.5)  # held before its keyframe: frame 20's α3 too
    model.set_keyframe("mouth", 0, 1.5)  # α3 at frame 20 stays 1.5: nothing to announce
    assert log.alphas[1:] == [[1.0, pytest.approx(0.8), 1.5]]


def test_frame_follows_the_clip_length(model: EditModel) -> None:
    log = Log(model)
    model.set_frame(500)
    assert model.frame == 99
    model.set_track(face_track(20))
    assert model.num_frames == 20 and model.frame == 19 and log.frames == [99, 19]
    model.set_track(None)
    model.set_audio(np.zeros(16000 * 2 + 1, np.float32))
    assert model.num_frames == 51  # ceil(32001 / 640)
    assert log.tracks == 2


def test_edited_landmarks_apply_the_frame_alphas(model: EditModel) -> None:
    base = model.track
    assert base is not None
    model.set_frame(7)
    model.set_value("mouth", 1.0)
    np.testing.assert_allclose(model.edited_landmarks(), base[7], atol=1e-6)
    model.set_value("left_eye", 0.0)
    edited = model.edited_landmarks()
    assert edited is not None and not np.allclose(edited, base[7])
    assert EditModel().edited_landmarks() is None


def test_set_edits_replaces_keys_and_clears_history(model: EditModel) -> None:
    model.set_keyframe("mouth", 3, 0.5)
    log = Log(model)
    model.set_edits(Edits.constant(mouth=1.8))
    assert history(model).count() == 0
    assert model.value("mouth") == pytest.approx(1.8)
    assert sorted(log.keys) == sorted(CHANNEL_NAMES)  # every channel, the α and the others
    assert len(log.alphas) == 1  # announced even where α would not have changed


def test_bad_input_is_refused_clearly(model: EditModel) -> None:
    with pytest.raises(EditError, match=r"\[frames, 68, 3\]"):
        model.set_track(np.zeros((10, 67, 3)))
    with pytest.raises(EditError, match="mono"):
        model.set_audio(np.zeros((10, 2)))
    with pytest.raises(EditError, match="between 0 and 2"):
        model.set_keyframe("mouth", 3, 2.5)
    with pytest.raises(EditError, match="unknown edit"):
        model.set_value_live("nose", 1.0)
    with pytest.raises(EditError, match=">= 0"):
        model.set_keyframe("mouth", -1, 1.0)
    with pytest.raises(EditError, match="no left eye keyframe at frame 4"):
        model.move_keyframe("left_eye", 4, 8)
    assert history(model).count() == 0


def test_the_model_needs_no_qt() -> None:
    code = (
        "import sys\n"
        "for name in ('PySide6', 'pyqtgraph'):\n"
        "    sys.modules[name] = None\n"
        "from talkstudio.core.edit_state import EditModel\n"
        "m = EditModel()\n"
        "m.set_audio(__import__('numpy').zeros(6400, 'float32'))\n"
        "m.set_frame(4)\n"
        "m.set_keyframe('mouth', 4, 0.5)\n"
        "print(m.frame, m.value('mouth'))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["4", "0.5"]
