"""The main window's docks and their remembered arrangement, and the 3D view (GL or a note).

:class:`DockLayout` makes the docks, remembers the window's geometry and dock arrangement in
QSettings (``window/geometry``, ``window/state``) and puts them back: at start, when the editor
shows again after the welcome page, and to the default on View → Reset layout. The arrangement
is saved only while the editor shows, since the welcome page hides every dock.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QWidget

from talkstudio.widgets.state import EditState

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


class DockLayout:
    """The docks of ``window`` by key, and their arrangement kept in ``settings``."""

    def __init__(self, window: QMainWindow, settings: QSettings) -> None:
        self.window = window
        self.settings = settings
        self.docks: dict[str, QDockWidget] = {}
        self._default = QByteArray()

    def add(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """A movable, floatable, closable dock around ``widget`` in ``area``."""
        dock = QDockWidget(title, self.window)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.window.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def keep_default_and_restore(self) -> None:
        """Take the arrangement as it is now as the default, then put back the remembered one."""
        self._default = self.window.saveState(LAYOUT_VERSION)
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.window.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.window.restoreState(state, LAYOUT_VERSION)

    def save(self, with_docks: bool) -> None:
        """Remember the window's geometry, and the dock arrangement when ``with_docks``."""
        self.settings.setValue("window/geometry", self.window.saveGeometry())
        if with_docks:
            self.settings.setValue("window/state", self.window.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def reset(self) -> None:
        """The default arrangement, every dock shown."""
        self.window.restoreState(self._default, LAYOUT_VERSION)
        self.show_all()

    def restore_docks(self) -> None:
        """The remembered arrangement (every dock shown where none was remembered)."""
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and self.window.restoreState(state, LAYOUT_VERSION):
            return
        self.show_all()

    def show_all(self) -> None:
        for dock in self.docks.values():
            dock.show()

    def hide_all(self) -> None:
        for dock in self.docks.values():
            dock.hide()
