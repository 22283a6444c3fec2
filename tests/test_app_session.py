"""The session without a window, and the engine thread's typed failures (exception objects)."""

from __future__ import annotations

import gc
import weakref

import pytest
from _app_helpers import OPEN_TIMEOUT_MS, settings_at

from talkstudio.app.jobs import describe_error
from talkstudio.app.session import Session
from talkstudio.app.worker import EngineClient, RequestKind, _detached
from talkstudio.core.errors import TalkstudioError
from talkstudio.core.project import Project
from talkstudio.core.subject import Subject
from talkstudio.widgets.state import EditState


class _Payload:
    """A local variable whose lifetime the test watches."""


def test_a_reported_exception_keeps_its_trace_but_not_its_locals() -> None:
    def fails() -> None:
        payload = _Payload()
        watch.append(weakref.ref(payload))
        raise ValueError("bad frame")

    watch: list[weakref.ref[_Payload]] = []
    try:
        try:
            fails()
        except ValueError as inner:
            raise RuntimeError("render failed") from inner
    except RuntimeError as exc:
        error = exc
    gc.collect()
    assert watch[0]() is not None  # the traceback holds the frame of `fails` and its locals
    assert _detached(error) is error
    gc.collect()
    assert watch[0]() is None
    text = describe_error(error)
    assert text.startswith("RuntimeError: render failed") and "in fails" in text


@pytest.fixture
def client(qtbot, tmp_path):
    settings_at(tmp_path)  # the PySide6 refcount guard
    c = EngineClient("cpu")
    yield c
    c.shutdown()


def test_engine_failures_arrive_as_typed_exceptions(qtbot, client, tmp_path) -> None:
    with qtbot.waitSignal(client.failed, timeout=10_000) as failed:
        client.drive(tmp_path / "speech.wav")  # nothing is open yet
    kind, error = failed.args
    assert kind is RequestKind.DRIVE and isinstance(error, TalkstudioError)
    assert "open a subject" in str(error)

    with qtbot.waitSignal(client.failed, timeout=OPEN_TIMEOUT_MS) as failed:
        client.open_session(tmp_path / "no-such-subject")
    kind, error = failed.args
    assert kind is RequestKind.OPEN and isinstance(error, TalkstudioError)
    assert "no-such-subject" in describe_error(error)


def test_a_session_opens_edits_saves_and_closes_without_a_window(
    qtbot, client, tmp_path, demo_subject
) -> None:
    state = EditState()
    session = Session(state, client, settings_at(tmp_path))
    changes: list[int] = []
    session.changed.connect(lambda: changes.append(1))
    assert not session.is_open() and session.title() == "Talkstudio"
    with pytest.raises(TalkstudioError, match="open a subject"):
        session.drive(None)

    with qtbot.waitSignal(session.opened, timeout=OPEN_TIMEOUT_MS) as opened:
        session.open(demo_subject)
    meta = Subject.open(demo_subject).meta
    assert opened.args[0] is session.info and session.is_open()
    assert state.num_frames == meta.train_frames and state.frame == 0
    assert session.title() == f"{meta.name}[*] — Talkstudio" and not session.is_dirty()
    assert session.recent_files() == [str(demo_subject.resolve())]
    assert session.default_export_path() == demo_subject / "export.mp4"

    seen = len(changes)
    state.set_value("mouth", 1.5)
    assert session.is_dirty() and len(changes) == seen + 1  # the undo stack left its clean state
    session.reset_all_edits()
    state.set_value("left_eye", 0.5)
    state.undo_stack.undo()
    assert state.keyframes("mouth") == []  # the reset was one step, undone separately
    state.undo_stack.undo()
    assert state.keyframes("mouth") == [(0, 1.5)]

    written = session.save_to(tmp_path / "take")
    assert written == tmp_path / "take.talkproj" and not session.is_dirty()
    assert session.title().startswith("take.talkproj")
    assert Project.load(written).edits.track("mouth").keys == {0: 1.5}
    assert session.default_export_path() == tmp_path / "take.mp4"

    session.close()
    assert session.info is None and state.num_frames == 0 and state.keyframes("mouth") == []
    assert session.title() == "Talkstudio"
    with pytest.raises(TalkstudioError, match="no subject is open"):
        session.current_project()


def test_a_failed_open_changes_nothing(qtbot, client, tmp_path) -> None:
    state = EditState()
    session = Session(state, client, settings_at(tmp_path))
    opened: list[object] = []
    session.opened.connect(opened.append)
    with qtbot.waitSignal(session.failed, timeout=OPEN_TIMEOUT_MS) as failed:
        session.open(tmp_path / "missing")
    assert failed.args[0] is RequestKind.OPEN and isinstance(failed.args[1], TalkstudioError)
    assert not opened and session.info is None and session.recent_files() == []
