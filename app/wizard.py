"""The training wizard: from a video of one speaker to a trained subject open in the studio.

Pages: the video (checked: long enough, a face on sampled frames, thumbnails) → preprocessing
(progress, contact sheet, stop) → the preset, device and CPU threads → training of stage 1, head
and torso (per-stage progress, ETA, loss curves, previews, stop and resume). Finish emits
:attr:`TrainingWizard.subjectReady` with the subject folder; the main window opens it.

While training runs, the wizard's Cancel asks first: stop training (the current step is saved,
as the page's Stop training does), continue in the background, or keep the wizard. Closing the
wizard's window, or "Continue in background", hands the running job to the main window
(:attr:`TrainingWizard.trainingInBackground`), which shows its progress in the status bar and
opens the subject when it is trained.
:meth:`TrainingWizard.continue_subject` starts at the preset page for a subject that is already
preprocessed (to train it, or to resume a cancelled training).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMessageBox, QWidget, QWizard

from talkstudio.core.errors import TalkstudioError

from .wizard_pages import PreprocessPage, PresetPage, VideoPage
from .wizard_train import TrainPage

PAGE_VIDEO, PAGE_PREPROCESS, PAGE_PRESET, PAGE_TRAIN = range(4)


class TrainingWizard(QWizard):
    """Create (or finish training) a subject."""

    subjectReady = Signal(object)  # noqa: N815 (Qt signal naming)
    """Finish was pressed on a trained subject: its folder (Path)."""
    trainingInBackground = Signal(object, object)  # noqa: N815 (Qt signal naming)
    """The wizard closed while training runs: (the JobRunner, the subject folder)."""

    def __init__(
        self, parent: QWidget | None = None, overrides: dict[str, dict] | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trainingWizard")
        self.setWindowTitle("New subject")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setMinimumSize(820, 640)
        self.overrides: dict[str, dict] = dict(overrides or {})
        """Per part ("preprocess", "stage1", "head", "torso"): config fields set on top of the
        preset (tests and benchmarks train tiny models this way)."""
        self.video_page = VideoPage(self)
        self.preprocess_page = PreprocessPage(self)
        self.preset_page = PresetPage(self)
        self.train_page = TrainPage(self)
        self.setPage(PAGE_VIDEO, self.video_page)
        self.setPage(PAGE_PREPROCESS, self.preprocess_page)
        self.setPage(PAGE_PRESET, self.preset_page)
        self.setPage(PAGE_TRAIN, self.train_page)
        self._existing: Path | None = None

    # --- what the pages share ------------------------------------------------------------------
    def video_path(self) -> Path:
        return Path(self.video_page.video_edit.text().strip())

    def subject_dir(self) -> Path:
        if self._existing is not None:
            return self._existing
        folder = self.video_page.subject_folder()
        if folder is None:
            raise TalkstudioError("choose a video and the folder for the new subject first")
        return folder

    def preset(self) -> str:
        return self.preset_page.preset()

    def device(self) -> str:
        return self.preset_page.device_name()

    def threads(self) -> int:
        """Torch CPU threads for training (the preset page's choice)."""
        return self.preset_page.thread_count()

    def ray_address(self) -> str:
        """The Ray cluster to train on ("": this computer)."""
        return self.preset_page.ray_address()

    def training_running(self) -> bool:
        job = self.train_page.job
        return job is not None and job.running

    # --- starting points ------------------------------------------------------------------------
    def restart(self) -> None:
        """Back to the first page for a new video."""
        self._existing = None
        self.setStartId(PAGE_VIDEO)
        self.restart_at_start()

    def continue_subject(self, subject: str | Path) -> None:
        """Train (or resume training) an already preprocessed subject."""
        self._existing = Path(subject)
        self.setWindowTitle(f"Train {self._existing.name}")
        self.setStartId(PAGE_PRESET)
        self.restart_at_start()

    def restart_at_start(self) -> None:
        self.cancel_jobs()
        super().restart()

    # --- ending ---------------------------------------------------------------------------------
    def cancel_jobs(self) -> None:
        for page in (self.video_page, self.preprocess_page, self.train_page):
            page.cancel_jobs()

    def accept(self) -> None:
        trained = self.train_page.trained
        super().accept()
        if trained is not None:
            self.subjectReady.emit(trained)

    def ask_cancel_training(self) -> str:
        """Ask what Cancel means while training runs: "stop", "background" or "keep"."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Training is running",
            "Stop training now? What was learnt up to the current step is saved, and "
            "Train or resume a subject… continues from it later.\n\n"
            "Or let it continue in the background: the main window shows its progress and "
            "opens the subject when it is trained.",
            parent=self,
        )
        box.setObjectName("cancelTrainingBox")
        stop = box.addButton("Stop training", QMessageBox.ButtonRole.DestructiveRole)
        background = box.addButton("Continue in background", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep the wizard open", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(background)
        box.setEscapeButton(keep)
        box.exec()
        clicked = box.clickedButton()
        return "stop" if clicked is stop else "background" if clicked is background else "keep"

    def to_background(self) -> None:
        """Close the wizard and let the running training go on; the main window takes it."""
        job = self.train_page.job
        if job is None or not job.running:
            return
        self.trainingInBackground.emit(job, self.subject_dir())
        self.hide()  # only: reject() or done() would clean the pages up, which stops the job

    def reject(self) -> None:
        """Cancel (or Escape): while training runs, ask first; otherwise stop what runs."""
        if self.training_running():
            answer = self.ask_cancel_training()
            if answer == "keep":
                return
            if answer == "background":
                self.to_background()
                return
        self.cancel_jobs()  # training: the trainer saves the step it was at
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window while training runs keeps training, in the background."""
        if self.training_running():
            self.to_background()
            event.accept()
            return
        super().closeEvent(event)
