"""The training page of the wizard: stage 1, the head, the torso and the refiner, one after the
other.

Per stage: a progress bar, the ETA, the live loss curves (:class:`LossPlot`) and the latest
preview render. The four trainers run as one job in a worker thread, with the CPU threads chosen
on the preset page; Stop training closes it between two steps (the trainer saves the step it
was at), Resume starts it again and every trainer continues from its checkpoint — finished
stages are skipped at once. "Continue in background" hands the running job to the main window
(:attr:`~.wizard.TrainingWizard.trainingInBackground`) and hides the wizard. A subject without
speech skips stage 1 (it can still be edited, replaying its own frames); one whose head renders
at the subject's full size skips the refiner (``core.refiner.train.nothing_to_refine``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from talkstudio.core.presets import REFINER_CACHE_STAGE, TRAIN_STAGE
from talkstudio.core.progress import Progress
from talkstudio.widgets.loss_plot import MIN_HEIGHT, LossHistory, LossPlot

from .images import FitImage, format_eta
from .jobs import JobRunner, describe_error
from .wizard_pages import JobPage

if TYPE_CHECKING:
    from .wizard import TrainingWizard

PLACEHOLDERS = {
    "stage1": "stage 1 predicts landmarks, not images: its validation LMD (mean landmark "
    "error in pixels, lower is better) is written above, after each validation",
    "head": "head renders appear here during training",
    "torso": "full-frame renders appear here during training",
    "refiner": "refined frames (head render → the subject's full size) appear here",
}
TITLES = {
    "stage1": "Stage 1 — audio → landmarks",
    "head": "Head NeRF — landmarks → head",
    "torso": "Torso — head + background → frame",
    "refiner": "Refiner — head render → full-size frame",
}
STAGES = {part: (stage,) for part, stage in TRAIN_STAGE.items()} | {
    "refiner": (TRAIN_STAGE["refiner"], REFINER_CACHE_STAGE)
}
"""The progress stages each box shows (the refiner first renders the head's inputs)."""


def training_job(
    subject: Path,
    preset: str,
    device: str,
    overrides: dict[str, dict],
    threads: int = 0,
    ray: str = "",
) -> Any:
    """Train stage 1 (when the subject has speech), the head, the torso and the refiner (when it
    has something to add) with ``threads``
    torch CPU threads (0: leave torch's setting; restored afterwards); returns ``subject``.
    With ``ray`` (a cluster address, or "auto"/"local") each part trains in a Ray actor
    (core/remote_training.py) whose progress and checkpoints come back here."""
    from talkstudio.core.training import torch_threads

    with torch_threads(threads):
        return (yield from _train_parts(subject, preset, device, overrides, ray, threads))


def _train_parts(
    subject: Path, preset: str, device: str, overrides: dict[str, dict], ray: str, threads: int
) -> Any:
    from talkstudio.core.head.config import HeadConfig
    from talkstudio.core.refiner import RefinerConfig
    from talkstudio.core.refiner.train import nothing_to_refine
    from talkstudio.core.remote_training import train_on_ray, trainer
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.subject import Subject
    from talkstudio.core.torso.config import TorsoConfig

    def part(name: str, config: Any) -> Any:
        if ray:
            return train_on_ray(
                name, subject, config, device=device, address=ray, threads=max(threads, 1)
            )
        return trainer(name)(subject, config, device)

    if Subject.open(subject).meta.has_audio:
        yield from part("stage1", Stage1Config.from_preset(preset, **overrides.get("stage1", {})))
    else:
        yield Progress(TRAIN_STAGE["stage1"], 0, 0, "skipped: the video has no speech")
    yield from part("head", HeadConfig.from_preset(preset, **overrides.get("head", {})))
    yield from part("torso", TorsoConfig.from_preset(preset, **overrides.get("torso", {})))
    why = nothing_to_refine(Subject.open(subject))
    if why is None:
        yield from part(
            "refiner", RefinerConfig.from_preset(preset, **overrides.get("refiner", {}))
        )
    else:
        yield Progress(TRAIN_STAGE["refiner"], 0, 0, f"skipped: {why}")
    return subject


NOTES = 4
"""Start-up messages a training box keeps (:attr:`StageBox.notes`)."""


class StageBox(QGroupBox):
    """Progress, ETA, losses and preview of one training stage."""

    def __init__(self, part: str) -> None:
        super().__init__(TITLES[part])
        self.part = part
        self.bar = QProgressBar()
        self.bar.setFormat("%v / %m steps")
        self.eta = QLabel("waiting")
        self.eta.setWordWrap(True)
        self.history = LossHistory(TRAIN_STAGE[part], self)
        self.plot = LossPlot(self.history, step_label=False)
        self.plot.setMinimumSize(220, MIN_HEIGHT)
        self.image = FitImage(PLACEHOLDERS[part])
        self.image.setMinimumSize(200, 60)
        self.image.setObjectName("trainPreview")
        # the loss plot spans the box's width on top, so its one-row legend fits the many terms
        # of the head at half the wizard's width; progress and ETA stack below it on the left,
        # the preview beside them (the four boxes sit two by two)
        layout = QGridLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setVerticalSpacing(4)
        layout.addWidget(self.plot, 0, 0, 1, 2)
        layout.addWidget(self.bar, 1, 0)
        layout.addWidget(self.eta, 2, 0)
        layout.addWidget(self.image, 1, 1, 2, 1)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        layout.setRowStretch(0, 3)
        layout.setRowStretch(2, 2)
        self._t0 = 0.0
        self._first_step = 0
        self.last_step = 0
        self.total = 0
        self.validation = ""
        self.notes: list[str] = []
        """What the part said before its first step (e.g. stage 1: the sound's offset against
        the picture, the prior it starts from): kept as the ETA line's tool tip."""

    def record(self, p: Progress) -> None:
        if p.step == 0 and p.total and p.message and not p.losses and p.message not in self.notes:
            self.notes = [*self.notes, p.message][-NOTES:]
            self.eta.setToolTip("\n".join(f"• {n}" for n in self.notes))
        if not self._t0 or p.step < self._first_step:
            self._t0, self._first_step = time.monotonic(), p.step
        self.total = p.total
        self.last_step = p.step
        self.bar.setFormat("%v / %m frames" if p.stage == REFINER_CACHE_STAGE else "%v / %m steps")
        self.bar.setRange(0, max(p.total, 1))
        self.bar.setValue(p.step if p.total else 1)
        if p.losses:  # the loss terms; metrics (scores, counters) are shown as text
            self.history.add(replace(p, preview=None))
        if "val_lmd" in p.metrics:
            self.validation = (
                f" · val LMD {p.metrics['val_lmd']:.2f} px "
                f"(mean-face baseline {p.metrics.get('val_lmd_baseline', float('nan')):.2f})"
            )
        done = p.step - self._first_step
        left = p.total - p.step
        eta = (time.monotonic() - self._t0) / done * left if done > 0 else None
        if p.total and p.step >= p.total:
            self.eta.setText(f"done · {p.message}{self.validation}")
        elif p.total == 0:
            self.eta.setText(p.message)
        else:
            self.eta.setText(f"{format_eta(eta)} · {p.message}{self.validation}")
        if p.preview is not None:
            self.image.set_rgb(p.preview)

    def restart_clock(self) -> None:
        self._t0 = 0.0


class TrainPage(JobPage):
    """Trains the three parts with progress; cancel and resume."""

    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__(
            wizard,
            "Training",
            "Stage 1, the head, the torso and the refiner train one after the other.",
        )
        self.boxes = {part: StageBox(part) for part in TITLES}  # the parts training_job trains
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Start training")
        # "Stop", not "Cancel": the wizard's own Cancel button below closes the wizard
        self.cancel_button = QPushButton("Stop training")
        self.cancel_button.setToolTip(
            "Stop after the current step; what was learnt is saved and Resume continues from it"
        )
        self.background_button = QPushButton("Continue in background")
        self.background_button.setToolTip(
            "Close the wizard and keep training; the main window's status bar shows the "
            "progress and the subject opens when it is trained"
        )
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.background_button.clicked.connect(self.wiz.to_background)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.background_button)
        layout = QVBoxLayout(self)
        grid = QGridLayout()  # two by two: every loss plot keeps its height in a 720-px wizard
        for k, box in enumerate(self.boxes.values()):
            grid.addWidget(box, k // 2, k % 2)
        layout.addLayout(grid, 1)
        layout.addLayout(buttons)
        self.trained: Path | None = None
        self._set_running(False)

    def initializePage(self) -> None:
        self.trained = None
        for box in self.boxes.values():
            box.history.clear()
        self.start()

    def cleanupPage(self) -> None:  # Back
        self.cancel_jobs()

    def start(self) -> JobRunner | None:
        """Start (or resume) training; every trainer continues from its checkpoint."""
        if self.job is not None:
            return self.job
        subject = self.wiz.subject_dir()
        preset, device, threads = self.wiz.preset(), self.wiz.device(), self.wiz.threads()
        ray = self.wiz.ray_address()
        overrides = self.wiz.overrides
        self.trained = None
        for box in self.boxes.values():
            box.restart_clock()
        job = JobRunner(
            lambda: training_job(subject, preset, device, overrides, threads, ray),
            "train",
            parent=self,
        )
        self.job = job
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(lambda exc: self.status.setText(f"✘ {describe_error(exc)}"))
        job.cancelled.connect(
            lambda: self.status.setText(
                "stopped; what was learnt up to this step is saved — Resume continues from it"
            )
        )
        job.done.connect(self._done)
        on = f"{device}, {threads} CPU thread{'s' if threads != 1 else ''}" if threads else device
        on += f" (Ray cluster {ray})" if ray else ""
        self.status.setText(f"training {subject.name} with the {preset} preset on {on}…")
        self._set_running(True)
        job.start()
        return job

    def _progress(self, p: Progress) -> None:
        for part, box in self.boxes.items():
            if p.stage in STAGES[part]:
                box.record(p)

    def _finished(self, subject: object) -> None:
        self.trained = Path(str(subject))
        self.status.setText(f"✔ {self.trained.name} is trained: Finish opens it in the studio")

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.background_button.setEnabled(running)
        self.start_button.setEnabled(not running and self.trained is None)
        self.start_button.setText("Resume training" if not running else "Training…")

    def isComplete(self) -> bool:
        return self.trained is not None and self.job is None
