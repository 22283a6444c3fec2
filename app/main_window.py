"""The studio's main window: preview in the middle, timeline, α panel and 3D view in docks.

Every view watches one :class:`~talkstudio.widgets.state.EditState` (docs/design.md "Widgets are views"); the engine
lives in its own thread behind :class:`~.worker.EngineClient`; :class:`~.render_controller.
RenderController` keeps the preview in step. What is open, where it is saved and whether it is
unsaved is the window's :class:`~.session.Session`; the window asks the user (file dialogs, the
unsaved-changes prompt) and shows what the session reports. Menus and shortcuts are in
:mod:`.actions`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from talkstudio.core.demo import is_demo_subject
from talkstudio.core.edit import Edits
from talkstudio.core.project import SUFFIX, ExportSettings, Project
from talkstudio.widgets.alpha_panel import AlphaPanel
from talkstudio.widgets.icons import themed_icon
from talkstudio.widgets.preview import Preview
from talkstudio.widgets.state import EditState, PlaybackState
from talkstudio.widgets.timeline import Timeline
from talkstudio.widgets.transport import Transport

from .actions import build_actions
from .background_training import TrainingStatus
from .demo_build import DemoBuilder
from .jobs import JobRunner, describe_error
from .platform_fixes import block_triton, guard_none_refcount
from .playback import PlaybackCache, PreviewRange
from .render_controller import RenderController
from .session import Session, demo_status
from .welcome import WelcomePage
from .window_layout import DockLayout, make_landmark_view
from .worker import EngineClient, RenderResult, RequestKind, SessionInfo

if TYPE_CHECKING:  # imported when first shown: the window opens without them
    from .export_dialog import ExportDialog
    from .wizard import TrainingWizard


class MainWindow(QMainWindow):
    """The studio window."""

    sessionOpened = Signal(object)  # noqa: N815 (Qt signal naming)
    """A subject (and its driving speech) is open and shown: SessionInfo."""
    errorShown = Signal(str)  # noqa: N815 (Qt signal naming)
    """An error message was shown to the user."""

    def __init__(
        self,
        settings: QSettings | None = None,
        device: str = "auto",
        use_gl: bool | None = None,
        parent: QWidget | None = None,
    ) -> None:
        guard_none_refcount()
        block_triton()
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else QSettings()
        self.state = EditState(parent=self)
        self.playback = PlaybackState(self.state, parent=self)
        self.client = EngineClient(device, self)

        self.preview = Preview(device="…")
        self.transport = Transport(self.state, self.playback)
        editor = QWidget()
        editor.setObjectName("editorPage")
        box = QVBoxLayout(editor)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.preview, 1)
        box.addWidget(self.transport)
        self.welcome = WelcomePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(editor)
        self.editor_page = editor
        self.setCentralWidget(self.stack)

        self.timeline = Timeline(self.state)
        self.alpha_panel = AlphaPanel(self.state)
        self.view3d = make_landmark_view(self.state, use_gl)
        self.dock_layout = DockLayout(self, self.settings)
        self.docks = self.dock_layout.docks
        bottom, right = (
            Qt.DockWidgetArea.BottomDockWidgetArea,
            Qt.DockWidgetArea.RightDockWidgetArea,
        )
        timeline = self.dock_layout.add("timeline", "Timeline", self.timeline, bottom)
        alphas = self.dock_layout.add("alphas", "Edits (α)", self.alpha_panel, bottom)
        self.dock_layout.add("view3d", "3D landmarks", self.view3d, right)
        self.splitDockWidget(timeline, alphas, Qt.Orientation.Horizontal)
        self.stack.setMinimumSize(320, 240)  # the welcome page may shrink; the editor sets the rest
        self.controller = RenderController(self.state, self.client, self.preview, self.alpha_panel)
        self.playback_cache = PlaybackCache(
            self.state, self.playback, self.client, self.preview, self.controller, parent=self
        )
        """Renders ahead of the playhead and plays cached frames (app/playback.py)."""
        self.playback_cache.cacheChanged.connect(self._show_cached)
        self.playback_cache.displayed.connect(self._show_playing_status)

        self.status_render = QLabel("no render yet")
        self.status_device = QLabel("device: –")
        self.status_progress = QProgressBar()
        self.status_progress.setMaximumWidth(180)
        self.status_progress.hide()
        self.training_status = TrainingStatus(self)
        """A training the wizard handed over (it went on in the background)."""
        self.training_status.trained.connect(self._background_trained)
        self.training_status.ended.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.training_status.showRequested.connect(self._show_wizard)
        bar = self.statusBar()
        bar.addPermanentWidget(self.training_status)
        bar.addPermanentWidget(self.status_progress)
        bar.addPermanentWidget(self.status_render)
        bar.addPermanentWidget(self.status_device)

        self.session = Session(self.state, self.client, self.settings, self)
        self.demo = DemoBuilder(self.open_subject, parent=self)
        """The one build of the demo subject (app/demo_build.py); the welcome page shows it."""
        self.jobs: list[JobRunner] = []
        self.export_dialog: ExportDialog | None = None
        self.wizard: TrainingWizard | None = None
        self.actions_, self.toolbar = build_actions(
            self, self, self.state.undo_stack, self.playback, self.docks, self.client.size
        )
        play_menu = next(
            (
                m
                for a in self.menuBar().actions()
                if a.text() == "&Playback" and isinstance(m := a.menu(), QMenu)
            ),
            None,
        )
        self.preview_range = PreviewRange(self, self.playback_cache, self.timeline, play_menu)
        """In/out marks and "Render preview of range"."""
        self.before_action = self._before_toggle()
        """Before/after: the preview shows the frame rendered without edits while checked."""
        self.source_view_action = self._source_view_toggle()
        """The preview shows the frames pasted back into the source video while checked."""
        self.session.changed.connect(self._update_title)
        self.session.recentChanged.connect(self._fill_recent_menu)
        self.session.opened.connect(self._session_opened)
        self.session.failed.connect(self._open_failed)
        self.session.renderFailed.connect(self._render_failed)
        self._update_title()
        self.controller.shown.connect(self._show_render_status)
        self.client.status.connect(self._engine_status)
        self.welcome.openDemo.connect(self.open_demo)
        self.welcome.watch_demo(self.demo)
        self.demo.progressed.connect(lambda p: self.statusBar().showMessage(p.text()))
        self.demo.stateChanged.connect(self._demo_state_changed)
        self.demo.failed.connect(lambda msg: self.show_error("Cannot make the demo subject", msg))
        self.welcome.createSubject.connect(self.new_subject)
        self.welcome.openSubject.connect(self.choose_subject)
        self.welcome.openProject.connect(self.choose_project)
        self.welcome.openRecent.connect(self.open_target)

        self.resize(1280, 800)
        self.resizeDocks([self.docks["view3d"]], [380], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["timeline"]], [230], Qt.Orientation.Vertical)
        self.dock_layout.keep_default_and_restore()
        self.show_welcome()
        self.last_error = ""
        QTimer.singleShot(0, self._after_first_paint)

    # --- layout --------------------------------------------------------------------------------
    def save_layout(self) -> None:
        """Remember the window's geometry and dock layout (QSettings)."""
        self.dock_layout.save(with_docks=self.stack.currentWidget() is self.editor_page)

    def reset_layout(self) -> None:
        self.dock_layout.reset()

    def show_welcome(self) -> None:
        """Show the welcome page (nothing open)."""
        self.welcome.set_recent(self.session.recent_files())
        self.stack.setCurrentWidget(self.welcome)
        self.dock_layout.hide_all()
        self._set_editing_enabled(False)

    def show_editor(self) -> None:
        if self.stack.currentWidget() is not self.editor_page:
            self.stack.setCurrentWidget(self.editor_page)
            self.dock_layout.restore_docks()
        self._set_editing_enabled(True)

    def _set_editing_enabled(self, on: bool) -> None:
        for act in (*self.actions_.editing(), *self.preview_range.actions(), self.before_action):
            act.setEnabled(on)

    def _before_toggle(self) -> QAction:
        """The before/after toggle (\\): in the View menu and on the toolbar, after Play."""
        act = QAction("&Before (unedited)", self)
        act.setCheckable(True)
        act.setShortcut(QKeySequence("\\"))  # as photo editors' before/after
        act.setToolTip("Compare: show the frame without any edit while checked (\\)")
        act.toggled.connect(self.show_before)
        self.addAction(act)
        view = next((a.menu() for a in self.menuBar().actions() if a.text() == "&View"), None)
        if isinstance(view, QMenu):
            first = view.actions()
            view.insertAction(first[0], act) if first else view.addAction(act)
        self.toolbar.insertAction(self.actions_.export, act)

        def playing(on: bool) -> None:  # playback shows the edited frames: never labelled before
            if on:
                act.setChecked(False)

        self.playback.playingChanged.connect(playing)
        return act

    def _source_view_toggle(self) -> QAction:
        """The framing toggle: in the View menu, under the preview sizes."""
        act = QAction("Source video &framing", self)
        act.setCheckable(True)
        act.setChecked(True)  # as exports are framed by default
        act.setEnabled(False)
        act.setStatusTip(
            "Show the frames pasted back into the source video, as an export in the source "
            "framing writes them; unchecked: the square face crop"
        )
        act.toggled.connect(self.set_preview_view)
        view = next((a.menu() for a in self.menuBar().actions() if a.text() == "&View"), None)
        if isinstance(view, QMenu):
            sizes = next(a for a in view.actions() if a.menu() is not None)
            following = view.actions()[view.actions().index(sizes) + 1]
            view.insertAction(following, act)
        return act

    def set_preview_view(self, source: bool) -> None:
        """Show the preview in the source video's framing (``source``) or as the square crop;
        the frames cached for playback are rendered again in the new view."""
        view = "source" if source and self.source_view_action.isEnabled() else "crop"
        if view == self.client.view:
            return
        self.client.view = view
        self.playback_cache.clear()  # its frames show the other view
        self.controller.schedule("full")

    def show_before(self, on: bool) -> None:
        """Show the current frame unedited (``on``) or with its edits; the preview says which."""
        if self.before_action.isChecked() != on:
            self.before_action.setChecked(on)  # comes back here through toggled
            return
        self.preview.set_badge("BEFORE · unedited (\\)" if on else "")
        self.controller.set_before(on)

    def _show_cached(self) -> None:
        self.timeline.set_cached(*self.playback_cache.ranges())

    # --- status ------------------------------------------------------------------------------
    def _show_render_status(self, result: RenderResult) -> None:
        shape = f"{result.size}²"
        if result.view == "source":
            shape += f" in the source framing ({result.rgb.shape[1]}×{result.rgb.shape[0]})"
        self.status_render.setText(
            f"{result.kind} render {result.ms:.0f} ms · frame {result.frame} · {shape}"
        )

    def _show_playing_status(self, head: int, frame: int, size: int) -> None:
        kind = "full" if size == self.client.size else "proxy"
        behind = f" ({head - frame} behind)" if frame != head else ""
        self.status_render.setText(f"playing cached {kind} frame {frame}{behind} · {size}²")

    def show_playing(self, playing: bool) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.actions_.play.setIcon(themed_icon(self.style(), icon))

    def _engine_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 5000)

    def show_error(self, title: str, message: str) -> None:
        """Tell the user (a non-blocking message box) and keep the text in ``last_error``."""
        self.last_error = message
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10_000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.errorShown.emit(message)

    def show_about(self) -> None:
        from .about import about_text

        QMessageBox.about(self, "About Talkstudio", about_text())

    def set_preview_size(self, size: int) -> None:
        self.client.size = size
        for s, act in self.actions_.size_actions.items():
            act.setChecked(s == size)
        self.controller.schedule("full")
        self._show_cached()  # the bar shows what is cached at the new size

    # --- closing -----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.save_layout()
        self.playback.pause()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop every job and the engine thread (idempotent)."""
        self.cancel_jobs()
        self.client.shutdown()

    # --- the session: title, questions, opening ------------------------------------------------
    def is_dirty(self) -> bool:
        return self.session.is_dirty()

    def _update_title(self) -> None:
        self.setWindowTitle(self.session.title())
        self.setWindowModified(self.session.is_dirty())

    def _after_first_paint(self) -> None:
        available, note = demo_status()
        self.welcome.set_demo_available(available, note)
        self.actions_.open_demo.setEnabled(available)
        if available:
            self.demo.refresh()

    def ask_unsaved(self) -> str:
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

    def maybe_save(self) -> bool:
        """True when it is fine to leave the session (saved, discarded, or nothing to save)."""
        if not self.is_dirty():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save_project()
        return answer == "discard"

    def _fill_recent_menu(self) -> None:
        menu = self.actions_.recent_menu
        menu.clear()
        files = self.session.recent_files()
        for f in files:
            demo = is_demo_subject(f)
            act = menu.addAction("Demo (the built-in demo subject)" if demo else f)
            act.setEnabled(demo or Path(f).exists())
            act.triggered.connect(lambda _=False, f=f: self.open_target(f))
        menu.setEnabled(bool(files))

    def open_target(self, target: str | Path) -> bool:
        """Open a ``.talkproj`` project or a subject folder."""
        path = Path(target)
        if is_demo_subject(path):  # wherever this installation builds it (made if need be)
            self.open_demo()
            return True
        if path.suffix == SUFFIX or path.is_file():
            return self.open_project(path)
        return self.open_subject(path)

    def open_project(self, path: str | Path) -> bool:
        from talkstudio.core.errors import TalkstudioError

        try:
            project = Project.load(path)
        except TalkstudioError as exc:
            self.show_error("Cannot open the project", str(exc))
            return False
        if project.uses_demo:  # made first if a clean-up removed it; one build at a time
            self.demo.open(project.audio, project.edits, Path(path), project.export)
            return True
        return self.open_subject(
            project.subject, project.audio, project.edits, Path(path), project.export
        )

    def open_subject(
        self,
        subject: str | Path,
        audio: str | Path | None = None,
        edits: Edits | None = None,
        project: Path | None = None,
        export: ExportSettings | None = None,
    ) -> bool:
        """Open ``subject`` (driven by ``audio``, else its own speech); False when cancelled."""
        from .untrained import offer_training

        if offer_training(self, subject) is not None:  # names the next step, offers the wizard
            return False
        if not self.maybe_save():
            return False
        self.playback.pause()
        self.controller.active = False
        self.playback_cache.active = False
        self.statusBar().showMessage(f"Opening {Path(subject).name}…")
        self._busy(True)
        self.session.open(subject, audio, edits, project, export)
        return True

    def choose_subject(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a subject folder")
        if folder:
            self.open_subject(folder)

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a project", "", f"Talkstudio projects (*{SUFFIX})"
        )
        if path:
            self.open_project(path)

    def choose_audio(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Driving speech",
            "",
            "Audio or video (*.wav *.mp3 *.m4a *.flac *.ogg *.mp4 *.mov)",
        )
        if path:
            self.set_driving_audio(path)

    def set_driving_audio(self, audio: str | Path | None) -> None:
        """Drive the open subject with ``audio`` (None: its own speech); edits are kept."""
        from talkstudio.core.errors import TalkstudioError

        if not self.session.is_open():
            return
        try:
            self.session.drive(audio)
        except TalkstudioError as exc:
            self.show_error("No stage-1 model", str(exc))
            return
        self.playback.pause()
        self._busy(True)

    def _busy(self, on: bool) -> None:
        self.status_progress.setRange(0, 0)
        self.status_progress.setVisible(on)

    def _session_opened(self, info: SessionInfo) -> None:
        self._busy(False)
        self.preview.set_device(info.device)
        self.status_device.setText(f"device: {info.device}")
        self.statusBar().showMessage(
            f"{info.name}: {len(info.lm_world)} frames, ready in {info.open_ms:.0f} ms", 5000
        )
        self.controller.reset()
        self.controller.active = True
        source = info.framing is not None and info.framing.kind == "source"
        self.source_view_action.setEnabled(source)
        self.source_view_action.setToolTip(
            self.source_view_action.statusTip()
            if source
            else "This subject has no usable source video: previews and exports are the crop"
        )
        self.set_preview_view(self.source_view_action.isChecked())
        self.controller.schedule("full")
        self.playback_cache.active = True
        self.show_editor()
        self.sessionOpened.emit(info)

    def _open_failed(self, kind: RequestKind, error: BaseException) -> None:
        self._busy(False)
        title = "Cannot open the subject" if kind is RequestKind.OPEN else "Cannot use that speech"
        self.show_error(title, describe_error(error))

    def _render_failed(self, error: BaseException) -> None:
        self.last_error = describe_error(error)
        self.statusBar().showMessage(f"render failed: {self.last_error.splitlines()[0]}", 10_000)

    # --- the demo, jobs, the wizard and the export dialog -----------------------------------------
    def open_demo(self) -> None:
        """Make the built-in demo subject (once, in a worker thread) and open it; while it is
        being made, asking again only waits for that build."""
        available, note = demo_status()
        if not available:
            self.show_error("No demo subject", note)
            return
        self.demo.open()

    def _demo_state_changed(self, state: str) -> None:
        building = state == "building"  # the menu says it too; choosing it then only waits
        self.actions_.open_demo.setText(
            "Making the &demo subject… (opens when ready)" if building else "Open the &demo subject"
        )
        if state == "idle":  # stopped: the last progress message would stay otherwise
            self.statusBar().showMessage("Making the demo subject was stopped", 5000)

    def run_job(
        self, factory: Callable[[], Generator[Any, None, Any]], name: str, what: str
    ) -> JobRunner:
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
        job.failed.connect(lambda exc: self.show_error(what, describe_error(exc)))
        job.done.connect(done)
        job.start()
        return job

    def _wizard(self) -> TrainingWizard:
        from .wizard import TrainingWizard

        if self.wizard is None:
            self.wizard = TrainingWizard(self)
            self.wizard.subjectReady.connect(self.open_subject)
            self.wizard.trainingInBackground.connect(self._training_in_background)
        return self.wizard

    def _show_wizard(self) -> None:
        if self.wizard is not None:
            self.wizard.open()
            self.wizard.raise_()
            self.wizard.activateWindow()

    def _training_running(self) -> bool:
        """A training runs (in the wizard or in the background): the wizard shows it again
        instead of starting another (one training at a time; they would share the cores)."""
        if self.wizard is None or not self.wizard.training_running():
            return False
        self._show_wizard()
        self.statusBar().showMessage(
            "A training is running: stop it, or wait until it ends, before starting another", 8000
        )
        return True

    def new_subject(self) -> None:
        """The training wizard from its first page (a new video)."""
        if self._training_running():
            return
        wizard = self._wizard()
        wizard.restart()
        wizard.open()

    def train_subject(self, subject: str | Path) -> None:
        """The training wizard on a preprocessed subject (train it, or resume its training)."""
        if self._training_running():
            return
        wizard = self._wizard()
        wizard.continue_subject(subject)
        wizard.open()

    def _training_in_background(self, job: JobRunner, subject: Path) -> None:
        self.training_status.watch(job, subject)
        self.statusBar().showMessage(
            f"{subject.name} goes on training in the background; it opens when it is trained",
            8000,
        )

    def _background_trained(self, subject: Path) -> None:
        """Open the subject trained in the background; reopen it when it is the open one (its
        edits and driving speech kept); with another subject open, say so and leave it."""
        name = Path(subject).name
        current = self.session.subject_path
        same = current is not None and Path(current).resolve() == Path(subject).resolve()
        if same and not self.is_dirty():
            self.session.open(
                subject,
                self.session.audio_path,
                Edits.from_json(self.state.edits.to_json()),  # the same edits, a copy
                self.session.project_path,
                self.session.export_settings,
            )
            self._busy(True)
        elif current is None:
            self.open_subject(subject)
        else:
            self.statusBar().showMessage(
                f"{name} is trained: open it with File ▸ Open subject…", 15_000
            )

    def choose_subject_to_train(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A preprocessed subject to train")
        if folder:
            self.train_subject(folder)

    def show_export(self) -> None:
        if not self.session.is_open():
            return
        from .export_dialog import ExportDialog

        if self.export_dialog is None:
            self.export_dialog = ExportDialog(self.client, self.state, self)
        framing = self.session.info.framing if self.session.info is not None else None
        self.export_dialog.prepare(
            self.session.export_settings, self.session.default_export_path(), framing
        )
        self.export_dialog.open()

    # --- saving and closing the session ---------------------------------------------------------
    def save_project(self) -> bool:
        """Save to the project file (asking for one the first time); True when saved."""
        if not self.session.is_open():
            return False
        if self.session.project_path is None:
            return self.save_project_as()
        return self.save_project_to(self.session.project_path)

    def save_project_as(self) -> bool:
        info = self.session.info
        if info is None:
            return False
        start = str(self.session.project_path or Path.home() / f"{info.name}{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the project", start, f"Talkstudio projects (*{SUFFIX})"
        )
        return bool(path) and self.save_project_to(Path(path))

    def save_project_to(self, path: str | Path) -> bool:
        """Write the project to ``path`` (``.talkproj`` added); True when written."""
        from talkstudio.core.errors import TalkstudioError

        try:
            written = self.session.save_to(path)
        except (TalkstudioError, OSError) as exc:
            self.show_error("Cannot save the project", str(exc))
            return False
        self.statusBar().showMessage(f"saved {written}", 5000)
        return True

    def close_session(self) -> bool:
        """Back to the welcome page (asks about unsaved changes)."""
        if not self.maybe_save():
            return False
        self.playback.pause()
        self.save_layout()
        self.controller.active = False
        self.playback_cache.active = False
        self.controller.reset()
        self.before_action.setChecked(False)
        self.session.close()
        self.status_render.setText("nothing open")
        self.status_device.setText("device: –")
        self.statusBar().clearMessage()
        self.show_welcome()
        return True

    def reset_all_edits(self) -> None:
        """Reset every factor (one undo step per factor that had keyframes)."""
        self.session.reset_all_edits()

    def cancel_jobs(self) -> None:
        for job in list(self.jobs):
            job.cancel()
            job.wait()
        for owner in (self.export_dialog, self.wizard):
            if owner is not None:
                owner.cancel_jobs()
