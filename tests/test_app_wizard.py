"""The training wizard: the video page rejects a video without a face and one shorter than 2 s,
accepts real footage with thumbnails; preprocessing runs with progress and a contact sheet; the
training page trains the three parts off the GUI thread with live losses, cancels, resumes, and
Finish opens the subject in the studio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _app_helpers import (
    MULTIMEDIA_NOISE,
    RENDER_TIMEOUT_MS,
    GuiTicks,
    make_window,
    settings_at,
)
from conftest import shared_data
from PySide6.QtCore import Qt

from talkstudio.app.wizard import PAGE_PREPROCESS, PAGE_PRESET, PAGE_TRAIN, TrainingWizard
from talkstudio.core.media import encode_mp4
from talkstudio.core.subject import Subject
from talkstudio.widgets.loss_plot import MIN_HEIGHT

pytestmark = MULTIMEDIA_NOISE

TINY = {
    "stage1": {"steps": 3, "val_every": 3, "checkpoint_every": 3},
    "head": {
        "image_size": 32,
        "patch_size": 16,
        "grid_levels": 4,
        "grid_max_resolution": 64,
        "occupancy_resolution": 32,
        "bake_frames": 2,
        "preview_every": 2,
        "steps": 4,
    },
    "torso": {"image_size": 64, "base_width": 8, "steps": 3, "preview_every": 2},
    "refiner": {
        "base_width": 8,
        "depth": 2,
        "dcn_levels": (1,),
        "up_width": 8,
        "steps": 3,
        "batch_size": 2,
        "crop_size": 32,
        "cache_frames": 4,
        "preview_every": 2,
    },
}
"""Tiny training runs on the preview preset (the wizard's per-part overrides)."""


def noise_video(path: Path, seconds: float, size: int = 96) -> Path:
    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(int(seconds * 25))
    ]
    audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    return encode_mp4(path, frames, audio=audio)


@pytest.fixture
def wizard(qtbot, tmp_path):
    settings_at(tmp_path)  # the PySide6 refcount guard
    w = TrainingWizard(overrides=TINY)
    qtbot.addWidget(w)
    with qtbot.waitExposed(w):
        w.show()
    return w


def _check(qtbot, page, video: Path):
    with qtbot.waitSignal(page.checkFinished, timeout=60_000):
        job = page.set_video(video)
        assert job is not None
    return page


def test_video_without_a_face_is_rejected(qtbot, wizard, tmp_path) -> None:
    page = _check(qtbot, wizard.video_page, noise_video(tmp_path / "noise.mp4", 3.0))
    assert not page.isComplete() and page.check is None
    assert "no face was found in 4 of 4 frames" in page.error
    assert page.status.text().startswith("✘")
    assert not wizard.button(wizard.WizardButton.NextButton).isEnabled()


def test_video_shorter_than_two_seconds_is_rejected(qtbot, wizard, tmp_path) -> None:
    page = _check(qtbot, wizard.video_page, noise_video(tmp_path / "short.mp4", 1.0))
    assert not page.isComplete()
    assert "1.00 s long" in page.error and "at least 2 s" in page.error


def test_real_video_is_accepted_with_thumbnails(qtbot, wizard, tmp_path) -> None:
    video = shared_data("May_5s.mp4")
    page = wizard.video_page
    page.out_edit.setText(str(tmp_path / "may"))
    _check(qtbot, page, video)
    assert page.isComplete(), page.error
    assert page.check.faces == [1, 1, 1, 1]
    assert "a face on 4 of 4 sampled frames" in page.status.text()
    assert all(t.has_image() for t in page.thumbs)
    assert wizard.button(wizard.WizardButton.NextButton).isEnabled()


@pytest.mark.slow
def test_preprocess_page_with_progress_and_contact_sheet(qtbot, tmp_path) -> None:
    settings_at(tmp_path)
    wizard = TrainingWizard(overrides={"preprocess": {"size": 128, "frame_ext": ".png"}})
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.video_page
    page.out_edit.setText(str(tmp_path / "may"))
    _check(qtbot, page, shared_data("May_5s.mp4"))
    stages = set()
    pre = wizard.preprocess_page
    with qtbot.waitSignal(pre.completeChanged, timeout=900_000, check_params_cb=pre.isComplete):
        wizard.next()
        assert wizard.currentId() == PAGE_PREPROCESS
        pre.job.progress.connect(lambda p: stages.add(p.stage))
    assert {"track", "frames"} <= stages
    assert pre.done_path == tmp_path / "may" and pre.sheet.has_image()
    assert Subject.open(tmp_path / "may").meta.size == 128
    wizard.next()
    assert wizard.currentId() == PAGE_PRESET


@pytest.fixture(scope="module")
def synthetic_subject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s 64² synthetic subject with speech: preprocessed, nothing trained (the wizard's
    input; tests train copies of it)."""
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("wizard_subject")
    cfg = SynthConfig(seed=3, seconds=2.0, size=64)
    return Path(write_synthetic(out, cfg, video=False).subject_dir)


def _untrained_copy(source: Path, folder: Path) -> Path:
    subject = folder / "subject"
    shutil.copytree(source, subject, ignore=shutil.ignore_patterns("models"))
    return subject


def test_training_page_trains_off_the_gui_thread_and_finish_opens(
    qtbot, tmp_path, synthetic_subject
) -> None:
    window = make_window(qtbot, tmp_path)
    subject = _untrained_copy(synthetic_subject, tmp_path)
    window.train_subject(subject)  # File ▸ Train or resume a subject…
    wizard = window.wizard
    wizard.overrides = TINY
    assert wizard.currentId() == PAGE_PRESET
    train = wizard.train_page
    with (
        GuiTicks(lambda: train.job is not None) as ticks,
        qtbot.waitSignal(train.completeChanged, timeout=900_000, check_params_cb=train.isComplete),
    ):
        wizard.next()  # starts training
        assert wizard.currentId() == PAGE_TRAIN and train.job is not None
    # the GUI thread kept handling its timer while the three parts trained in a worker
    assert ticks.while_busy >= 1, ticks.states
    for part in ("stage1", "head", "torso", "refiner"):  # the head at 32², refined ×2 to 64²
        box = train.boxes[part]
        assert box.bar.value() == box.bar.maximum() == TINY[part]["steps"]
        assert box.history.names(), part  # live loss curves
        assert box.eta.text().startswith("done")
        assert Subject.open(subject).has_model(part)
    assert train.boxes["head"].image.has_image()  # a preview render
    wizard.resize(900, 720)  # four stages fit: every loss plot gets its full height
    qtbot.waitUntil(lambda: wizard.height() == 720)
    for box in train.boxes.values():
        assert box.plot.height() >= box.plot.minimumHeight() >= MIN_HEIGHT
        assert box.geometry().bottom() < train.status.geometry().top()
    with qtbot.waitSignal(window.sessionOpened, timeout=RENDER_TIMEOUT_MS) as opened:
        wizard.button(wizard.WizardButton.FinishButton).click()
    assert opened.args[0].subject == subject
    assert window.stack.currentWidget() is window.editor_page


def _wizard_on_copy(qtbot, tmp_path, source: Path, head_steps: int):
    """A shown wizard on the preset page of an untrained copy of ``source``, with the head
    training ``head_steps`` steps and checkpointing only at the end: (wizard, subject)."""
    settings_at(tmp_path)
    subject = _untrained_copy(source, tmp_path)
    head = dict(TINY["head"], steps=head_steps, checkpoint_every=1000)
    wizard = TrainingWizard(overrides={**TINY, "head": head})
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.continue_subject(subject)
    return wizard, subject


def test_training_cancel_and_resume(qtbot, tmp_path, synthetic_subject) -> None:
    wizard, subject = _wizard_on_copy(qtbot, tmp_path, synthetic_subject, 8)
    train = wizard.train_page
    cancelled_at: list[int] = []

    def progress(p) -> None:
        if p.stage == "train head" and p.step >= 3 and not cancelled_at:
            cancelled_at.append(p.step)
            train.cancel_job()

    with qtbot.waitSignal(train.completeChanged, timeout=900_000):
        wizard.next()
        train.job.progress.connect(progress)
    assert cancelled_at and not train.isComplete()
    assert train.start_button.isEnabled() and train.start_button.text() == "Resume training"
    state = Subject.open(subject).model_dir("head") / "train_state.json"
    step = json.loads(state.read_text("utf-8"))["info"]["step"]
    assert 3 <= step < 8  # what was learnt before the cancel was kept

    first: list[int] = []
    with qtbot.waitSignal(train.completeChanged, timeout=900_000, check_params_cb=train.isComplete):
        job = train.start()
        job.progress.connect(lambda p: p.stage == "train head" and first.append(p.step))
    assert first[0] >= step  # resumed from the checkpoint, not from 0
    assert train.boxes["head"].bar.value() == 8
    assert Subject.open(subject).has_model("torso")


def _answer_box(qtbot, button_text: str) -> list[str]:
    """Click ``button_text`` on the next modal message box that opens (the real box, driven as a
    user would); returns the texts of the boxes answered."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    answered: list[str] = []
    timer = QTimer()

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            timer.stop()
            answered.append(box.text())
            next(b for b in box.buttons() if b.text() == button_text).click()

    timer.timeout.connect(poll)
    timer.start(20)
    qtbot._answer_timer = timer  # kept alive until the box was answered
    return answered


def test_cancel_while_training_asks_and_stop_saves_the_current_step(
    qtbot, tmp_path, synthetic_subject
) -> None:
    wizard, subject = _wizard_on_copy(qtbot, tmp_path, synthetic_subject, 400)
    train = wizard.train_page
    assert train.cancel_button.text() == "Stop training"  # not a second "Cancel"
    wizard.next()
    qtbot.waitUntil(lambda: train.boxes["head"].last_step >= 2, timeout=900_000)
    cancel = wizard.button(wizard.WizardButton.CancelButton)
    asked = _answer_box(qtbot, "Keep the wizard open")
    cancel.click()
    assert asked and "Stop training now?" in asked[0]
    assert wizard.isVisible() and train.job is not None and train.job.running
    asked = _answer_box(qtbot, "Stop training")
    cancel.click()
    assert asked
    assert not wizard.isVisible() and train.job is None
    state = Subject.open(subject).model_dir("head") / "train_state.json"
    saved = json.loads(state.read_text("utf-8"))["info"]["step"]
    assert 2 <= saved < 400
    assert abs(saved - train.boxes["head"].last_step) <= 1  # the step it was at, not an older one


def test_training_goes_on_in_the_background_with_the_chosen_threads(
    qtbot, tmp_path, synthetic_subject, monkeypatch
) -> None:
    import torch

    from talkstudio.app import wizard_train

    threads_seen: list[int] = []  # torch's threads in the training thread, at each record
    real_job = wizard_train.training_job

    def watched_job(*args, **kwargs):
        gen = real_job(*args, **kwargs)
        try:
            while True:
                record = next(gen)
                threads_seen.append(torch.get_num_threads())
                yield record
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()

    monkeypatch.setattr(wizard_train, "training_job", watched_job)
    window = make_window(qtbot, tmp_path)
    subject = _untrained_copy(synthetic_subject, tmp_path)
    window.train_subject(subject)
    wizard = window.wizard
    wizard.overrides = {**TINY, "head": dict(TINY["head"], steps=12)}
    spin = wizard.preset_page.threads
    assert spin.value() == torch.get_num_threads()  # the studio's --threads, or torch's default
    before = torch.get_num_threads()
    want = 2 if before == 1 else 1
    spin.setValue(want)
    train = wizard.train_page
    wizard.next()
    assert f"{want} CPU thread" in train.status.text()
    qtbot.waitUntil(lambda: train.boxes["head"].last_step >= 1, timeout=900_000)
    status = window.training_status
    labels: list[str] = []
    with qtbot.waitSignal(window.sessionOpened, timeout=900_000) as opened:
        job = train.job
        wizard.close()  # closing the wizard's window keeps training, in the background
        assert not wizard.isVisible() and train.job is not None, job.outcome
        assert status.isVisible() and status.job is train.job
        train.job.progress.connect(lambda p: labels.append(status.label.text()))
    assert opened.args[0].subject == subject  # opened when trained
    assert any(f"training {subject.name}: head" in t for t in labels), labels
    assert not status.isVisible()
    assert threads_seen and set(threads_seen) == {want}  # the trainer ran on the chosen threads
    assert torch.get_num_threads() == before  # the studio's own threads are untouched
    assert Subject.open(subject).has_model("torso")


def test_opening_the_wizard_while_training_runs_shows_that_training(
    qtbot, tmp_path, synthetic_subject
) -> None:
    window = make_window(qtbot, tmp_path)
    subject = _untrained_copy(synthetic_subject, tmp_path)
    window.train_subject(subject)
    wizard = window.wizard
    wizard.overrides = {**TINY, "head": dict(TINY["head"], steps=400)}
    wizard.next()
    qtbot.waitUntil(lambda: train_running(wizard), timeout=60_000)
    job = wizard.train_page.job
    qtbot.mouseClick(wizard.train_page.background_button, Qt.MouseButton.LeftButton)
    assert not wizard.isVisible() and window.training_status.isVisible()
    window.new_subject()  # a second training would share the cores: the running one shows
    assert wizard.isVisible() and wizard.currentId() == PAGE_TRAIN
    assert wizard.train_page.job is job and job.running
    with qtbot.waitSignal(job.done, timeout=900_000):
        qtbot.mouseClick(wizard.train_page.cancel_button, Qt.MouseButton.LeftButton)
    assert job.outcome == "cancelled" and not window.training_status.isVisible()
    assert "stopped" in window.statusBar().currentMessage()


def train_running(wizard) -> bool:
    return wizard.training_running()


def test_training_on_a_ray_cluster(qtbot, tmp_path, synthetic_subject, ray_cluster) -> None:
    """With a Ray address on the preset page every part trains in a Ray actor; the page shows
    the progress that comes back and the models land in the subject."""
    settings_at(tmp_path)
    subject = _untrained_copy(synthetic_subject, tmp_path)
    wizard = TrainingWizard(overrides=TINY)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.continue_subject(subject)
    assert wizard.currentId() == PAGE_PRESET and wizard.ray_address() == ""
    wizard.preset_page.ray.setText(" auto ")
    assert wizard.ray_address() == "auto"
    train = wizard.train_page
    with qtbot.waitSignal(train.completeChanged, timeout=900_000):
        wizard.next()
        assert "Ray cluster auto" in train.status.text()
    assert train.isComplete(), train.status.text()
    for part in ("stage1", "head", "torso"):
        assert train.boxes[part].bar.value() == TINY[part]["steps"], part
        assert Subject.open(subject).has_model(part), part
