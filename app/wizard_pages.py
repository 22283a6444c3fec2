"""The first three pages of the training wizard: the video, preprocessing, the preset.

Each page runs its work as a job off the GUI thread (:class:`~.jobs.JobRunner`) and is complete
(Next enabled) only when the work succeeded. Going back cancels what is running.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWizardPage,
)

from talkstudio.core.presets import PRESETS
from talkstudio.core.subject import MODEL_PARTS

from .images import FitImage, ImageWindow, format_eta
from .jobs import JobRunner, OwnsJob, describe_error

if TYPE_CHECKING:
    from .video_check import VideoCheck
    from .wizard import TrainingWizard

VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v);;All files (*)"


def default_subjects_folder() -> Path:
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(docs or Path.home()) / "Talkstudio"


class JobPage(OwnsJob, QWizardPage):
    """A wizard page (``wiz``: its wizard) that runs one background job at a time; when the job
    is done, ``_set_running(False)`` updates the page's buttons and the wizard asks again
    whether the page is complete."""

    def __init__(self, wizard: TrainingWizard, title: str, subtitle: str) -> None:
        super().__init__()
        self.wiz = wizard
        self.job: JobRunner | None = None
        self.setTitle(title)
        self.setSubTitle(subtitle)

    def _done(self) -> None:
        self.job = None
        self._set_running(False)
        self.completeChanged.emit()

    def _set_running(self, running: bool) -> None:
        """Enable the page's buttons for a job that runs (``running``) or has ended."""


class VideoPage(JobPage):
    """Choose the video and where the subject goes; the video is checked in the background."""

    checkFinished = Signal()  # noqa: N815 (Qt signal naming)
    """The check of the chosen video ended (accepted or rejected)."""

    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__(
            wizard,
            "Choose a video",
            "One person speaking to the camera, at least 2 s (1–5 minutes trains well), "
            "with their speech on the sound track.",
        )
        self.video_edit = QLineEdit()
        self.video_edit.setPlaceholderText("a video file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_video)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("folder for the new subject")
        self._default_out: Path | None = None  # proposed from the video's name, shown greyed
        browse_out = QPushButton("Browse…")
        browse_out.clicked.connect(self._browse_out)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.video_edit, 1)
        row.addWidget(browse)
        form.addRow("Video", row)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse_out)
        form.addRow("Subject folder", row)
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        self.status.setObjectName("checkStatus")
        self.thumbs = [FitImage() for _ in range(4)]
        grid = QHBoxLayout()
        for t in self.thumbs:
            t.setFixedSize(168, 128)
            t.setObjectName("thumb")
            grid.addWidget(t)
        grid.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.check: VideoCheck | None = None
        self.error = ""
        self.video_edit.editingFinished.connect(self._video_edited)
        self.out_edit.textChanged.connect(self.completeChanged)

    def set_video(self, path: str | Path) -> JobRunner | None:
        """Use ``path`` (and check it); returns the check job."""
        self.video_edit.setText(str(path))
        # The proposal is a placeholder, so what the user types starts an empty field
        self._default_out = default_subjects_folder() / Path(path).stem
        self.out_edit.setPlaceholderText(
            f"{self._default_out}  (the default; type a folder, or a name to put under "
            f"{default_subjects_folder()})"
        )
        self.out_edit.setToolTip(f"Empty: {self._default_out}")
        self.completeChanged.emit()
        return self._start_check()

    def subject_folder(self) -> Path | None:
        """The folder the new subject goes to: what was typed (a bare name goes under the
        default subjects folder), else the proposal from the video's name; None before either."""
        text = self.out_edit.text().strip()
        if not text:
            return self._default_out
        path = Path(text).expanduser()
        return path if path.is_absolute() else default_subjects_folder() / path

    def _browse_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a video", "", VIDEO_FILTER)
        if path:
            self.set_video(path)

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new subject")
        if folder:
            self.out_edit.setText(folder)

    def _video_edited(self) -> None:
        if self.check is None or str(self.check.info.path) != self.video_edit.text():
            self.set_video(self.video_edit.text())

    def _start_check(self) -> JobRunner | None:
        from .video_check import check_video_job

        if self.job is not None:
            self.job.cancel()
        self.check, self.error = None, ""
        for t in self.thumbs:
            t.clear()
        path = self.video_edit.text().strip()
        self.completeChanged.emit()
        if not path:
            return None
        self.status.setText(f"checking {Path(path).name}…")
        job = JobRunner(lambda: check_video_job(path), "check-video", parent=self)
        self.job = job
        job.finished.connect(lambda check: self._checked(job, check))
        job.failed.connect(lambda exc: self._rejected(job, describe_error(exc)))
        job.start()
        return job

    def _checked(self, job: JobRunner, check: VideoCheck) -> None:
        if job is not self.job:
            return
        self.job = None
        self.check = check
        self.status.setText("✔ " + check.summary)
        for label, rgb in zip(self.thumbs, check.thumbnails):
            label.set_rgb(rgb)
        self.completeChanged.emit()
        self.checkFinished.emit()

    def _rejected(self, job: JobRunner, message: str) -> None:
        if job is not self.job:
            return
        self.job = None
        self.error = message
        self.status.setText("✘ " + message)
        self.completeChanged.emit()
        self.checkFinished.emit()

    def isComplete(self) -> bool:
        return self.check is not None and self.subject_folder() is not None


class PreprocessPage(JobPage):
    """Runs preprocessing with progress and an ETA; shows the contact sheet; cancel and retry."""

    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__(
            wizard,
            "Preprocessing",
            "Tracking the face, solving the head pose, segmenting every frame.",
        )
        self.stage_label = QLabel(" ")
        self.bar = QProgressBar()
        self.eta_label = QLabel(" ")
        self.sheet = FitImage("the contact sheet appears here when preprocessing is done")
        self.sheet.setMinimumHeight(200)
        self.sheet.setObjectName("contactSheet")
        self.sheet.setToolTip("Double-click to see the contact sheet at full size")
        self.view_button = QPushButton("View full size…")
        self.view_button.setEnabled(False)
        self.view_button.clicked.connect(self.show_sheet)
        self.sheet.activated.connect(self.show_sheet)
        self.sheet.imageChanged.connect(self.view_button.setEnabled)
        self.sheet_window: ImageWindow | None = None
        # "Stop", not "Cancel": the wizard's own Cancel button below closes the wizard
        self.cancel_button = QPushButton("Stop preprocessing")
        self.retry_button = QPushButton("Run again")
        self.cancel_button.clicked.connect(self.cancel_job)
        self.retry_button.clicked.connect(self.start)
        buttons = QHBoxLayout()
        buttons.addWidget(self.view_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.retry_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.bar)
        layout.addWidget(self.eta_label)
        layout.addWidget(self.sheet, 1)
        layout.addLayout(buttons)
        self.done_path: Path | None = None
        self._stage = ""
        self._t0 = 0.0

    def initializePage(self) -> None:
        if self.done_path is None or self.done_path != self.wiz.subject_dir():
            self.start()

    def show_sheet(self) -> ImageWindow | None:
        """Open the contact sheet in a window of its own (resizable, 100 % or fitted)."""
        image = self.sheet.image()
        if image is None:
            return None
        if self.sheet_window is not None:
            self.sheet_window.close()
        self.sheet_window = ImageWindow(image, "Contact sheet", self)
        self.sheet_window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.sheet_window.destroyed.connect(self._sheet_window_gone)
        self.sheet_window.show()
        return self.sheet_window

    def _sheet_window_gone(self) -> None:
        self.sheet_window = None

    def cleanupPage(self) -> None:  # Back
        self.cancel_jobs()

    def start(self) -> JobRunner | None:
        if self.job is not None:
            return self.job
        from talkstudio.core.preprocess.config import PreprocessConfig

        video, out = self.wiz.video_path(), self.wiz.subject_dir()
        cfg = PreprocessConfig(**self.wiz.overrides.get("preprocess", {}))

        def factory() -> Any:
            from talkstudio.core.preprocess.pipeline import preprocess

            return preprocess(video, out, config=cfg)

        self.done_path = None
        self.sheet.clear()
        self.job = job = JobRunner(factory, "preprocess", parent=self)
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(lambda exc: self._ended(f"✘ {describe_error(exc)}"))
        job.cancelled.connect(lambda: self._ended("stopped; nothing was written"))
        job.done.connect(self._done)
        self._set_running(True)
        job.start()
        return job

    def _progress(self, p: Any) -> None:
        if p.stage != self._stage:
            self._stage, self._t0 = p.stage, time.monotonic()
        self.stage_label.setText(f"{p.stage}: {p.message}")
        self.bar.setRange(0, max(p.total, 1))
        self.bar.setValue(p.step)
        elapsed = time.monotonic() - self._t0
        eta = elapsed / p.step * (p.total - p.step) if p.step and p.total else None
        self.eta_label.setText(f"{p.stage}: {format_eta(eta)}" if p.total > 1 else " ")
        if p.preview is not None:
            self.sheet.set_rgb(p.preview)

    def _finished(self, path: object) -> None:
        self.done_path = Path(str(path))
        self.eta_label.setText(f"✔ subject written to {self.done_path}")

    def _ended(self, text: str) -> None:
        self.eta_label.setText(text)

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.retry_button.setEnabled(not running and self.done_path is None)

    def isComplete(self) -> bool:
        return self.done_path is not None and self.job is None


def _preset_text(name: str) -> str:
    p = PRESETS[name]
    steps = ", ".join(f"{part} {p.overrides(part)['steps']:,} steps" for part in MODEL_PARTS)
    size = p.head["image_size"]
    if name == "preview":
        return f"Preview — {size}², about 20–35 minutes on a CPU ({steps})"
    return f"Paper — {size}², the paper's settings; wants a GPU ({steps})"


def default_threads() -> int:
    """The CPU threads training starts with: torch's setting (``talkstudio --threads N`` sets
    it for the whole studio; else one per core)."""
    import torch

    return max(int(torch.get_num_threads()), 1)


class PresetPage(QWizardPage):
    """Choose the training preset, the device, the CPU threads and where to train."""

    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.setTitle("Training preset")
        self.setSubTitle("How long and how large to train. Training can be resumed later.")
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        grid = QGridLayout()
        for i, name in enumerate(PRESETS):
            b = QRadioButton(_preset_text(name))
            self.group.addButton(b, i)
            self.buttons[name] = b
            grid.addWidget(b, i, 0)
        self.buttons["preview"].setChecked(True)
        self.device = QComboBox()
        self.device.addItem("Automatic (GPU when there is one)", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (CUDA)", "cuda")
        self.threads = QSpinBox()
        start = default_threads()
        self.threads.setRange(1, max(os.cpu_count() or 1, start))
        self.threads.setValue(start)
        self.threads.setToolTip(
            "Torch threads while training on the CPU. On a machine busy with other work, "
            "1 or 2 run many times faster than one per core (waiting threads spin)."
        )
        threads_note = QLabel("on a busy machine 1–2 threads train fastest")
        threads_note.setStyleSheet("color: palette(mid)")
        threads_row = QHBoxLayout()
        threads_row.addWidget(self.threads)
        threads_row.addWidget(threads_note, 1)
        self.ray = QLineEdit()
        self.ray.setPlaceholderText("this computer")
        self.ray.setToolTip(
            "Leave empty to train here. Or a Ray cluster: auto (the one started with `ray start "
            "--head` on this computer, or $RAY_ADDRESS) or its address HOST:6379. The subject "
            "is sent along; progress and checkpoints come back into it."
        )
        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("CPU threads", threads_row)
        form.addRow("Train on Ray cluster", self.ray)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addSpacing(12)
        layout.addLayout(form)
        layout.addStretch(1)

    def preset(self) -> str:
        return next(n for n, b in self.buttons.items() if b.isChecked())

    def device_name(self) -> str:
        return str(self.device.currentData())

    def thread_count(self) -> int:
        return int(self.threads.value())

    def ray_address(self) -> str:
        return self.ray.text().strip()
