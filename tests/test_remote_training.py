"""Training on a Ray cluster (core/remote_training.py): records and checkpoints come back into
the subject, a lost worker resumes from the last checkpoint, cancel saves, no Ray is a clear
error. A local cluster with two CPUs is started in the test; stage 1 from scratch on a small
envelope subject keeps it short."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
from _stage1_helpers import write_envelope_subject

from talkstudio.core.errors import TalkstudioError
from talkstudio.core.progress import run_job
from talkstudio.core.remote_training import (
    RayTraining,
    checkpoint_step,
    pack_folder,
    unpack_folder,
    write_checkpoint,
)
from talkstudio.core.stage1.config import Stage1Config

STEPS = 30
QUICK = {"window": 40, "batch": 2, "warmup": 2, "rollout_passes": 1, "cpu_threads": 1}


def quick(steps: int = STEPS, every: int = 5) -> Stage1Config:
    return Stage1Config.from_preset(
        "preview", init="scratch", steps=steps, checkpoint_every=every, val_every=steps, **QUICK
    )


def _subject(tmp_path: Path) -> Path:
    return write_envelope_subject(tmp_path / "env", seconds=4.0)


def test_pack_and_checkpoint_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    (src / ".c.part").write_text("being written")
    unpack_folder(pack_folder(src), tmp_path / "all")
    assert (tmp_path / "all" / "sub" / "b.txt").read_text() == "b"
    assert not (tmp_path / "all" / ".c.part").exists()
    unpack_folder(pack_folder(src, top_only=True), tmp_path / "top")
    assert sorted(p.name for p in (tmp_path / "top").iterdir()) == ["a.txt"]

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"meta": {"step": 5}}))
    (model / "train_state.json").write_text(json.dumps({"info": {"step": 5}}))
    assert checkpoint_step(model) == 5
    (model / "train_state.json").write_text(json.dumps({"info": {"step": 4}}))
    assert checkpoint_step(model) is None  # written half-way: not a checkpoint yet

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("nested/config.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(TalkstudioError, match="holds folders"):
        write_checkpoint(buf.getvalue(), tmp_path / "out")


def test_training_on_ray_brings_records_and_checkpoint_back(ray_cluster, tmp_path: Path) -> None:
    root = _subject(tmp_path)
    run = RayTraining("stage1", root, quick(), "cpu", "auto")
    records = []
    result = run_job(run.job(), records.append)
    losses = [r for r in records if "loss" in r.losses]
    assert [r.step for r in losses] == list(range(1, STEPS + 1))
    model_dir = root / "models" / "stage1"
    assert result.model_dir == model_dir and result.steps == STEPS
    assert checkpoint_step(model_dir) == STEPS
    assert (model_dir / "model.safetensors").stat().st_size > 10_000
    assert run.actor is None and run.restarts == 0


def test_lost_worker_resumes_from_the_last_checkpoint(ray_cluster, tmp_path: Path) -> None:
    root = _subject(tmp_path)
    model_dir = root / "models" / "stage1"
    run = RayTraining("stage1", root, quick(), "cpu", "auto")
    job = run.job()
    before = []
    for record in job:
        before.append(record)
        if (checkpoint_step(model_dir) or 0) >= 5:
            break
    saved = checkpoint_step(model_dir)
    assert saved is not None and saved < STEPS
    ray_cluster.kill(run.actor)  # the worker is lost mid-run
    after = []
    result = run_job(job, after.append)
    restart = [r for r in after if "starting again" in r.message]
    assert len(restart) == 1 and run.restarts == 1
    resumed = [r.step for r in after[after.index(restart[0]) + 1 :] if "loss" in r.losses]
    assert resumed[0] > saved and resumed[-1] == STEPS  # continued, not from step 1
    assert result.steps == STEPS and checkpoint_step(model_dir) == STEPS


def test_cancel_saves_the_step_reached(ray_cluster, tmp_path: Path) -> None:
    root = _subject(tmp_path)
    model_dir = root / "models" / "stage1"
    run = RayTraining("stage1", root, quick(steps=100_000, every=50_000), "cpu", "auto")
    job = run.job()
    last = 0
    for record in job:
        last = max(last, record.step)
        if last >= 7:
            break
    job.close()
    saved = checkpoint_step(model_dir)
    # no periodic checkpoint is due: this one is the step the remote trainer reached when it
    # was closed (it runs ahead of the records that came back), saved there and written back
    assert saved is not None and saved >= last and saved < 100_000
    assert run.actor is None


def test_missing_ray_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    root = _subject(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(TalkstudioError, match=r"training on a Ray cluster needs Ray"):
        RayTraining("stage1", root, quick(), "cpu", "auto")
    with pytest.raises(TalkstudioError, match="unknown part"):
        RayTraining("legs", root, quick(), "cpu", "auto")


def test_cli_train_on_the_running_cluster(ray_cluster, tmp_path: Path, capsys) -> None:
    """``talkstudio train stage1 SUBJECT --ray auto`` in a process that already joined a
    cluster: the trainer's lines are printed here and the model lands in the subject."""
    from talkstudio.app.cli import main

    root = _subject(tmp_path)
    args = ["train", "stage1", str(root), "--steps", "4", "--from-scratch", "--ray", "auto"]
    assert main([*args, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "(4 steps," in out and "mean-landmark baseline" in out
    assert checkpoint_step(root / "models" / "stage1") == 4
