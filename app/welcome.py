"""The welcome page: what the studio shows when nothing is open.

Four ways in — the built-in demo subject, a new subject from a video (the training wizard), a
subject folder, a ``.talkproj`` project — and the recently opened subjects and projects. The page
only emits signals; the main window does the opening.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from talkstudio.widgets.icons import themed_icon


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
            "Open the demo subject",
            "a trained synthetic speaker, ready to edit",
            sp.SP_MediaPlay,
            style,
        )
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
        for w in (self.demo_button, self.create_button, self.subject_button, self.project_button):
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
        self.demo_button.setEnabled(available)
        self.demo_note.setText(note)
        self.demo_note.setVisible(bool(note))

    def set_recent(self, paths: list[str]) -> None:
        """Show ``paths`` (newest first); missing ones are greyed out."""
        self.recent.clear()
        for p in paths:
            path = Path(p)
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
