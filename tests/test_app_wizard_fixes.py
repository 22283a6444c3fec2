"""The wizard's subject-folder field: the proposal is a placeholder, typing starts afresh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _app_helpers import MULTIMEDIA_NOISE, settings_at

from talkstudio.app.wizard import TrainingWizard
from talkstudio.app.wizard_pages import _preset_text, default_subjects_folder
from talkstudio.core.media import encode_mp4

pytestmark = MULTIMEDIA_NOISE


def _video(path: Path) -> Path:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(10)]
    return encode_mp4(path, frames, audio=np.zeros(6400, np.float32))


def test_typing_a_folder_replaces_the_proposal(qtbot, tmp_path) -> None:
    settings_at(tmp_path)  # the PySide6 refcount guard
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    page = wizard.video_page
    with qtbot.waitSignal(page.checkFinished, timeout=60_000):
        page.set_video(_video(tmp_path / "anna_talks.mp4"))
    proposal = default_subjects_folder() / "anna_talks"
    assert page.out_edit.text() == "" and str(proposal) in page.out_edit.placeholderText()
    assert wizard.subject_dir() == proposal

    qtbot.keyClicks(page.out_edit, "anna")  # a bare name goes under the subjects folder
    assert page.out_edit.text() == "anna"
    assert wizard.subject_dir() == default_subjects_folder() / "anna"
    page.out_edit.clear()
    qtbot.keyClicks(page.out_edit, str(tmp_path / "elsewhere"))
    assert wizard.subject_dir() == tmp_path / "elsewhere"
    page.out_edit.setText("~/subjects/anna")
    assert wizard.subject_dir() == Path.home() / "subjects" / "anna"
    page.out_edit.clear()
    assert wizard.subject_dir() == proposal  # empty again: the proposal
    wizard.reject()


def test_preview_preset_says_how_long_it_takes_on_a_cpu() -> None:
    assert "20–35 minutes on a CPU" in _preset_text("preview")


def test_short_training_boxes_keep_their_plots_whole(qtbot, tmp_path) -> None:
    """The wizard on a 700-pixel-high screen (about 600 px for the window): each stage's loss
    plot fits in its box (it was clipped, cutting off the step numbers), and stage 1's
    placeholder says where its validation LMD is."""
    from talkstudio.app.wizard import PAGE_TRAIN
    from talkstudio.app.wizard_train import PLACEHOLDERS

    settings_at(tmp_path)
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    page = wizard.page(PAGE_TRAIN)
    page.start = lambda: None  # the layout only: no training job
    wizard.setStartId(PAGE_TRAIN)
    wizard.resize(1000, 600)
    with qtbot.waitExposed(wizard):
        wizard.show()
    qtbot.wait(50)
    for part, box in page.boxes.items():
        plot = box.plot.geometry()
        assert box.contentsRect().contains(plot), (part, box.contentsRect(), plot)
        assert page.rect().contains(box.geometry()), (part, page.rect(), box.geometry())
    assert "above" in PLACEHOLDERS["stage1"] and "left" not in PLACEHOLDERS["stage1"]
    wizard.reject()


def test_contact_sheet_opens_full_size(qtbot, tmp_path) -> None:
    from PySide6.QtCore import Qt

    settings_at(tmp_path)
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    page = wizard.preprocess_page
    page.resize(700, 420)
    page.show()
    assert not page.view_button.isEnabled()
    sheet = np.zeros((900, 640, 3), np.uint8)
    sheet[::40] = 255  # grid lines, so the picture is not flat
    page.sheet.set_rgb(sheet)
    assert page.view_button.isEnabled()
    qtbot.mouseDClick(page.sheet, Qt.MouseButton.LeftButton)
    window = page.sheet_window
    assert window is not None and window.isVisible()
    qtbot.waitExposed(window)
    # larger than the page's view of it, and at 100 % without fitting
    assert window.fitted.height() > page.sheet.height()
    window.fit_box.setChecked(False)
    assert window.actual.pixmap().size().toTuple() == (640, 900)
    assert window.views.currentIndex() == 1
    window.close()
    qtbot.waitUntil(lambda: page.sheet_window is None)
    page.sheet.clear()
    assert not page.view_button.isEnabled()
    wizard.reject()
