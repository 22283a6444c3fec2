"""Helpers of the studio's application tests (tests/test_app_*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from talkstudio.app.platform_fixes import guard_none_refcount

RENDER_SIZE = 64
"""Preview renders of the app tests (the built-in demo subject, rendered at 64²)."""
OPEN_TIMEOUT_MS = 240_000
"""Opening imports torch and renders the first frame on a busy two-core machine."""
RENDER_TIMEOUT_MS = 120_000

# QtMultimedia reports, once per process, the optional system libraries it did not find
# (PipeWire, VA-API) and that no PulseAudio server answers: platform facts of a headless machine.
MULTIMEDIA_NOISE = pytest.mark.qt_log_ignore(
    r"Couldn't (load|resolve) (pipewire|va)", r"PulseAudioService: pa_context_connect\(\) failed"
)


def settings_at(folder: Path) -> QSettings:
    """A QSettings in an INI file of its own (the user's settings stay untouched)."""
    guard_none_refcount()
    return QSettings(str(folder / "studio.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, folder: Path, use_gl: bool = False):
    """A main window on its own settings, rendering 64² previews on the CPU."""
    from talkstudio.app.main_window import MainWindow

    window = MainWindow(settings=settings_at(folder), device="cpu", use_gl=use_gl)
    window.ask_unsaved = lambda: "discard"  # type: ignore[method-assign]
    qtbot.addWidget(window)
    window.set_preview_size(RENDER_SIZE)
    with qtbot.waitExposed(window):
        window.show()
    return window


def open_and_render(qtbot, window, target: Path):
    """Open ``target`` and wait for the first full frame on the preview."""
    with qtbot.waitSignal(
        window.controller.shown,
        timeout=OPEN_TIMEOUT_MS,
        check_params_cb=lambda r: r.kind == "full",
    ):
        assert window.open_target(target)
    return window


def click(widget, pos) -> None:
    """A left click at ``pos`` (QPointF in ``widget``), sent as press and release events."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    left = Qt.MouseButton.LeftButton
    for kind, buttons in (
        (QEvent.Type.MouseButtonPress, left),
        (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton),
    ):
        global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
        event = QMouseEvent(kind, pos, global_pos, left, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)


class GuiTicks:
    """A 10 ms QTimer in the GUI thread that notes, at each tick, whether ``busy()`` held.

    ``while_busy`` counts the ticks the GUI thread handled while the work ran elsewhere: a job
    that blocked the GUI thread from start to end leaves it at 0, however loaded the machine.
    How long the GUI thread stalls is a benchmark (``benchmarks/sections/studio.py``)."""

    def __init__(self, busy) -> None:
        from PySide6.QtCore import QTimer

        self.states: list[bool] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.states.append(bool(busy())))

    @property
    def while_busy(self) -> int:
        return sum(self.states)

    def __enter__(self) -> GuiTicks:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()
