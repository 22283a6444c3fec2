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


def test_what_a_part_said_before_its_first_step_stays_in_the_tool_tip(qtbot) -> None:
    box = StageBox("stage1")
    qtbot.addWidget(box)
    stage = TRAIN_STAGE["stage1"]
    said = "the footage's sound is 52 ms late against its picture"
    for message in (said, "computing audio features", said):
        box.record(Progress(stage, 0, 400, message))
    box.record(Progress(stage, 1, 400, "loss 0.1", {"loss": 0.1}))
    assert box.notes == [said, "computing audio features"]
    assert said in box.eta.toolTip() and "loss 0.1" not in box.eta.toolTip()
    assert "loss 0.1" in box.eta.text()  # the line itself moves on with the steps


def test_cancelling_the_wizards_job_in_stage1_keeps_the_step_and_resume_continues(
    tmp_path,
) -> None:
    """The wizard's Cancel closes its training job (all three trainers in one generator)."""
    import json

    from _stage1_helpers import write_envelope_subject

    from talkstudio.app.wizard_train import training_job

    root = write_envelope_subject(tmp_path / "env", seconds=4.0)
    quick = {"steps": 10, "window": 60, "val_every": 100, "checkpoint_every": 100, "cpu_threads": 1}
    job = training_job(root, "preview", "cpu", {"stage1": quick})
    for p in job:
        if p.stage == TRAIN_STAGE["stage1"] and p.step == 4 and p.losses:
            break
    job.close()  # what JobRunner.cancel does, in the worker thread
    saved = json.loads((root / "models" / "stage1" / "config.json").read_text())
    assert saved["meta"]["step"] == 4
    job = training_job(root, "preview", "cpu", {"stage1": quick})
    first = next(p.step for p in job if p.losses)
    job.close()
    assert first == 5
