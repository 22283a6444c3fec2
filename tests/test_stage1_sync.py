"""The footage's sound against its picture (core/stage1/sync.py): measuring the offset, moving
the sound back in line, and stage-1 training on the moved sound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _stage1_helpers import rest_face, speech_like
from conftest import write_subject

from talkstudio.core.landmarks import STAGE1_POINTS
from talkstudio.core.progress import run_job
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.infer import load_stage1
from talkstudio.core.stage1.linear_prior import LinearPrior
from talkstudio.core.stage1.metrics import validation_audio
from talkstudio.core.stage1.prior import SpeakerNorm, prior_dir
from talkstudio.core.stage1.sync import MIN_SHIFT, measure_offset, shift_audio, subject_offset
from talkstudio.core.stage1.train import train_stage1
from talkstudio.core.subject import Subject
from talkstudio.core.timing import SAMPLES_PER_FRAME

P37 = list(STAGE1_POINTS)


def test_shift_audio_moves_late_sound_earlier_and_keeps_the_length() -> None:
    a = np.arange(1, 10 * SAMPLES_PER_FRAME + 1, dtype=np.float32)
    late = shift_audio(a, 2.0)  # the sound was 2 frames late: it comes 1280 samples earlier
    assert len(late) == len(a)
    np.testing.assert_array_equal(late[: -2 * SAMPLES_PER_FRAME], a[2 * SAMPLES_PER_FRAME :])
    np.testing.assert_array_equal(late[-2 * SAMPLES_PER_FRAME :], 0.0)
    early = shift_audio(a, -0.5)  # half a frame early: 320 samples later, silence first
    np.testing.assert_array_equal(early[:320], 0.0)
    np.testing.assert_array_equal(early[320:], a[:-320])
    np.testing.assert_array_equal(shift_audio(a, 0.0), a)
    np.testing.assert_array_equal(shift_audio(a, 50.0), 0.0)  # past the end: all silence


@pytest.fixture(scope="module")
def linear() -> LinearPrior:
    lin = LinearPrior.load(prior_dir())
    if lin is None:
        pytest.skip("the shipped prior has no linear part")
    return lin


def _face_following(audio: np.ndarray, frames: int, linear: LinearPrior) -> np.ndarray:
    """68 points [T, 68, 3] whose 37 stage-1 points move as the linear prior says for
    ``audio``, at three times the average speaker's size."""
    face = rest_face()
    norm = SpeakerNorm(face[P37].astype(np.float32), 0.6)
    lm = np.repeat(face[None], frames, 0)
    lm[:, P37] = norm.denormalise(3.0 * linear.displacements(audio, frames))
    return lm


@pytest.mark.parametrize("late", [3.0, -2.0, 1.5])
def test_the_offset_of_sound_moved_against_its_picture_is_measured(
    linear: LinearPrior, late: float
) -> None:
    audio, _ = speech_like(9.0, np.random.default_rng(4))
    frames = len(audio) // SAMPLES_PER_FRAME
    lm = _face_following(audio, frames, linear)
    tracked = np.ones(frames, bool)
    tracked[40:60] = False  # a cutaway: left out
    in_line = measure_offset(audio, lm, tracked, linear)
    assert in_line.offset == 0.0 and abs(in_line.estimate) < MIN_SHIFT, in_line
    assert in_line.r_zero > 0.9
    moved = measure_offset(shift_audio(audio, -late), lm, tracked, linear)  # the sound late
    assert moved.offset == pytest.approx(late, abs=0.35), moved
    assert moved.r_best > moved.r_zero
    assert ("ms late" if late > 0 else "ms early") in moved.message()


def test_a_mouth_that_does_not_follow_the_sound_is_not_moved(linear: LinearPrior) -> None:
    audio, _ = speech_like(8.0, np.random.default_rng(5))
    frames = len(audio) // SAMPLES_PER_FRAME
    still = np.repeat(rest_face()[None], frames, 0)
    got = measure_offset(audio, still, np.ones(frames, bool), linear)
    assert got.offset == 0.0 and "does not move" in got.reason
    lm = _face_following(audio, frames, linear)
    few = measure_offset(audio, lm, np.arange(frames) < 12, linear)
    assert few.offset == 0.0 and "too few" in few.reason


def _late_subject(root: Path, linear: LinearPrior, late: float) -> Path:
    audio, _ = speech_like(10.0, np.random.default_rng(7))
    frames = len(audio) // SAMPLES_PER_FRAME
    lm = _face_following(audio, frames, linear)
    pose = np.tile(np.eye(4), (frames, 1, 1))
    pose[:, 2, 3] = 6.0
    blank = np.zeros((32, 32, 3), np.uint8)
    sound = shift_audio(audio, -late)
    return write_subject(
        root, "late", [blank] * frames, np.zeros((32, 32), np.uint8), lm, pose, sound
    )


def test_training_learns_from_the_sound_moved_back_and_records_it(
    tmp_path: Path, linear: LinearPrior
) -> None:
    root = _late_subject(tmp_path / "late", linear, 2.0)
    subject = Subject.open(root)
    assert subject_offset(subject).offset == pytest.approx(2.0, abs=0.35)
    cfg = Stage1Config.from_preset("preview", steps=2, val_every=1, checkpoint_every=2)
    messages = [p.message for p in train_stage1(root, cfg, "cpu", resume=False)]
    assert any("ms late" in m for m in messages), messages[:3]
    meta = json.loads((root / "models" / "stage1" / "config.json").read_text())["meta"]
    assert meta["sync"]["offset_frames"] == pytest.approx(2.0, abs=0.35)
    model = load_stage1(root)
    assert model.sync_offset == pytest.approx(meta["sync"]["offset_frames"])
    # the validation frames are scored against the sound moved back in line
    moved = validation_audio(subject, model.sync_offset)
    start = subject.meta.train_frames * SAMPLES_PER_FRAME
    shift = round(model.sync_offset * SAMPLES_PER_FRAME)
    own = subject.load_audio()
    np.testing.assert_array_equal(moved[:1000], own[start + shift : start + shift + 1000])

    off = cfg.replace(sync_audio=False)
    run_job(train_stage1(root, off, "cpu", resume=False))
    model = load_stage1(root)
    assert model.sync_offset == 0.0
    meta = json.loads((root / "models" / "stage1" / "config.json").read_text())["meta"]
    assert meta["sync"]["reason"] == "not measured"
