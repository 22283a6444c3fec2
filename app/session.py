"""Opening, driving, saving and closing: the main window's session logic.

A session is one subject driven by one speech clip (the subject's own speech, or a file), with
keyframed edits. It is saved as a ``.talkproj`` (:class:`~talkstudio.core.project.Project`).
Unsaved means: the undo stack is not at its clean index, or the driving speech changed since
the last save. Every way of leaving a session (open another, close, quit) asks first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

from talkstudio.core.edit import Edits
from talkstudio.core.project import SUFFIX, ExportSettings, Project

from .jobs import JobRunner
from .worker import SessionInfo

if TYPE_CHECKING:
    from .main_window import MainWindow

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
    try:
        from talkstudio.core.demo import demo_resources
    except ImportError:
        return False, "The demo subject is not part of this version."
    if not (demo_resources() / "demo.json").is_file():
        return False, (
            "The demo subject is missing from this installation "
            "(build it with `python -m scripts.make_demo`)."
        )
    return True, ""


class SessionMixin:
    """Session methods of :class:`~.main_window.MainWindow` (mixed in; uses its widgets)."""

    def _init_session(self: MainWindow) -> None:
        self.subject_path: Path | None = None
        self.audio_path: Path | None = None
        self.project_path: Path | None = None
        self.export_settings = ExportSettings()
        self.session: SessionInfo | None = None
        self._pending: _Pending | None = None
        self._audio_dirty = False
        self.jobs: list[JobRunner] = []
        self.export_dialog: Any = None
        self.wizard: Any = None
        self.state.undo_stack.cleanChanged.connect(self._update_title)
        self.client.opened.connect(self._session_opened)
        self.client.failed.connect(self._engine_failed)
        self._update_title()

    def _after_first_paint(self: MainWindow) -> None:
        available, note = demo_status()
        self.welcome.set_demo_available(available, note)
        self.actions_.open_demo.setEnabled(available)

    # --- dirty state and title -------------------------------------------------------------------
    def is_dirty(self: MainWindow) -> bool:
        return self.session is not None and (
            not self.state.undo_stack.isClean() or self._audio_dirty
        )

    def _update_title(self: MainWindow) -> None:
        if self.session is None:
            self.setWindowTitle("Talkstudio")
            return
        name = self.project_path.name if self.project_path else self.session.name
        self.setWindowTitle(f"{name}[*] — Talkstudio")
        self.setWindowModified(self.is_dirty())

    def ask_unsaved(self: MainWindow) -> str:
        """Ask what to do with unsaved changes: "save", "discard" or "cancel"."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            "The project has unsaved changes. Save them first?",
            buttons.Save | buttons.Discard | buttons.Cancel,
            buttons.Save,
        )
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def maybe_save(self: MainWindow) -> bool:
        """True when it is fine to leave the session (saved, discarded, or nothing to save)."""
        if not self.is_dirty():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save_project()
        return answer == "discard"

    # --- recent files ----------------------------------------------------------------------------
    def recent_files(self: MainWindow) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self: MainWindow, path: Path) -> None:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.settings.setValue(RECENT_KEY, files[:RECENT_MAX])
        self._fill_recent_menu()

    def _fill_recent_menu(self: MainWindow) -> None:
        menu = self.actions_.recent_menu
        menu.clear()
        for f in self.recent_files():
            act = menu.addAction(f)
            act.setEnabled(Path(f).exists())
            act.triggered.connect(lambda _=False, f=f: self.open_target(f))
        menu.setEnabled(bool(self.recent_files()))

    # --- opening --------------------------------------------------------------------------------
    def open_target(self: MainWindow, target: str | Path) -> bool:
        """Open a ``.talkproj`` project or a subject folder."""
        path = Path(target)
        if path.suffix == SUFFIX or path.is_file():
            return self.open_project(path)
        return self.open_subject(path)

    def open_project(self: MainWindow, path: str | Path) -> bool:
        from talkstudio.core.errors import TalkstudioError

        try:
            project = Project.load(path)
        except TalkstudioError as exc:
            self.show_error("Cannot open the project", str(exc))
            return False
        return self.open_subject(
            project.subject, project.audio, project.edits, Path(path), project.export
        )

    def open_subject(
        self: MainWindow,
        subject: str | Path,
        audio: str | Path | None = None,
        edits: Edits | None = None,
        project: Path | None = None,
        export: ExportSettings | None = None,
    ) -> bool:
        """Open ``subject`` (driven by ``audio``, else its own speech); False when cancelled."""
        if not self.maybe_save():
            return False
        self.playback.pause()
        self.controller.active = False
        self._pending = _Pending(
            Path(subject),
            Path(audio) if audio else None,
            edits or Edits(),
            project,
            export or ExportSettings(),
        )
        self.statusBar().showMessage(f"Opening {Path(subject).name}…")
        self._busy(True)
        self.client.open_session(subject, audio)
        return True

    def choose_subject(self: MainWindow) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a subject folder")
        if folder:
            self.open_subject(folder)

    def choose_project(self: MainWindow) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a project", "", f"Talkstudio projects (*{SUFFIX})"
        )
        if path:
            self.open_project(path)

    def choose_audio(self: MainWindow) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Driving speech",
            "",
            "Audio or video (*.wav *.mp3 *.m4a *.flac *.ogg *.mp4 *.mov)",
        )
        if path:
            self.set_driving_audio(path)

    def set_driving_audio(self: MainWindow, audio: str | Path | None) -> None:
        """Drive the open subject with ``audio`` (None: its own speech); edits are kept."""
        if self.session is None:
            return
        if audio is not None and not self.session.has_stage1:
            self.show_error(
                "No stage-1 model",
                f"{self.session.name} has no trained stage-1 model, so it cannot be driven by "
                "new speech; train stage 1 first (the wizard, or `talkstudio train stage1`).",
            )
            return
        self.playback.pause()
        self._busy(True)
        self.client.drive(audio)

    def _busy(self: MainWindow, on: bool) -> None:
        self.status_progress.setRange(0, 0)
        self.status_progress.setVisible(on)

    def _session_opened(self: MainWindow, info: SessionInfo) -> None:
        pending = self._pending
        expected = pending.subject if pending is not None else self.subject_path
        if expected is None or Path(expected).resolve() != Path(info.subject).resolve():
            return  # an answer to an earlier request, overtaken by a newer open
        self._busy(False)
        self._pending = None
        self.state.set_track(info.lm_world)
        self.state.set_audio(info.audio)
        if pending is not None:  # a new session
            self.subject_path, self.project_path = info.subject, pending.project
            self.export_settings = pending.export
            self.state.set_edits(pending.edits)
            self.state.set_frame(0)
            self.state.undo_stack.setClean()
            self._audio_dirty = False
            self._add_recent(pending.project or info.subject)
        else:  # new driving speech for the same subject
            self._audio_dirty = self._audio_dirty or info.audio_path != self.audio_path
        self.audio_path = info.audio_path
        self.session = info
        self.preview.set_device(info.device)
        self.status_device.setText(f"device: {info.device}")
        self.statusBar().showMessage(
            f"{info.name}: {len(info.lm_world)} frames, ready in {info.open_ms:.0f} ms", 5000
        )
        self.controller.reset()
        self.controller.active = True
        self.controller.schedule("full")
        self.show_editor()
        self._update_title()
        self.sessionOpened.emit(info)

    def _engine_failed(self: MainWindow, what: str, message: str) -> None:
        if what in ("open", "drive"):
            self._busy(False)
            self._pending = None
            title = "Cannot open the subject" if what == "open" else "Cannot use that speech"
            self.show_error(title, message)
        else:
            self.last_error = message
            self.statusBar().showMessage(f"render failed: {message.splitlines()[0]}", 10_000)

    # --- the demo and the wizard ------------------------------------------------------------------
    def open_demo(self: MainWindow) -> None:
        """Make the built-in demo subject (once, in a worker thread) and open it."""
        available, note = demo_status()
        if not available:
            self.show_error("No demo subject", note)
            return

        def factory() -> Any:
            from talkstudio.core.demo import ensure_demo_job

            return ensure_demo_job()

        job = self.run_job(factory, "demo", "Preparing the demo subject")
        job.finished.connect(lambda path: self.open_subject(path))

    def run_job(self: MainWindow, factory: Any, name: str, what: str) -> JobRunner:
        """Run a job in its own thread with progress in the status bar; errors shown."""
        job = JobRunner(factory, name, parent=self)
        self.jobs.append(job)
        bar = self.status_progress

        def progress(p: Any) -> None:
            bar.setRange(0, max(p.total, 0))
            bar.setValue(p.step)
            bar.show()
            self.statusBar().showMessage(f"{what}: {p.message or p.stage}")

        def done() -> None:
            bar.hide()
            if job in self.jobs:
                self.jobs.remove(job)

        job.progress.connect(progress)
        job.failed.connect(lambda msg: self.show_error(what, msg))
        job.done.connect(done)
        job.start()
        return job

    def _wizard(self: MainWindow) -> Any:
        from .wizard import TrainingWizard

        if self.wizard is None:
            self.wizard = TrainingWizard(self)
            self.wizard.subjectReady.connect(self.open_subject)
        return self.wizard

    def new_subject(self: MainWindow) -> None:
        """The training wizard from its first page (a new video)."""
        wizard = self._wizard()
        wizard.restart()
        wizard.open()

    def train_subject(self: MainWindow, subject: str | Path) -> None:
        """The training wizard on a preprocessed subject (train it, or resume its training)."""
        wizard = self._wizard()
        wizard.continue_subject(subject)
        wizard.open()

    def choose_subject_to_train(self: MainWindow) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A preprocessed subject to train")
        if folder:
            self.train_subject(folder)

    def show_export(self: MainWindow) -> None:
        if self.session is None:
            return
        from .export_dialog import ExportDialog

        if self.export_dialog is None:
            self.export_dialog = ExportDialog(self.client, self.state, self)
        self.export_dialog.prepare(self.export_settings, self._default_export_path())
        self.export_dialog.open()

    def _default_export_path(self: MainWindow) -> Path:
        base = self.project_path or (self.subject_path / "export.talkproj")
        return base.with_suffix(".mp4")

    # --- saving and closing ----------------------------------------------------------------------
    def current_project(self: MainWindow) -> Project:
        assert self.subject_path is not None
        return Project(self.subject_path, self.audio_path, self.state.edits, self.export_settings)

    def save_project(self: MainWindow) -> bool:
        """Save to the project file (asking for one the first time); True when saved."""
        if self.session is None:
            return False
        if self.project_path is None:
            return self.save_project_as()
        return self.save_project_to(self.project_path)

    def save_project_as(self: MainWindow) -> bool:
        if self.session is None:
            return False
        start = str(self.project_path or Path.home() / f"{self.session.name}{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the project", start, f"Talkstudio projects (*{SUFFIX})"
        )
        return bool(path) and self.save_project_to(Path(path))

    def save_project_to(self: MainWindow, path: str | Path) -> bool:
        """Write the project to ``path`` (``.talkproj`` added); True when written."""
        from talkstudio.core.errors import TalkstudioError

        try:
            written = self.current_project().save(path)
        except (TalkstudioError, OSError) as exc:
            self.show_error("Cannot save the project", str(exc))
            return False
        self.project_path = written
        self._audio_dirty = False
        self.state.undo_stack.setClean()
        self._add_recent(written)
        self._update_title()
        self.statusBar().showMessage(f"saved {written}", 5000)
        return True

    def close_session(self: MainWindow) -> bool:
        """Back to the welcome page (asks about unsaved changes)."""
        if not self.maybe_save():
            return False
        self.playback.pause()
        self.save_layout()
        self.controller.active = False
        self.controller.reset()
        self.session = None
        self.subject_path = self.audio_path = self.project_path = None
        self.state.set_edits(Edits())
        self.state.set_audio(None)
        self.state.set_track(None)
        self._update_title()
        self.show_welcome()
        return True

    def reset_all_edits(self: MainWindow) -> None:
        """Reset every factor (one undo step per factor that had keyframes)."""
        stack = self.state.undo_stack
        stack.beginMacro("Reset all edits")
        for name in ("left_eye", "right_eye", "mouth"):
            self.state.reset(name)
        stack.endMacro()

    def cancel_jobs(self: MainWindow) -> None:
        for job in list(self.jobs):
            job.cancel()
            job.wait()
        for owner in (self.export_dialog, self.wizard):
            if owner is not None:
                owner.cancel_jobs()
