"""Opening a partly trained subject in the studio names the next step and offers the wizard."""

from __future__ import annotations

from pathlib import Path

from _app_helpers import MULTIMEDIA_NOISE, make_window
from PySide6.QtWidgets import QMessageBox

from talkstudio.app.wizard import PAGE_PRESET
from talkstudio.core.subject import Subject

pytestmark = MULTIMEDIA_NOISE


def _mark_trained(root: Path, part: str) -> None:
    folder = Subject.open(root).model_dir(part)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "config.json").write_text("{}", "utf-8")


def test_partly_trained_subject_offers_training(qtbot, tmp_path, tiny_subject) -> None:
    _mark_trained(tiny_subject, "stage1")  # stage 1 done: the head is next, not stage 1
    window = make_window(qtbot, tmp_path)
    assert not window.open_subject(tiny_subject)
    box = window.findChild(QMessageBox, "untrainedBox")
    assert box is not None and box.isVisible()
    assert "next step is <b>head</b>" in box.text()
    assert "no head and torso model" in box.text()
    assert window.session.info is None  # nothing was sent to the engine
    train = next(b for b in box.buttons() if b.text() == "Train or resume a subject…")
    train.click()
    wizard = window.wizard
    assert wizard is not None and wizard.isVisible()
    assert wizard.currentId() == PAGE_PRESET and wizard.subject_dir() == tiny_subject
    wizard.reject()


def test_a_subject_without_stage1_names_stage1_first(qtbot, tmp_path, tiny_subject) -> None:
    _mark_trained(tiny_subject, "head")
    window = make_window(qtbot, tmp_path)
    assert not window.open_subject(tiny_subject)
    box = window.findChild(QMessageBox, "untrainedBox")
    assert box is not None and "next step is <b>stage 1</b>" in box.text()
    box.close()
