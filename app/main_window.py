"""The studio's main window: preview in the middle, timeline, α panel and 3D view in docks.

Every view watches one :class:`~talkstudio.widgets.state.EditState` (docs/design.md "Widgets are views"); the engine
lives in its own thread behind :class:`~.worker.EngineClient`; :class:`~.render_controller.
RenderController` keeps the preview in step. Opening, saving and the unsaved-changes prompt are in
:class:`~.session.SessionMixin`; menus and shortcuts in :mod:`.actions`.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from talkstudio.widgets.alpha_panel import AlphaPanel
from talkstudio.widgets.icons import themed_icon
from talkstudio.widgets.preview import Preview
from talkstudio.widgets.state import EditState, PlaybackState
from talkstudio.widgets.timeline import Timeline
from talkstudio.widgets.transport import Transport

from .actions import build_actions
from .platform_fixes import block_triton, guard_none_refcount
from .render_controller import RenderController
from .session import SessionMixin
from .welcome import WelcomePage
from .worker import EngineClient, RenderResult

LAYOUT_VERSION = 1


def gl_available() -> bool:
    """Whether OpenGL windows can be made here (not on the offscreen/minimal platforms)."""
    if QGuiApplication.platformName() in ("offscreen", "minimal", ""):
        return False
    from PySide6.QtGui import QOffscreenSurface, QOpenGLContext

    ctx = QOpenGLContext()
    surface = QOffscreenSurface()
    surface.create()
    ok = ctx.create() and ctx.makeCurrent(surface)
    if ok:
        ctx.doneCurrent()
    return bool(ok)


def make_landmark_view(state: EditState, use_gl: bool | None = None) -> QWidget:
    """The 3D landmark viewport, or a note where OpenGL is not available."""
    if use_gl is None:
        use_gl = gl_available()
    if use_gl:
        from talkstudio.widgets.landmarks3d import Landmarks3D

        return Landmarks3D(state)
    label = QLabel(
        f"The 3D landmark view needs OpenGL, which the "
        f"“{QGuiApplication.platformName()}” display platform does not offer."
    )
    label.setObjectName("noGlNote")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setMinimumSize(200, 160)
    return label


class MainWindow(SessionMixin, QMainWindow):
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
        self.docks: dict[str, QDockWidget] = {}
        bottom, right = (
            Qt.DockWidgetArea.BottomDockWidgetArea,
            Qt.DockWidgetArea.RightDockWidgetArea,
        )
        self._dock("timeline", "Timeline", self.timeline, bottom)
        self._dock("alphas", "Edits (α)", self.alpha_panel, bottom)
        self._dock("view3d", "3D landmarks", self.view3d, right)
        self.splitDockWidget(
            self.docks["timeline"], self.docks["alphas"], Qt.Orientation.Horizontal
        )
        self.stack.setMinimumSize(320, 240)  # the welcome page may shrink; the editor sets the rest
        self.controller = RenderController(self.state, self.client, self.preview, self.alpha_panel)

        self.status_render = QLabel("no render yet")
        self.status_device = QLabel("device: –")
        self.status_progress = QProgressBar()
        self.status_progress.setMaximumWidth(180)
        self.status_progress.hide()
        bar = self.statusBar()
        bar.addPermanentWidget(self.status_progress)
        bar.addPermanentWidget(self.status_render)
        bar.addPermanentWidget(self.status_device)

        self.toolbar = None
        self.actions_ = build_actions(self)
        self._init_session()
        self.client.rendered.connect(self._count_render)
        self.controller.shown.connect(self._show_render_status)
        self.client.status.connect(self._engine_status)
        self.welcome.openDemo.connect(self.open_demo)
        self.welcome.createSubject.connect(self.new_subject)
        self.welcome.openSubject.connect(self.choose_subject)
        self.welcome.openProject.connect(self.choose_project)
        self.welcome.openRecent.connect(self.open_target)

        self.resize(1280, 800)
        self.resizeDocks([self.docks["view3d"]], [380], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["timeline"]], [230], Qt.Orientation.Vertical)
        self._default_layout = self.saveState(LAYOUT_VERSION)
        self._restore_layout()
        self.show_welcome()
        self.last_error = ""
        QTimer.singleShot(0, self._after_first_paint)

    # --- layout --------------------------------------------------------------------------------
    def _dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self.docks[key] = dock

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def save_layout(self) -> None:
        """Remember the window's geometry and dock layout (QSettings)."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        if self.stack.currentWidget() is self.editor_page:
            self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_layout, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    def show_welcome(self) -> None:
        """Show the welcome page (nothing open)."""
        self.welcome.set_recent(self.recent_files())
        self.stack.setCurrentWidget(self.welcome)
        for dock in self.docks.values():
            dock.hide()
        self._set_editing_enabled(False)

    def show_editor(self) -> None:
        if self.stack.currentWidget() is not self.editor_page:
            self.stack.setCurrentWidget(self.editor_page)
            self._restore_layout_docks()
        self._set_editing_enabled(True)

    def _restore_layout_docks(self) -> None:
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION):
            return
        for dock in self.docks.values():
            dock.show()

    def _set_editing_enabled(self, on: bool) -> None:
        a = self.actions_
        for act in (
            a.save,
            a.save_as,
            a.export,
            a.load_audio,
            a.replay_audio,
            a.close_session,
            a.reset_edits,
            a.play,
            a.prev_frame,
            a.next_frame,
            a.loop,
        ):
            act.setEnabled(on)

    # --- status ------------------------------------------------------------------------------
    def _count_render(self, result: RenderResult) -> None:
        self.renders_received = getattr(self, "renders_received", 0) + 1

    def _show_render_status(self, result: RenderResult) -> None:
        self.status_render.setText(
            f"{result.kind} render {result.ms:.0f} ms · frame {result.frame} · {result.size}²"
        )

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
        QMessageBox.about(
            self,
            "About Talkstudio",
            "<b>Talkstudio</b><br>Audio-driven, editable talking heads "
            "(Gaussian-landmark NeRF).<br>Drag α1/α2/α3 to edit the eyes and the mouth.",
        )

    def set_preview_size(self, size: int) -> None:
        self.client.size = size
        for s, act in self.actions_.size_actions.items():
            act.setChecked(s == size)
        self.controller.schedule("full")

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
