"""Training that goes on after the wizard closed: its progress in the main window's status bar.

The wizard hands over its running :class:`~.jobs.JobRunner` (``trainingInBackground``);
:class:`TrainingStatus` shows which part trains, a bar with its steps and a "Show" button that
brings the wizard back, and reports the outcome: ``trained`` with the subject folder when the
job finished (the main window opens or refreshes it), a line for the status bar otherwise.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from talkstudio.core.presets import TRAIN_STAGE
from talkstudio.core.progress import Progress

from .jobs import JobRunner, describe_error

PART_OF_STAGE = {stage: part for part, stage in TRAIN_STAGE.items()}


class TrainingStatus(QWidget):
    """Status-bar widget of a training running in the background (hidden when there is none)."""

    trained = Signal(object)
    """The background training finished: the subject folder (Path)."""
    ended = Signal(str)
    """It stopped without finishing: a line for the user (stopped, or the error)."""
    showRequested = Signal()  # noqa: N815 (Qt signal naming)
    """The user asked to see the wizard again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingStatus")
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(140)
        self.bar.setFormat("%p %")
        self.show_button = QPushButton("Show")
        self.show_button.setToolTip("Show the training wizard")
        self.show_button.clicked.connect(self.showRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.show_button)
        self.job: JobRunner | None = None
        self.subject: Path | None = None
        self.hide()

    def watch(self, job: JobRunner, subject: Path) -> None:
        """Show the progress of ``job`` (training ``subject``) until it is done."""
        if job is self.job:
            return
        self.job, self.subject = job, Path(subject)
        self.label.setText(f"training {self.subject.name}…")
        self.bar.setRange(0, 0)
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        self.show()

    def running(self) -> bool:
        return self.job is not None and self.job.running

    def _progress(self, p: Progress) -> None:
        if self.subject is None:
            return
        part = PART_OF_STAGE.get(p.stage, p.stage)
        self.label.setText(f"training {self.subject.name}: {part} {p.step}/{p.total}")
        self.bar.setRange(0, max(p.total, 1))
        self.bar.setValue(p.step if p.total else 1)

    def _stop_watching(self) -> Path | None:
        if self.job is not None:
            for signal, slot in (
                (self.job.progress, self._progress),
                (self.job.finished, self._finished),
                (self.job.failed, self._failed),
                (self.job.cancelled, self._cancelled),
            ):
                signal.disconnect(slot)
        subject, self.job, self.subject = self.subject, None, None
        self.hide()
        return subject

    def _finished(self, _result: object) -> None:
        subject = self._stop_watching()
        if subject is not None:
            self.trained.emit(subject)

    def _failed(self, error: object) -> None:
        subject = self._stop_watching()
        text = describe_error(error) if isinstance(error, BaseException) else str(error)
        self.ended.emit(f"training {getattr(subject, 'name', '')} failed: {text.splitlines()[0]}")

    def _cancelled(self) -> None:
        subject = self._stop_watching()
        name = getattr(subject, "name", "")
        self.ended.emit(f"training {name} stopped; what was learnt is saved")
