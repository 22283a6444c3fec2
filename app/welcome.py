"""The welcome page: what the studio shows when nothing is open.

Four ways in — the built-in demo subject, a new subject from a video (the training wizard), a
subject folder, a ``.talkproj`` project — and the recently opened subjects and projects. The page
only emits signals; the main window does the opening. While the demo subject is built (first
use), a panel under its button shows the progress with an ETA and the button says so
(:meth:`WelcomePage.watch_demo`). The demo shows as "Demo" in the recent list.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from talkstudio.core.demo import is_demo_subject
from talkstudio.widgets.icons import themed_icon

if TYPE_CHECKING:
    from .demo_build import DemoBuilder, DemoProgress

DEMO_DETAILS = {
    "idle": "a trained synthetic speaker; made on first use (a few minutes on a CPU)",
    "building": "being made: it opens by itself when ready",
    "ready": "a trained synthetic speaker, ready to edit",
    "failed": "making it failed (see the message); click to try again",
}
"""The demo button's second line in each state of the build."""


def _big_button(text: str, detail: str, icon: QStyle.StandardPixmap, style: QStyle) -> QPushButton:
    button = QPushButton(f"{text}\n{detail}")
    button.setObjectName("welcomeButton")
    button.setIcon(themed_icon(style, icon))
    button.setIconSize(QSize(28, 28))
    button.setMinimumHeight(58)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


class WelcomePage(QWidget):
    """Start page with the ways in and the recent files."""

    openDemo = Signal()  # noqa: N815 (Qt signal naming)
    createSubject = Signal()  # noqa: N815 (Qt signal naming)
    openSubject = Signal()  # noqa: N815 (Qt signal naming)
    openProject = Signal()  # noqa: N815 (Qt signal naming)
    openRecent = Signal(str)  # noqa: N815 (Qt signal naming)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        style = self.style()
        sp = QStyle.StandardPixmap
        title = QLabel("Talkstudio")
        title.setObjectName("welcomeTitle")
        subtitle = QLabel(
            "Train a talking head from a video of one speaker, drive it with any speech, "
            "edit the eyes and the mouth, export an MP4."
        )
        subtitle.setObjectName("welcomeSubtitle")
        subtitle.setWordWrap(True)
        self.demo_button = _big_button(
            "Open the demo subject", DEMO_DETAILS["idle"], sp.SP_MediaPlay, style
        )
        self.demo_panel = QFrame()
        self.demo_panel.setObjectName("demoPanel")
        self.demo_status = QLabel("Building the demo subject: starting…")
        self.demo_status.setWordWrap(True)
        self.demo_bar = QProgressBar()
        self.demo_bar.setTextVisible(False)
        self.demo_bar.setRange(0, 0)
        self.demo_stop = QPushButton("Stop")
        self.demo_stop.setToolTip("Stop making the demo subject (nothing half-made is kept)")
        bar_row = QHBoxLayout()
        bar_row.addWidget(self.demo_bar, 1)
        bar_row.addWidget(self.demo_stop)
        panel_layout = QVBoxLayout(self.demo_panel)
        panel_layout.setContentsMargins(10, 8, 10, 8)
        panel_layout.addWidget(self.demo_status)
        panel_layout.addLayout(bar_row)
        self.demo_panel.hide()
        self._demo: DemoBuilder | None = None
        self._demo_available = True
        self.create_button = _big_button(
            "Create a subject…",
            "from a video of one person speaking to camera",
            sp.SP_FileDialogNewFolder,
            style,
        )
        self.subject_button = _big_button(
            "Open a subject…", "a trained subject folder", sp.SP_DirOpenIcon, style
        )
        self.project_button = _big_button(
            "Open a project…", "a .talkproj with speech and edits", sp.SP_DialogOpenButton, style
        )
        self.demo_note = QLabel()
        self.demo_note.setObjectName("welcomeNote")
        self.demo_note.setWordWrap(True)
        self.demo_note.hide()

        actions = QVBoxLayout()
        actions.setSpacing(10)
        actions.addWidget(self.demo_button)
        actions.addWidget(self.demo_panel)
        for w in (self.create_button, self.subject_button, self.project_button):
            actions.addWidget(w)
        actions.addWidget(self.demo_note)
        actions.addStretch(1)

        recent_title = QLabel("Recent")
        recent_title.setObjectName("welcomeSection")
        self.recent = QListWidget()
        self.recent.setObjectName("recentList")
        self.recent.setMinimumWidth(300)
        self.recent_empty = QLabel("Nothing opened yet.")
        self.recent_empty.setObjectName("welcomeNote")
        recent = QVBoxLayout()
        recent.setSpacing(8)
        recent.addWidget(recent_title)
        recent.addWidget(self.recent, 1)
        recent.addWidget(self.recent_empty)
        recent.addStretch(0)  # takes the room while the list is hidden

        columns = QHBoxLayout()
        columns.setSpacing(32)
        columns.addLayout(actions, 1)
        columns.addLayout(recent, 1)

        panel = QFrame()
        panel.setObjectName("welcomePanel")
        panel.setMaximumWidth(900)
        inner = QVBoxLayout(panel)
        inner.setContentsMargins(36, 30, 36, 30)
        inner.setSpacing(8)
        inner.addWidget(title)
        inner.addWidget(subtitle)
        inner.addSpacing(18)
        inner.addLayout(columns, 1)

        self.recent.setMinimumHeight(220)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(panel, 4)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

        self.demo_button.clicked.connect(self.openDemo)
        self.create_button.clicked.connect(self.createSubject)
        self.subject_button.clicked.connect(self.openSubject)
        self.project_button.clicked.connect(self.openProject)
        self.recent.itemActivated.connect(self._activated)
        self.set_recent([])

    def set_demo_available(self, available: bool, note: str = "") -> None:
        """Enable the demo button, or disable it and say why."""
        self._demo_available = available
        self.demo_button.setEnabled(available and not self._demo_building())
        self.demo_note.setText(note)
        self.demo_note.setVisible(bool(note))

    def watch_demo(self, builder: DemoBuilder) -> None:
        """Show ``builder``'s state on the demo button and its progress in the panel."""
        self._demo = builder
        builder.stateChanged.connect(self._demo_state)
        builder.progressed.connect(self._demo_progress)
        self.demo_stop.clicked.connect(builder.cancel)
        self._demo_state(builder.state)

    def _demo_building(self) -> bool:
        return self._demo is not None and self._demo.state == "building"

    def _demo_state(self, state: str) -> None:
        building = state == "building"
        title = "Making the demo subject…" if building else "Open the demo subject"
        self.demo_button.setText(f"{title}\n{DEMO_DETAILS.get(state, DEMO_DETAILS['idle'])}")
        self.demo_button.setEnabled(self._demo_available and not building)
        self.demo_panel.setVisible(building)
        if building:
            last = self._demo.last if self._demo is not None else None
            if last is None:
                self.demo_status.setText("Building the demo subject: starting…")
                self.demo_bar.setRange(0, 0)
            else:
                self._demo_progress(last)

    def _demo_progress(self, p: DemoProgress) -> None:
        self.demo_status.setText(p.text())
        if p.total > 0:
            self.demo_bar.setRange(0, p.total)
            self.demo_bar.setValue(p.step)

    def set_recent(self, paths: list[str]) -> None:
        """Show ``paths`` (newest first); missing ones are greyed out."""
        self.recent.clear()
        shown_demo = False
        for p in paths:
            path = Path(p)
            if is_demo_subject(path):  # the demo is "Demo" wherever it is built, and once
                if shown_demo:
                    continue
                shown_demo = True
                item = QListWidgetItem("Demo    (the built-in demo subject)")
                item.setData(Qt.ItemDataRole.UserRole, p)
                item.setToolTip("The built-in demo subject (made again if it was removed)")
                self.recent.addItem(item)
                continue
            kind = "project" if path.suffix == ".talkproj" else "subject"
            item = QListWidgetItem(f"{path.name}    ({kind}, {path.parent})")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            if not path.exists():
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(f"{p} (no longer exists)")
            self.recent.addItem(item)
        self.recent.setVisible(bool(paths))
        self.recent_empty.setVisible(not paths)

    def _activated(self, item: QListWidgetItem) -> None:
        if item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.openRecent.emit(str(item.data(Qt.ItemDataRole.UserRole)))
