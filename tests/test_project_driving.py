"""Project files and the driving track."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkstudio.core import driving, subject
from talkstudio.core.edit import Edits
from talkstudio.core.landmarks import STAGE1_POINTS
from talkstudio.core.project import PROJECT_VERSION, Project, ProjectError


def test_project_round_trip_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "subj").mkdir()
    edits = Edits.constant(mouth=2.0)
    edits.left_eye.set(10, 0.0)
    proj = Project(subject=tmp_path / "subj", audio=tmp_path / "speech.wav", edits=edits)
    path = proj.save(tmp_path / "work" / "edit")
    assert path.name == "edit.talkproj"
    raw = json.loads(path.read_text())
    assert raw["subject"] == "../subj" and raw["version"] == PROJECT_VERSION == 2
    again = Project.load(path)
    assert again.subject == (tmp_path / "subj").resolve()
    assert again.audio == (tmp_path / "speech.wav").resolve()
    np.testing.assert_allclose(again.edits.alphas(20), edits.alphas(20))


def test_project_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        Project.load(tmp_path / "none.talkproj")
    bad = tmp_path / "new.talkproj"
    bad.write_text(json.dumps({"format": "talkstudio.project", "version": 99, "subject": "."}))
    with pytest.raises(ProjectError, match="newer Talkstudio"):
        Project.load(bad)
    bad.write_text(
        json.dumps(
            {
                "format": "talkstudio.project",
                "version": 1,
                "subject": ".",
                "keyframes": {"mouth": [[0, 3.0]]},
            }
        )
    )
    with pytest.raises(ProjectError, match="between 0 and 2"):
        Project.load(bad)


def test_pingpong() -> None:
    assert driving.pingpong_indices(9, 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert driving.pingpong_indices(3, 1).tolist() == [0, 0, 0]


def test_blinks_synthesised_when_reference_has_none(tiny_subject: Path) -> None:
    tracks = subject.Subject.open(tiny_subject).tracks
    mouth = np.zeros((200, 37, 3), np.float32)
    track = driving.build_driving_track(tracks, range(0, 10), mouth)
    assert track.num_frames == 200
    np.testing.assert_array_equal(track.lm_world[:, list(STAGE1_POINTS)], mouth)
    # reference frames replayed back and forth
    assert track.ref_index[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7]
    closed = track.eye_ratio.mean(axis=1) < 0.05
    assert 2 <= driving.count_blinks(track.eye_ratio) <= 4 and closed.any()
    still = driving.build_driving_track(tracks, range(0, 10), mouth, still_head=True)
    assert np.all(still.pose == still.pose[0])


def test_reference_blinks_are_kept(tiny_subject: Path) -> None:
    tracks = subject.Subject.open(tiny_subject).tracks
    tracks.eye_ratio[:] = 1.0
    tracks.eye_ratio[3:6] = 0.1  # one blink in 10 frames: a high rate, no synthesis
    track = driving.build_driving_track(tracks, range(0, 10), None, count=30)
    np.testing.assert_array_equal(track.eye_ratio, tracks.eye_ratio[track.ref_index])


def test_driven_reference_leaves_out_long_untracked_runs(tiny_subject: Path) -> None:
    """Frames whose pose preprocessing held over a long gap (a title before the speaker) are
    not borrowed by a driven track; short interpolated gaps are."""
    assert subject.LONGEST_FILLED_GAP == 12  # 0.5 s, preprocessing's longest silent fill
    tracks = subject.Subject.open(tiny_subject).tracks
    n, gap = len(tracks.tracked), 3
    tracks.tracked[:] = True
    tracks.tracked[: gap + 1] = False  # the clip starts without a tracked face
    tracks.tracked[gap + 3 : gap + 5] = False  # a short gap, interpolated
    ref = subject.steady_frames(tracks.tracked, range(n), gap)
    assert ref.tolist() == list(range(gap + 1, n))
    mouth = np.zeros((3 * n, 37, 3), np.float32)
    track = driving.build_driving_track(tracks, ref, mouth)
    assert set(track.ref_index.tolist()) == set(range(gap + 1, n))
    # a run of exactly the longest gap stays, at either end; nothing tracked keeps everything
    tracks.tracked[:] = True
    tracks.tracked[1 : 1 + gap] = False
    tracks.tracked[n - gap :] = False
    assert subject.steady_frames(tracks.tracked, range(n), gap).tolist() == list(range(n))
    tracks.tracked[n - gap - 1 :] = False
    assert subject.steady_frames(tracks.tracked, range(n), gap).tolist() == list(range(n - gap - 1))
    tracks.tracked[:] = False
    assert subject.steady_frames(tracks.tracked, range(n), gap).tolist() == list(range(n))


def test_training_leaves_out_long_untracked_runs(tiny_subject: Path) -> None:
    """Head, torso and refiner train on Subject.steady_train_frames: the training split without
    the runs preprocessing filled over more than 0.5 s."""
    subj = subject.Subject.open(tiny_subject)
    train = list(subj.meta.train_range)
    subj.tracks.tracked[:] = True
    assert subj.steady_train_frames() == train
    subj.tracks.tracked[:] = False  # nothing tracked: nothing better to train on
    assert subj.steady_train_frames() == train
    tracked = np.ones(40, bool)
    tracked[5 : 5 + subject.LONGEST_FILLED_GAP + 1] = False
    kept = subject.steady_frames(tracked, range(40)).tolist()
    assert kept == [*range(5), *range(5 + subject.LONGEST_FILLED_GAP + 1, 40)]
