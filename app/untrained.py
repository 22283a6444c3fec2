"""Opening a subject whose training is not finished: say which part comes next and offer the
studio's own training wizard ("Train or resume a subject…") instead of a command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from talkstudio.core.engine import missing_parts
from talkstudio.core.errors import TalkstudioError
from talkstudio.core.subject import Subject

if TYPE_CHECKING:
    from .main_window import MainWindow

PART_NAMES = {"stage1": "stage 1", "head": "head", "torso": "torso", "refiner": "refiner"}


def untrained_text(subject: Subject) -> str | None:
    """What the box says for ``subject`` (None when its head and torso are trained)."""
    missing = missing_parts(subject)
    if not {"head", "torso"} & set(missing):
        return None
    names = [PART_NAMES[m] for m in missing]
    listed = " and ".join(", ".join(names).rsplit(", ", 1))
    return (
        f"<b>{subject.meta.name}</b> is not fully trained: it has no {listed} model yet.<br><br>"
        "Parts are trained in the order stage 1 → head → torso, so the next step is "
        f"<b>{PART_NAMES[missing[0]]}</b>. The training wizard trains what is missing and "
        "resumes what was cancelled.<br><br>"
        f"<small>On the command line: <code>talkstudio train {missing[0]} {subject.root}</code>"
        "</small>"
    )


def offer_training(window: MainWindow, folder: str | Path) -> QMessageBox | None:
    """When ``folder`` is a subject without its head or torso model, show a box that names the
    next training step and offers "Train or resume a subject…" (the wizard on it); the box, or
    None when the subject is trained enough (or not a subject: the engine says what is wrong)."""
    try:
        subject = Subject.open(Path(folder), validate=False)
    except (TalkstudioError, OSError, ValueError):
        return None
    text = untrained_text(subject)
    if text is None:
        return None
    box = QMessageBox(QMessageBox.Icon.Information, "Not fully trained", text, parent=window)
    box.setObjectName("untrainedBox")
    box.setTextFormat(Qt.TextFormat.RichText)
    train = box.addButton("Train or resume a subject…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(train)
    train.clicked.connect(lambda: window.train_subject(subject.root))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
