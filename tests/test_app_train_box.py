"""The wizard's per-part training box plots the loss terms and shows the metrics as text."""

from __future__ import annotations

from talkstudio.app.wizard_train import StageBox
from talkstudio.core.presets import TRAIN_STAGE
from talkstudio.core.progress import Progress


def test_losses_are_plotted_and_metrics_are_written(qtbot) -> None:
    stage1, head = StageBox("stage1"), StageBox("head")
    qtbot.addWidget(stage1)
    qtbot.addWidget(head)
    scores = {"val_lmd": 1.234, "val_lmd_baseline": 3.5, "val_corr": 0.8}
    stage1.record(Progress(TRAIN_STAGE["stage1"], 10, 100, "step", {"loss": 0.5}, metrics=scores))
    stage1.record(Progress(TRAIN_STAGE["stage1"], 11, 100, "step", {"loss": 0.4}))
    assert stage1.history.names() == ["loss"]
    steps, values = stage1.history.series("loss")
    assert list(steps) == [10, 11] and list(values) == [0.5, 0.4]
    assert "val LMD 1.23 px (mean-face baseline 3.50)" in stage1.eta.text()
    parts = {"loss": 0.2, "smooth_l1": 0.1, "alpha": 0.05}
    counters = {"samples": 4096.0, "occupancy": 0.3}
    head.record(Progress(TRAIN_STAGE["head"], 5, 50, "step", parts, None, counters))
    assert sorted(head.history.names()) == sorted(parts)  # no counters on the log-scale plot
    head.record(Progress(TRAIN_STAGE["torso"], 6, 50, "step", {"other": 1.0}))
    assert "other" not in head.history.names()  # another part's records are not this box's
