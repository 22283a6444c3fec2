"""Stage-1 training: it learns, resumes, refuses bad subjects and checkpoints, and the CLI runs it."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _stage1_helpers import write_envelope_subject

from talkstudio.core.errors import CheckpointError, SubjectError
from talkstudio.core.progress import Progress, run_job
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.infer import load_stage1, predict
from talkstudio.core.stage1.metrics import opening_correlation
from talkstudio.core.stage1.train import train_stage1
from talkstudio.core.subject import Subject

QUICK = {"window": 60, "batch": 2, "lr": 3e-3, "warmup": 5, "rollout_passes": 1, "cpu_threads": 1}
QUICK["init"] = "scratch"  # these tests are about the trainer itself, not the shipped prior


def quick(**overrides) -> Stage1Config:
    return Stage1Config.from_preset("preview", **{**QUICK, **overrides})


def collect(job) -> tuple[list[Progress], object]:
    records: list[Progress] = []
    result = run_job(job, records.append)
    return records, result


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[Progress], object]:
    root = write_envelope_subject(tmp_path_factory.mktemp("stage1") / "env", seconds=8.0)
    records, result = collect(train_stage1(root, quick(steps=70, val_every=35)))
    return root, records, result


def test_training_lowers_the_loss_and_beats_the_mean(trained) -> None:
    root, records, result = trained
    losses = [r.losses["loss"] for r in records if "loss" in r.losses]
    assert len(losses) == 70
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5])
    vals = [r.metrics for r in records if "val_lmd" in r.metrics]
    assert [r.step for r in records if "val_lmd" in r.metrics] == [35, 70]
    assert not any("val_lmd" in r.losses for r in records)  # a score, not a loss term
    s = result.scores
    assert s.frames == 20
    assert s.lmd < 0.6 * s.lmd_baseline, s
    assert s.corr > 0.6, s
    assert vals[-1]["val_lmd"] == pytest.approx(s.lmd)
    saved = json.loads((root / "models/stage1/config.json").read_text())
    assert saved["meta"]["step"] == 70 and saved["config"]["audio_features"] == "mel"
    assert saved["meta"]["validation"]["lmd"] == pytest.approx(s.lmd)


def test_driving_with_a_48k_stereo_file(trained, tmp_path: Path) -> None:
    root, _, _ = trained
    subject = Subject.open(root)
    audio16 = subject.load_audio()
    from scipy.signal import resample_poly

    x48 = resample_poly(audio16, 3, 1)
    sf.write(str(tmp_path / "drive.wav"), np.stack([x48, x48], 1), 48000)
    a = predict(root, tmp_path / "drive.wav")
    b = predict(subject, audio16)
    assert a.shape == b.shape == (-(-len(audio16) // 640), 37, 3)
    corr, ratio = opening_correlation(a, b)
    assert corr > 0.95 and 0.8 < ratio < 1.25


def test_silence_and_a_sub_frame_clip_drive_a_still_closed_mouth(trained) -> None:
    from talkstudio.core.landmarks import mouth_opening
    from talkstudio.core.stage1.metrics import to68

    root, _, _ = trained
    subject = Subject.open(root)
    speech = mouth_opening(to68(predict(subject, subject.load_audio())))
    silent = mouth_opening(to68(predict(subject, np.zeros(2 * 16000, np.float32))))
    assert np.all(np.isfinite(silent)) and len(silent) == 50
    closed, wide = np.percentile(speech, 5), np.percentile(speech, 95)
    assert abs(silent.mean() - closed) < 0.1 * (wide - closed)  # closed, as in its pauses
    assert silent.std() < 0.25 * speech.std()  # and still
    short = predict(subject, np.zeros(300, np.float32))
    assert short.shape == (1, 37, 3)
    np.testing.assert_allclose(short[0], predict(subject, np.zeros(640, np.float32))[0])


def test_cancel_saves_the_step_reached_and_resume_continues_there(tmp_path: Path) -> None:
    root = write_envelope_subject(tmp_path / "env", seconds=4.0)
    cfg = quick(steps=10, checkpoint_every=5, val_every=100)
    job = train_stage1(root, cfg)
    for record in job:
        if record.step == 7:
            break
    job.close()  # cancelled between steps 7 and 8, past the checkpoint of step 5
    state = json.loads((root / "models/stage1/train_state.json").read_text())
    saved = json.loads((root / "models/stage1/config.json").read_text())
    assert state["info"]["step"] == 7 and saved["meta"]["step"] == 7
    at7 = load_stage1(root).state_dict()
    records, result = collect(train_stage1(root, cfg))
    steps = [r.step for r in records if "loss" in r.losses]
    assert steps == [8, 9, 10] and result.steps == 10
    moved = load_stage1(root).state_dict()
    assert any(not np.array_equal(at7[k].numpy(), moved[k].numpy()) for k in at7)
    records, _ = collect(train_stage1(root, cfg, resume=False))
    assert next(r.step for r in records if "loss" in r.losses) == 1
    again = list(train_stage1(root, cfg))  # complete: nothing more to train
    assert again[-1].message == "already trained for 10 steps"
    assert not any(r.losses for r in again)  # no step was trained


def test_checkpoint_of_another_architecture_is_named(tmp_path: Path) -> None:
    root = write_envelope_subject(tmp_path / "env", seconds=4.0)
    run_job(train_stage1(root, quick(steps=2)))
    with pytest.raises(CheckpointError, match=r"fusion 'linear' \(now 'biased_cross_attention'\)"):
        run_job(train_stage1(root, quick(steps=4, fusion="biased_cross_attention")))


def test_subject_without_audio_says_so(tmp_path: Path) -> None:
    root = write_envelope_subject(tmp_path / "mute", seconds=3.0, audio=False)
    with pytest.raises(SubjectError, match=r"cannot train stage 1.*no audio track"):
        run_job(train_stage1(root, quick(steps=2)))


def test_may_sized_subject_trains(tmp_path: Path) -> None:
    """May_5s has 125 frames, 112 for training: shorter than one 200-frame window."""
    root = write_envelope_subject(tmp_path / "may", seconds=5.0)
    assert Subject.open(root).meta.train_frames == 112
    _, result = collect(
        train_stage1(root, Stage1Config.from_preset("preview", steps=4, cpu_threads=1))
    )
    assert result.steps == 4 and result.scores is not None and np.isfinite(result.scores.lmd)


def test_cli_train_stage1(tmp_path: Path, capsys) -> None:
    from talkstudio.app.cli import main

    root = write_envelope_subject(tmp_path / "env", seconds=3.0)
    for steps in ("0", "-5"):  # honoured and refused, never replaced by the preset's 400
        assert main(["train", "stage1", str(root), "--steps", steps, "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert f"stage1 steps must be at least 1, got {steps}" in err
        assert not Subject.open(root).has_model("stage1")  # nothing (untrained) was saved
    assert main(["train", "stage1", str(root), "--steps", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "(3 steps," in out and "mean-landmark baseline" in out and "val_lmd" in out
    assert Subject.open(root).has_model("stage1")
    assert main(["train", "stage1", str(root), "--steps", "3", "--device", "tpu"]) == 1
    assert "unknown device 'tpu'" in capsys.readouterr().err
    mute = write_envelope_subject(tmp_path / "mute", seconds=3.0, audio=False)
    assert main(["train", "stage1", str(mute), "--steps", "3"]) == 1
    assert "no audio track" in capsys.readouterr().err


def test_untrained_model_scores_exactly_the_baseline(tmp_path: Path) -> None:
    from talkstudio.core.stage1.data import Stage1Data
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.stage1.metrics import evaluate
    from talkstudio.core.stage1.model import Stage1Model

    root = write_envelope_subject(tmp_path / "env", seconds=4.0)
    subject = Subject.open(root)
    with pytest.raises(CheckpointError, match="train it first"):
        predict(subject, np.zeros(640, np.float32))
    front_end = AudioFrontEnd(Stage1Config())
    data = Stage1Data.from_subject(subject, front_end)
    model = Stage1Model(Stage1Config(), front_end.in_dim)
    model.set_statistics(**data.statistics())
    s = evaluate(model, subject)
    assert s.lmd == pytest.approx(s.lmd_baseline, abs=1e-5) and s.lmd_baseline > 0.3
    assert s.corr == 0.0 and s.opening_ratio == 0.0


def test_long_untracked_runs_carry_no_loss(tmp_path: Path) -> None:
    """Windows over a run whose landmarks preprocessing held (a title, a cutaway) weigh those
    frames 0 in stage 1's loss; short interpolated gaps and tracked frames weigh 1."""
    from talkstudio.core.stage1.data import Stage1Data
    from talkstudio.core.stage1.features import AudioFrontEnd
    from talkstudio.core.subject import LONGEST_FILLED_GAP

    root = write_envelope_subject(tmp_path / "env", seconds=4.0)
    subject = Subject.open(root)
    subject.tracks.tracked[:] = True
    long_run = range(10, 10 + LONGEST_FILLED_GAP + 1)
    subject.tracks.tracked[list(long_run)] = False
    subject.tracks.tracked[40:43] = False  # short, interpolated: kept
    data = Stage1Data.from_subject(subject, AudioFrontEnd(Stage1Config()))
    assert np.flatnonzero(data.weight == 0).tolist() == list(long_run)
    rng = np.random.default_rng(0)
    feats, target, _, weight = data.sample(4, 30, rng)
    assert weight.shape == target.shape[:2] and feats.shape[:2] == weight.shape
    full = data.sample(1, data.frames, rng)[3][0]  # the whole split as one window
    np.testing.assert_array_equal(full.numpy(), data.weight)


def test_voice_copies_lie_beside_the_clean_audio_and_windows_stay_inside_one(
    tmp_path: Path,
) -> None:
    """``voice_copies`` adds perturbed copies of the training audio, each with its landmark
    track resampled to its speed; a window never spans two copies, and its first frame's input
    is the true previous frame of its own copy (zeros at a copy's start)."""
    from talkstudio.core.stage1.augment import SPEEDS
    from talkstudio.core.stage1.data import Stage1Data
    from talkstudio.core.stage1.features import AudioFrontEnd

    root = write_envelope_subject(tmp_path / "env", seconds=6.0)
    subject = Subject.open(root)
    front = AudioFrontEnd(Stage1Config())
    clean = Stage1Data.from_subject(subject, front)
    data = Stage1Data.from_subject(subject, front, clean.norm, voice_copies=3, seed=1)
    n = clean.frames
    bounds = data.segments
    assert bounds[0] == 0 and bounds[1] == n and len(bounds) == 5 and bounds[-1] == data.frames
    np.testing.assert_array_equal(data.disp[:n], clean.disp)  # the clean copy comes first
    np.testing.assert_allclose(data.feats[:n], clean.feats)
    for a, b in itertools.pairwise(bounds[1:]):
        length = b - a
        assert 0.8 * n <= length <= 1.2 * n  # 20/23 … 20/17 times as long
        speed = min(SPEEDS, key=lambda v: abs(v - n / length))  # the copy's 20 / k
        assert data.disp[a:b].min() >= clean.disp.min() - 1e-5  # resampled, not invented
        assert data.disp[a:b].max() <= clean.disp.max() + 1e-5
        mid = (a + b) // 2  # the copy's frame i holds the clean track at i × speed
        pos = (mid - a) * speed
        lo = int(np.floor(pos))
        want = clean.disp[lo] + (pos - lo) * (clean.disp[min(lo + 1, n - 1)] - clean.disp[lo])
        np.testing.assert_allclose(data.disp[mid], want, atol=1e-5)
        assert not np.allclose(data.feats[a : a + 20], clean.feats[:20], atol=1e-3)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        feats, target, prev, _ = data.sample(4, 40, rng)
        for k in range(4):  # locate each window by its audio rows and check its place
            row = feats[k].numpy()
            start = next(
                i for i in range(data.frames - 39) if np.array_equal(data.feats[i : i + 40], row)
            )
            np.testing.assert_array_equal(target[k].numpy(), data.disp[start : start + 40])
            clip = int(np.searchsorted(bounds, start, side="right")) - 1
            assert start + 40 <= bounds[clip + 1]
            seen.add(clip)
            first = prev[k, 0].numpy()
            if start == bounds[clip]:
                np.testing.assert_array_equal(first, np.zeros_like(first))
            else:
                np.testing.assert_array_equal(first, data.disp[start - 1])
    assert seen == {0, 1, 2, 3}
    with pytest.raises(Exception, match="voice_copies"):
        quick(voice_copies=-1)


@pytest.mark.slow
def test_rendered_synthetic_subject(tmp_path: Path) -> None:
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    cfg = SynthConfig(seed=3, seconds=8.0, size=32, supersample=1)
    root = write_synthetic(tmp_path, cfg, video=False).subject_dir
    records, result = collect(train_stage1(root, quick(steps=80, val_every=80)))
    losses = [r.losses["loss"] for r in records if "loss" in r.losses]
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5])
    assert result.scores.lmd < 0.5 * result.scores.lmd_baseline, result.scores


def test_cli_ctrl_c_saves_the_step_reached_and_the_command_continues(tmp_path: Path) -> None:
    root = write_envelope_subject(tmp_path / "env", seconds=4.0)
    code = "import sys; from talkstudio.app.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["train", "stage1", str(root), "--steps", "400", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the first progress line past step 0: press Ctrl+C
        shown = re.match(r"\[train stage1\] (\d+)/400", line)
        if shown and int(shown.group(1)) > 0:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    cancelled = re.search(r"cancelled at step (\d+); what was learnt is saved", err)
    assert cancelled, err
    step = int(cancelled.group(1))
    assert 0 < step < 400
    saved = json.loads((root / "models/stage1/config.json").read_text())
    assert saved["meta"]["step"] == step
    cfg = Stage1Config.from_preset("preview", steps=step + 2)
    records, _ = collect(train_stage1(root, cfg))
    assert [r.step for r in records if r.losses] == [step + 1, step + 2]
