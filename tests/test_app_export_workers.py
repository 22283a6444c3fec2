"""The export dialog's worker count: the studio's export rendered by two local processes gives
the video of an export in one, frame for frame (the built-in demo subject at 64², six frames)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _app_helpers import MULTIMEDIA_NOISE, RENDER_TIMEOUT_MS, make_window, open_and_render

from talkstudio.core import media

pytestmark = MULTIMEDIA_NOISE


@pytest.fixture
def window(qtbot, tmp_path, demo_subject):
    return open_and_render(qtbot, make_window(qtbot, tmp_path), demo_subject)


def _export(qtbot, dialog, out, workers: int) -> np.ndarray:
    dialog.path_edit.setText(str(out))
    dialog.size_spin.setValue(64)
    dialog.start_spin.setValue(20)
    dialog.end_spin.setValue(25)  # frames 20..25, none of them rendered for the preview yet
    dialog.workers_spin.setValue(workers)
    with qtbot.waitSignal(dialog.exported, timeout=RENDER_TIMEOUT_MS * 4):
        job = dialog.start_export()
        assert job is not None
        assert not dialog.workers_spin.isEnabled()  # fixed while the export runs
    qtbot.waitUntil(lambda: dialog.job is None)
    assert dialog.workers_spin.isEnabled()
    return np.stack(media.read_video_frames(out))


def test_two_workers_export_the_same_video(qtbot, window, tmp_path) -> None:
    window.show_export()
    dialog = window.export_dialog
    assert dialog.workers_spin.minimum() == 1
    assert dialog.workers_spin.maximum() == max(1, os.cpu_count() or 1)
    if dialog.workers_spin.maximum() < 2:
        pytest.skip("this machine has one CPU: the dialog offers one worker")
    one = _export(qtbot, dialog, tmp_path / "one.mp4", 1)
    two = _export(qtbot, dialog, tmp_path / "two.mp4", 2)
    assert one.shape == two.shape == (6, 64, 64, 3)
    assert np.array_equal(one, two)
