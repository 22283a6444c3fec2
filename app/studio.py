"""Starting the studio: the QApplication, its style, and the first window.

:func:`create_application` drops OpenCV's Qt variables (``clean_qt_environment``), shares OpenGL
contexts (the 3D view's shaders are cached per process), names the organisation and application
for QSettings, and applies the Fusion style with a dark palette (what Fusion draws itself — spin
box arrows, list views, scroll bars, check marks — follows it) and ``resources/style.qss``. :func:`run` opens the
window on a target (a subject folder or ``.talkproj``), or on the built-in demo subject when it
ships, else on the welcome page. Torch is imported only once a subject opens, in the engine
thread, after the window has painted (docs/design.md "The GUI starts fast").
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from .platform_fixes import block_triton, guard_none_refcount
from .qt_env import clean_qt_environment

ORGANIZATION = "Talkstudio"
APPLICATION = "Talkstudio"


def style_sheet() -> str:
    """The studio's style sheet (``talkstudio.resources/style.qss``, its ``@RESOURCES@`` made the
    folder of its images), or "" when absent."""
    from importlib import resources

    folder = resources.files("talkstudio.resources")
    try:
        text = folder.joinpath("style.qss").read_text("utf-8")
    except (FileNotFoundError, OSError):
        return ""
    return text.replace("@RESOURCES@", Path(str(folder)).as_posix())


def dark_palette() -> QPalette:
    """The palette of the dark theme (the same colours as ``style.qss``)."""
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    palette = QPalette()
    colors = {
        role.Window: "#1d1f23",
        role.WindowText: "#dcdfe4",
        role.Base: "#2b2f35",
        role.AlternateBase: "#1d1f23",
        role.Text: "#dcdfe4",
        role.PlaceholderText: "#6b7078",
        role.Button: "#2b2f35",
        role.ButtonText: "#dcdfe4",
        role.BrightText: "#ffffff",
        role.Highlight: "#3d6fb6",
        role.HighlightedText: "#ffffff",
        role.ToolTipBase: "#25282d",
        role.ToolTipText: "#dcdfe4",
        role.Link: "#7fb0f0",
        role.Light: "#3c4148",
        role.Midlight: "#33373d",
        role.Mid: "#2b2f35",
        role.Dark: "#15171a",
        role.Shadow: "#0c0d0f",
    }
    for r, c in colors.items():
        palette.setColor(r, QColor(c))
    for r in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText):
        palette.setColor(group.Disabled, r, QColor("#6b7078"))
    palette.setColor(group.Disabled, role.Highlight, QColor("#3c4148"))
    return palette


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication of the studio (or the existing one, configured the same way)."""
    clean_qt_environment()
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    guard_none_refcount()
    block_triton()
    configure_application(app)
    return app


def configure_application(app: QApplication) -> None:
    """Names for QSettings, the Fusion style and the style sheet."""
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Talkstudio")
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(style_sheet())


def open_initial(window: object, target: str | Path | None) -> None:
    """Open ``target``, else the demo subject when it ships, else stay on the welcome page."""
    from .main_window import MainWindow
    from .session import demo_status

    assert isinstance(window, MainWindow)
    if target:
        window.open_target(target)
    elif demo_status()[0]:
        window.open_demo()


def run(target: str | Path | None = None, device: str = "auto") -> int:
    """Show the studio and run its event loop; the exit code."""
    app = create_application()
    from .main_window import MainWindow

    window = MainWindow(device=device)
    window.show()
    # open after the first paint: the window appears at once, torch loads in the engine thread
    QTimer.singleShot(0, lambda: open_initial(window, target))
    code = app.exec()
    window.shutdown()
    return int(code)
