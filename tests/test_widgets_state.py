"""EditState and PlaybackState without any widget: undoable edits, signals, real-time playback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import face_track

from talkstudio.core.edit import CHANNEL_NAMES, EditError, Edits
from talkstudio.core.landmarks import eye_opening, mouth_opening
from talkstudio.widgets.state import EditState, PlaybackState

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def state(qapp: object) -> EditState:
    s = EditState()
    s.set_track(face_track(100))
    return s


class Recorder:
    """Collects the signals of an EditState."""

    def __init__(self, s: EditState) -> None:
        self.frames: list[int] = []
        self.keys: list[str] = []
        self.alphas: list[list[float]] = []
        s.frameChanged.connect(self.frames.append)
        s.keyframesChanged.connect(self.keys.append)
        s.alphasChanged.connect(lambda: self.alphas.append(s.current_alphas().tolist()))


def test_keyframe_set_move_delete_undo_redo(state: EditState) -> None:
    rec = Recorder(state)
    stack = state.undo_stack
    state.set_keyframe("mouth", 10, 2.0)
    state.set_keyframe("mouth", 30, 0.0)
    assert state.keyframes("mouth") == [(10, 2.0), (30, 0.0)]
    assert state.value("mouth", 20) == pytest.approx(1.0)
    assert rec.keys == ["mouth", "mouth"]
    state.move_keyframe("mouth", 30, 50)
    assert state.keyframes("mouth") == [(10, 2.0), (50, 0.0)]
    assert state.value("mouth", 30) == pytest.approx(1.0)
    state.delete_keyframe("mouth", 10)
    assert state.keyframes("mouth") == [(50, 0.0)]
    assert stack.count() == 4
    stack.undo()
    assert state.keyframes("mouth") == [(10, 2.0), (50, 0.0)]
    stack.undo()
    assert state.keyframes("mouth") == [(10, 2.0), (30, 0.0)]
    stack.redo()
    stack.redo()
    assert state.keyframes("mouth") == [(50, 0.0)]
    # Undo all the way: no keyframes, the factor is 1 everywhere again.
    while stack.canUndo():
        stack.undo()
    assert state.keyframes("mouth") == []
    assert state.value("mouth", 77) == 1.0
    assert rec.keys.count("mouth") == 4 + 4 + 4  # edits, undo-redo pairs, undo of all four


def test_move_onto_a_keyframe_restores_it_on_undo(state: EditState) -> None:
    state.set_keyframe("left_eye", 5, 0.2)
    state.set_keyframe("left_eye", 9, 1.8)
    state.move_keyframe("left_eye", 5, 9)
    assert state.keyframes("left_eye") == [(9, 0.2)]
    state.undo_stack.undo()
    assert state.keyframes("left_eye") == [(5, 0.2), (9, 1.8)]


def test_live_values_merge_into_one_undo_step_per_drag(state: EditState) -> None:
    state.set_frame(40)
    for v in (1.1, 1.3, 1.7):
        state.set_value_live("mouth", v)
    assert state.value("mouth") == pytest.approx(1.7)
    state.end_live_edit()
    assert state.undo_stack.count() == 1
    for v in (0.9, 0.4):  # a second drag is a second step
        state.set_value_live("mouth", v)
    state.end_live_edit()
    assert state.undo_stack.count() == 2
    state.undo_stack.undo()
    assert state.keyframes("mouth") == [(40, 1.7)]
    state.undo_stack.undo()
    assert state.keyframes("mouth") == []


def test_undo_steps_are_named_by_the_model_commands(state: EditState) -> None:
    state.set_value_live("mouth", 1.2)
    state.set_value_live("mouth", 1.6)  # merged: the step's text follows the last value
    state.move_keyframe("mouth", 0, 12)
    stack = state.undo_stack
    assert [stack.text(i) for i in range(stack.count())] == [
        "Set α3 mouth to 1.60 at frame 0",
        "Move α3 mouth keyframe from frame 0 to 12",
    ]
    assert stack.undoText() == "Move α3 mouth keyframe from frame 0 to 12"


def test_alphas_changed_only_when_values_at_the_frame_change(state: EditState) -> None:
    state.set_keyframe("right_eye", 0, 0.0)
    state.set_keyframe("right_eye", 50, 2.0)
    state.set_frame(10)
    rec = Recorder(state)
    state.set_frame(20)
    assert rec.frames == [20]
    assert rec.alphas == [[1.0, pytest.approx(0.8), 1.0]]
    state.set_keyframe("mouth", 90, 1.5)  # held before: changes frame 20's α3 too
    assert rec.alphas[-1] == [1.0, pytest.approx(0.8), 1.5]
    state.set_keyframe("mouth", 0, 1.5)  # α3 at frame 20 stays 1.5: nothing to announce
    assert len(rec.alphas) == 2


def test_edited_landmarks_apply_the_frame_alphas(state: EditState) -> None:
    base = state.track
    assert base is not None
    state.set_frame(7)
    np.testing.assert_allclose(state.edited_landmarks(), base[7], atol=1e-6)
    state.set_value("mouth", 2.0)
    state.set_value("left_eye", 0.0)
    edited = state.edited_landmarks()
    assert edited is not None
    assert mouth_opening(edited) == pytest.approx(2 * mouth_opening(base[7]), rel=0.05)
    assert eye_opening(edited, left=True) < 0.01
    assert eye_opening(edited, left=False) == pytest.approx(eye_opening(base[7], left=False))


def test_frame_is_clamped_and_follows_the_clip_length(qapp: object) -> None:
    s = EditState()
    assert s.num_frames == 0 and s.edited_landmarks() is None
    s.set_audio(np.zeros(16000 * 2 + 1, np.float32))
    assert s.num_frames == 51  # ceil(32001 / 640)
    s.set_frame(500)
    assert s.frame == 50
    s.set_track(face_track(20))
    assert s.num_frames == 20 and s.frame == 19
    s.set_frame(-5)
    assert s.frame == 0


def test_bad_input_is_refused_clearly(state: EditState) -> None:
    with pytest.raises(EditError, match=r"\[frames, 68, 3\]"):
        state.set_track(np.zeros((10, 67, 3)))
    with pytest.raises(EditError, match="between 0 and 2"):
        state.set_keyframe("mouth", 3, 2.5)
    with pytest.raises(EditError, match="unknown edit"):
        state.set_keyframe("nose", 3, 1.0)
    with pytest.raises(EditError, match="no mouth keyframe at frame 4"):
        state.delete_keyframe("mouth", 4)
    assert state.undo_stack.count() == 0


def test_set_edits_replaces_keys_and_clears_history(state: EditState) -> None:
    state.set_keyframe("mouth", 3, 0.5)
    rec = Recorder(state)
    state.set_edits(Edits.constant(mouth=1.8))
    assert state.undo_stack.count() == 0
    assert state.value("mouth") == pytest.approx(1.8)
    assert sorted(rec.keys) == sorted(CHANNEL_NAMES)  # every channel, the α and the others


def test_playback_runs_in_real_time_and_stops_at_the_end(qtbot, state: EditState) -> None:
    play = PlaybackState(state)
    state.set_frame(90)
    with qtbot.waitSignal(play.playingChanged, timeout=1000) as started:
        play.play()
    assert started.args == [True]
    # 10 frames at 25 fps: 0.4 s, then it stops on the last frame.
    with qtbot.waitSignal(play.playingChanged, timeout=3000) as stopped:
        pass
    assert stopped.args == [False]
    assert state.frame == 99 and not play.playing


def test_playback_loops_and_reanchors_on_seek(qtbot, state: EditState) -> None:
    play = PlaybackState(state)
    play.set_loop(True)
    seeks: list[int] = []
    play.seeked.connect(seeks.append)
    state.set_frame(95)
    play.play()
    qtbot.waitUntil(lambda: 0 < state.frame < 50, timeout=3000)  # wrapped past the end
    assert play.playing and 0 in seeks
    state.set_frame(60)  # someone seeks while playing
    assert seeks[-1] == 60
    qtbot.waitUntil(lambda: state.frame >= 62, timeout=3000)
    play.pause()
    assert not play.playing
    play.step(-3)
    assert state.frame >= 59


def test_widgets_import_neither_torch_nor_the_app() -> None:
    code = (
        "import sys\n"
        "import talkstudio.widgets\n"
        "assert 'pyqtgraph' not in sys.modules  # the package itself is light\n"
        "import talkstudio.widgets.alpha_panel, talkstudio.widgets.landmarks3d, "
        "talkstudio.widgets.loss_plot, talkstudio.widgets.preview, talkstudio.widgets.state, "
        "talkstudio.widgets.timeline, talkstudio.widgets.transport\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('talkstudio.app')]\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    for path in (REPO / "widgets").glob("*.py"):
        assert "talkstudio.app" not in path.read_text("utf-8"), path
