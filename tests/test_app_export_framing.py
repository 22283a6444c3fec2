"""The export dialog's Framing choice: the source video by default when the subject has a usable
one (the label names its frame size), the square crop only — disabled, the tooltip saying why —
when it has none; the choice reaches the project's export settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _app_helpers import make_window

from talkstudio.core.framing import Framing
from talkstudio.core.paste_back import crop_affine
from talkstudio.core.project import ExportSettings


def dialog_of(qtbot, tmp_path: Path):
    from talkstudio.app.export_dialog import ExportDialog

    window = make_window(qtbot, tmp_path)
    dialog = ExportDialog(window.client, window.state, window)
    qtbot.addWidget(dialog)
    return dialog


def source_framing(folder: Path) -> Framing:
    """A 1280x720 source video's framing (the file need not exist for the dialog)."""
    return Framing(
        "source", folder / "talk.mp4", 1280, 720, np.asarray(crop_affine(400, 80, 480, 512))
    )


def test_a_subject_with_its_video_exports_in_the_source_framing(qtbot, tmp_path) -> None:
    dialog = dialog_of(qtbot, tmp_path)
    source = source_framing(tmp_path)
    settings = ExportSettings()
    dialog.prepare(settings, tmp_path / "out.mp4", source)
    assert dialog.framing_combo.isEnabled() and dialog.framing == "source"
    assert "1280x720" in dialog.range_label.text()
    assert "talk.mp4" in dialog.framing_combo.toolTip()
    assert dialog.framing_note.isHidden()  # nothing to warn about
    dialog.framing_combo.setCurrentIndex(dialog.framing_combo.findData("crop"))
    assert dialog.framing == "crop" and "1280x720" not in dialog.range_label.text()
    settings.framing = "crop"  # the project remembers the last choice
    dialog.prepare(settings, tmp_path / "out.mp4", source)
    assert dialog.framing == "crop"


def test_without_a_usable_video_only_the_crop_is_offered(qtbot, tmp_path) -> None:
    dialog = dialog_of(qtbot, tmp_path)
    missing = Framing("crop", notice="the subject's source video /x/talk.mp4 is missing; ...")
    settings = ExportSettings(framing="source")
    dialog.prepare(settings, tmp_path / "out.mp4", missing)
    assert not dialog.framing_combo.isEnabled() and dialog.framing == "crop"
    assert "is missing" in dialog.framing_combo.toolTip()
    assert not dialog.framing_note.isHidden() and "is missing" in dialog.framing_note.text()
    dialog.prepare(ExportSettings(), tmp_path / "out.mp4", None)  # a synthetic subject
    assert not dialog.framing_combo.isEnabled() and dialog.framing == "crop"
    assert "no source video" in dialog.framing_combo.toolTip()
    assert dialog.framing_note.isHidden()


def test_a_source_framed_export_can_be_made_smaller(qtbot, tmp_path) -> None:
    dialog = dialog_of(qtbot, tmp_path)
    source = source_framing(tmp_path)
    settings = ExportSettings()
    dialog.prepare(settings, tmp_path / "out.mp4", source)
    combo = dialog.height_combo
    assert not combo.isHidden() and dialog.out_height is None  # the source's own by default
    heights = [combo.itemText(i) for i in range(combo.count())]
    assert heights == [
        "720 (the source's, 1280x720)",
        "540 (960x540)",
        "480 (854x480)",
        "360 (640x360)",
    ]
    combo.setCurrentIndex(combo.findData(480))
    assert dialog.out_height == 480 and "854x480" in dialog.range_label.text()
    settings.height = 480  # what start_export remembers in the project
    dialog.prepare(settings, tmp_path / "out.mp4", source)
    assert dialog.out_height == 480
    dialog.framing_combo.setCurrentIndex(dialog.framing_combo.findData("crop"))
    assert combo.isHidden() and dialog.out_height is None  # the crop's size is the Size field
    dialog.prepare(ExportSettings(), tmp_path / "out.mp4", None)  # no source video
    assert combo.isHidden() and combo.count() == 0
