"""The open session: which subject, driven by which speech, saved where, and whether it is unsaved.

A session is one subject driven by one speech clip (the subject's own speech, or a file), with
keyframed edits. It is saved as a ``.talkproj`` (:class:`~talkstudio.core.project.Project`).
Unsaved means: the undo stack is not at its clean index, or the driving speech changed since
the last save.

:class:`Session` knows no widget. The main window owns one, calls its methods (open, drive, save,
close) and follows its signals; the window asks the user (unsaved changes, file names) and shows
what the session reports. Every way of leaving a session (open another, close, quit) asks first:
that question is the window's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from talkstudio.core.edit import CHANNEL_NAMES, Edits
from talkstudio.core.errors import TalkstudioError
from talkstudio.core.project import ExportSettings, Project
from talkstudio.widgets.state import EditState

from .worker import EngineClient, RequestKind, SessionInfo

RECENT_KEY = "recent/files"
RECENT_MAX = 8


@dataclass
class _Pending:
    """What to apply when the engine thread reports the subject open."""

    subject: Path
    audio: Path | None
    edits: Edits
    project: Path | None
    export: ExportSettings = field(default_factory=ExportSettings)


def demo_status() -> tuple[bool, str]:
    """(available, note): whether the built-in demo subject ships with this installation."""
    from talkstudio.core.demo import demo_resources

    if not (demo_resources() / "demo.json").is_file():
        return False, (
            "The demo subject is missing from this installation "
            "(build it with `python -m scripts.make_demo`)."
        )
    return True, ""


class Session(QObject):
    """The studio's open session (or none): paths, driving speech, export settings, dirty state.

    It changes the :class:`EditState` it is given when a session opens or closes, and asks the
    :class:`EngineClient` to open subjects and drive them.
    """

    opened = Signal(object)  # SessionInfo
    """A subject is open, or the open one is driven by new speech; the edit state is set."""
    failed = Signal(object, object)  # (RequestKind, the exception)
    """Opening a subject or driving it failed (nothing changed)."""
    renderFailed = Signal(object)  # noqa: N815 (Qt signal naming): the exception
    """A preview render failed in the engine thread."""
    changed = Signal()
    """What the window title shows may have changed: the name, or the unsaved state."""
    recentChanged = Signal()  # noqa: N815 (Qt signal naming)
    """The list of recent files changed."""

    def __init__(
        self,
        state: EditState,
        client: EngineClient,
        settings: QSettings,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.client = client
        self.settings = settings
        self.subject_path: Path | None = None
        self.audio_path: Path | None = None
        self.project_path: Path | None = None
        self.export_settings = ExportSettings()
        self.info: SessionInfo | None = None
        """The open subject and its driving clip; None while nothing is open."""
        self._pending: _Pending | None = None
        self._audio_dirty = False
        state.undo_stack.cleanChanged.connect(self.changed)
        client.opened.connect(self._opened)
        client.failed.connect(self._failed)

    # --- what is open ----------------------------------------------------------------------------
    def is_open(self) -> bool:
        return self.info is not None

    def is_dirty(self) -> bool:
        return self.info is not None and (not self.state.undo_stack.isClean() or self._audio_dirty)

    def title(self) -> str:
        """The window title: the project's or subject's name with Qt's ``[*]`` modified mark."""
        if self.info is None:
            return "Talkstudio"
        name = self.project_path.name if self.project_path else self.info.name
        return f"{name}[*] — Talkstudio"

    def current_project(self) -> Project:
        if self.subject_path is None:
            raise TalkstudioError("no subject is open: open one before saving a project")
        return Project(self.subject_path, self.audio_path, self.state.edits, self.export_settings)

    def default_export_path(self) -> Path:
        """Where an export goes unless the user says otherwise: beside the project or subject."""
        if self.project_path is not None:
            return self.project_path.with_suffix(".mp4")
        if self.subject_path is None:
            raise TalkstudioError("no subject is open: open one before exporting")
        return self.subject_path / "export.mp4"

    # --- recent files ----------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):  # QSettings gives a one-entry list back as its entry
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def add_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.settings.setValue(RECENT_KEY, files[:RECENT_MAX])
        self.recentChanged.emit()

    # --- opening and driving ---------------------------------------------------------------------
    def open(
        self,
        subject: str | Path,
        audio: str | Path | None = None,
        edits: Edits | None = None,
        project: Path | None = None,
        export: ExportSettings | None = None,
    ) -> None:
        """Ask the engine thread to open ``subject`` (driven by ``audio``, else its own speech).

        :attr:`opened` (the session replaced) or :attr:`failed` (nothing changed) follows.
        """
        self._pending = _Pending(
            Path(subject),
            Path(audio) if audio else None,
            edits or Edits(),
            project,
            export or ExportSettings(),
        )
        self.client.open_session(subject, audio)

    def drive(self, audio: str | Path | None) -> None:
        """Drive the open subject with ``audio`` (None: its own speech); the edits are kept.

        A :class:`TalkstudioError` when nothing is open or the subject has no stage-1 model;
        otherwise :attr:`opened` or :attr:`failed` follows.
        """
        if self.info is None:
            raise TalkstudioError("open a subject before loading driving speech")
        if audio is not None and not self.info.has_stage1:
            raise TalkstudioError(
                f"{self.info.name} has no trained stage-1 model, so it cannot be driven by "
                "new speech; train stage 1 first (the wizard, or `talkstudio train stage1`)."
            )
        self.client.drive(audio)

    def _opened(self, info: SessionInfo) -> None:
        pending = self._pending
        expected = pending.subject if pending is not None else self.subject_path
        if expected is None or Path(expected).resolve() != Path(info.subject).resolve():
            return  # an answer to an earlier request, overtaken by a newer open
        self._pending = None
        self.state.set_track(info.lm_world, info.typical, info.blinks)
        self.state.set_audio(info.audio)
        if pending is not None:  # a new session
            self.subject_path, self.project_path = info.subject, pending.project
            self.export_settings = pending.export
            self.state.set_edits(pending.edits)
            self.state.set_frame(0)
            self.state.undo_stack.setClean()
            self._audio_dirty = False
            self.add_recent(pending.project or info.subject)
        else:  # new driving speech for the same subject
            self._audio_dirty = self._audio_dirty or info.audio_path != self.audio_path
        self.audio_path = info.audio_path
        self.info = info
        self.changed.emit()
        self.opened.emit(info)

    def _failed(self, kind: RequestKind, error: BaseException) -> None:
        if kind is RequestKind.RENDER:
            self.renderFailed.emit(error)
            return
        self._pending = None
        self.failed.emit(kind, error)

    # --- editing ---------------------------------------------------------------------------------
    def reset_all_edits(self) -> None:
        """Reset every channel and the blink rate (one undo step per change, in one macro)."""
        stack = self.state.undo_stack
        stack.beginMacro("Reset all edits")
        for name in CHANNEL_NAMES:
            self.state.reset(name)
        self.state.set_blink_rate(None)
        stack.endMacro()

    # --- saving and closing ----------------------------------------------------------------------
    def save_to(self, path: str | Path) -> Path:
        """Write the project to ``path`` (``.talkproj`` added) and return where it went.

        A :class:`TalkstudioError` or :class:`OSError` when it cannot be written.
        """
        written = self.current_project().save(path)
        self.project_path = written
        self._audio_dirty = False
        self.state.undo_stack.setClean()
        self.add_recent(written)
        self.changed.emit()
        return written

    def close(self) -> None:
        """Forget the session: nothing open, no edits, no track, no audio."""
        self.info = None
        self.subject_path = self.audio_path = self.project_path = None
        self.state.set_edits(Edits())
        self.state.set_audio(None)
        self.state.set_track(None)
        self.changed.emit()
