"""The channels beyond α (core/edit.py, core/blinks.py, core/driving.py): brows, inserted blinks,
the synthesised blinks' rate and head motion, in the landmark track, the model and projects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import face_track, schematic_face

from talkstudio.core import driving, subject
from talkstudio.core.blinks import BLINK_PROFILE, BlinkSchedule, blink_factors
from talkstudio.core.edit import (
    BROW_GAIN,
    NEUTRAL_EDIT,
    EditError,
    Edits,
    TypicalOpening,
    apply_frame_edit,
    frame_edit,
    frame_edit_rows,
)
from talkstudio.core.edit_state import EditModel
from talkstudio.core.landmarks import eye_opening, mouth_opening
from talkstudio.core.project import Project, ProjectError

BROWS = list(range(17, 27))


def _edit(**values: float) -> np.ndarray:
    e = np.array(NEUTRAL_EDIT, dtype=np.float64)
    names = ("left_eye", "right_eye", "mouth", "brows", "synth_blink", "blink", "head_motion")
    for name, v in values.items():
        e[names.index(name)] = v
    return e


def test_brow_raise_moves_only_the_brows_up_by_the_eye_brow_distance() -> None:
    track = face_track(30).astype(np.float64)
    typical = TypicalOpening.of_track(track)
    assert typical.brow_gap is not None and typical.brow_gap < 0  # brows above the eyes (y down)
    moved = apply_frame_edit(track, _edit(brows=0.5), typical)
    delta = moved - track
    others = [i for i in range(68) if i not in BROWS]
    assert np.abs(delta[:, others]).max() == 0.0
    assert np.abs(delta[..., [0, 2]]).max() == 0.0  # along the vertical axis only
    np.testing.assert_allclose(delta[:, BROWS, 1], 0.5 * BROW_GAIN * typical.brow_gap)
    lowered = apply_frame_edit(track, _edit(brows=-1.0), typical)
    assert np.all(lowered[:, BROWS, 1] > track[:, BROWS, 1])  # towards the eyes
    # Without a typical opening the frame's own eye-brow distance scales the move.
    own = apply_frame_edit(track[0], _edit(brows=1.0))
    gap = track[0, BROWS, 1].mean() - track[0, 36:48, 1].mean()
    np.testing.assert_allclose(own[BROWS, 1] - track[0, BROWS, 1], BROW_GAIN * gap)


def test_inserted_blink_closes_both_eyes_at_its_frame_only() -> None:
    n = 60
    track = np.repeat(schematic_face(0.1, 0.1)[None], n, axis=0)
    edits = Edits()
    edits.blink.set(30, 1.0)
    table = edits.frame_edits(n)
    moved = apply_frame_edit(track, table)
    for left in (True, False):
        opening = eye_opening(moved, left)
        assert opening[30] == pytest.approx(0.0, abs=1e-9)
        assert 0 < opening[29] < opening[27] and 0 < opening[32] < opening[34]
        np.testing.assert_allclose(opening[:28], eye_opening(track[:28], left))
        np.testing.assert_allclose(opening[34:], eye_opening(track[34:], left))
    eyes = list(range(36, 48))
    others = [i for i in range(68) if i not in eyes]
    np.testing.assert_array_equal(moved[:, others], track[:, others])
    # The blink closes the eyes whatever α1 and α2 ask for; its depth scales the closure.
    wide = apply_frame_edit(track[30], _edit(left_eye=2.0, right_eye=2.0, blink=0.0))
    assert eye_opening(wide, True) == pytest.approx(0.0, abs=1e-9)
    edits.blink.set(30, 0.5)
    half = apply_frame_edit(track[30], edits.frame_edits(n)[30])
    assert eye_opening(half, True) == pytest.approx(0.5 * eye_opening(track[30], True))


def test_blink_rate_sets_how_many_blinks_are_synthesised() -> None:
    count = 25 * 120  # two minutes

    def blinks(factors: np.ndarray) -> int:
        closed = factors == 0.0
        return int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])

    assert blinks(blink_factors(count, rate=0.0)) == 0
    assert 2 * 8 <= blinks(blink_factors(count, rate=10.0)) <= 2 * 12
    assert 2 * 27 <= blinks(blink_factors(count, rate=30.0)) <= 2 * 33
    assert set(np.unique(blink_factors(count, rate=10.0))) <= {1.0, *BLINK_PROFILE}
    # The automatic rate is the authors' schedule, and only where the track synthesises.
    np.testing.assert_array_equal(BlinkSchedule(auto=True).factors(count), blink_factors(count))
    np.testing.assert_array_equal(BlinkSchedule(auto=False).factors(count), np.ones(count))
    assert blinks(BlinkSchedule(auto=False).factors(count, 12.0)) > 0
    with pytest.raises(EditError, match="blinks per minute"):
        Edits.from_json({"blink_rate": -1})


def test_driving_track_blinks_at_the_chosen_rate(tiny_subject: Path) -> None:
    tracks = subject.Subject.open(tiny_subject).tracks
    mouth = np.zeros((300, 37, 3), np.float32)
    track = driving.build_driving_track(tracks, range(0, 10), mouth)
    assert track.blinks.auto and track.unblinked is not None
    auto = frame_edit(NEUTRAL_EDIT)
    for f in (0, 57, 120):  # -1: the track as built, automatic blinks included
        np.testing.assert_allclose(track.landmarks_at(f, auto), track.lm_world[f], atol=1e-6)
    edits = Edits(blink_rate=0.0)
    table = edits.frame_edits(300, track.blinks)
    none = np.stack([track.landmarks_at(f, frame_edit(table[f])) for f in range(300)])
    np.testing.assert_allclose(none, track.unblinked, atol=1e-6)
    blinking = blink_factors(300) < 1.0  # where the automatic blinks move the lids ...
    moved = np.abs(track.lm_world - track.unblinked).max(axis=(1, 2)) > 1e-6
    assert moved.any() and not (moved & ~blinking).any()  # ... and nowhere else
    twelve = Edits(blink_rate=12.0).frame_edits(300, track.blinks)[:, 4]
    np.testing.assert_array_equal(twelve, blink_factors(300, rate=12.0))
    # A span of frames edited at once equals the frames edited one by one.
    for edit in (auto, _edit(left_eye=0.4, mouth=1.8, brows=0.5, synth_blink=0.6, blink=0.3)):
        span = track.landmarks_span(50, 90, frame_edit(edit))
        one_by_one = np.stack([track.landmarks_at(f, frame_edit(edit)) for f in range(50, 90)])
        np.testing.assert_allclose(span, one_by_one, atol=1e-6)


def test_head_motion_scales_the_pose_about_its_mean() -> None:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(1)
    n = 40
    pose = np.tile(np.eye(4), (n, 1, 1))
    pose[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.1, (n, 3))).as_matrix()
    pose[:, :3, 3] = rng.normal(0, 0.05, (n, 3)) + np.array([0.0, 0.0, 3.0])
    lm = face_track(n)
    track = driving.DrivingTrack(lm, pose, np.ones((n, 2)), np.arange(n))
    still = np.stack([track.pose_at(f, 0.0) for f in range(n)])
    np.testing.assert_allclose(still, still[0:1].repeat(n, 0), atol=1e-12)  # a constant pose
    np.testing.assert_allclose(still[0], track.mean_pose())
    np.testing.assert_allclose(track.pose_at(7, 1.0), pose[7])
    mean = track.mean_pose()
    for f in (3, 11):
        one = Rotation.from_matrix(mean[:3, :3].T @ pose[f, :3, :3]).magnitude()
        two = track.pose_at(f, 2.0)
        assert Rotation.from_matrix(mean[:3, :3].T @ two[:3, :3]).magnitude() == pytest.approx(
            2 * one
        )
        np.testing.assert_allclose(two[:3, 3] - mean[:3, 3], 2 * (pose[f, :3, 3] - mean[:3, 3]))
    # Head motion moves the pose, never the head-frame landmarks.
    np.testing.assert_array_equal(
        track.landmarks_at(5, frame_edit(_edit(head_motion=0.0))), track.lm_world[5]
    )


def test_model_channels_undo_redo_with_named_steps() -> None:
    model = EditModel()
    track = face_track(80)
    model.set_track(track, TypicalOpening.of_track(track), BlinkSchedule(auto=False))
    history = model.history
    model.set_frame(10)
    model.set_value("brows", 0.6)
    model.insert_blink(40)
    model.set_keyframe("head_motion", 0, 0.0)
    model.set_blink_rate(15.0)
    assert history.texts() == [  # type: ignore[attr-defined]
        "Set brows to 0.60 at frame 10",
        "Insert blink at frame 40",
        "Set head motion to 0.00 at frame 0",
        "Set blink rate to 15/min",
    ]
    assert model.frame_edit()[3] == pytest.approx(0.6) and model.frame_edit()[6] == 0.0
    assert model.frame_edit(40)[5] == 0.0  # closed at the blink
    landmarks = model.edited_landmarks(40)
    assert landmarks is not None and eye_opening(landmarks, True) == pytest.approx(0, abs=1e-9)
    for _ in range(4):
        history.undo()  # type: ignore[attr-defined]
    assert model.edits.blink_rate is None and not model.edits.blink.keys
    assert model.frame_edit() == frame_edit(NEUTRAL_EDIT)
    for _ in range(4):
        history.redo()  # type: ignore[attr-defined]
    assert model.edits.blink_rate == 15.0 and model.keyframes("blink") == [(40, 1.0)]
    with pytest.raises(EditError, match="between -1 and 1"):
        model.set_value("brows", 1.5)
    with pytest.raises(EditError, match="blinks per minute"):
        model.set_blink_rate(500)


def test_brows_leave_the_mouth_and_eyes_alone_in_the_model() -> None:
    model = EditModel()
    track = face_track(20)
    model.set_track(track)
    model.set_value("brows", 1.0)
    edited = model.edited_landmarks()
    assert edited is not None
    assert mouth_opening(edited) == pytest.approx(mouth_opening(track[0]))
    others = [i for i in range(68) if i not in BROWS]
    np.testing.assert_array_equal(edited[others], track[0, others])


def test_project_with_channels_saves_and_reopens(tmp_path: Path) -> None:
    edits = Edits.constant(mouth=1.4)
    edits.brows.set(5, -0.5)
    edits.brows.set(25, 0.75)
    edits.blink.set(12, 1.0)
    edits.head_motion.set(0, 0.0)
    edits.blink_rate = 20.0
    path = Project(subject=tmp_path / "subj", edits=edits).save(tmp_path / "p")
    assert json.loads(path.read_text())["version"] == 2
    again = Project.load(path).edits
    assert again.to_json() == edits.to_json()
    np.testing.assert_array_equal(again.frame_edits(40), edits.frame_edits(40))


def test_older_project_without_channels_opens_unedited(tmp_path: Path) -> None:
    old = tmp_path / "old.talkproj"
    old.write_text(
        json.dumps(
            {
                "format": "talkstudio.project",
                "version": 1,
                "subject": "subj",
                "audio": None,
                "keyframes": {"left_eye": [], "right_eye": [[3, 0.5]], "mouth": []},
                "export": {"size": 128},
            }
        )
    )
    edits = Project.load(old).edits
    assert edits.right_eye.keys == {3: 0.5} and edits.blink_rate is None
    table = edits.frame_edits(10)
    np.testing.assert_array_equal(table[:, 3:], np.tile(NEUTRAL_EDIT[3:], (10, 1)))
    bad = tmp_path / "bad.talkproj"
    data = dict(format="talkstudio.project", version=2, subject=".")
    bad.write_text(json.dumps({**data, "keyframes": {"head_motion": [[0, 5]]}}))
    with pytest.raises(ProjectError, match="head motion must be between 0 and 2"):
        Project.load(bad)


def test_frame_edit_rows_equal_frame_edit_row_by_row() -> None:
    edits = Edits.constant(mouth=1.23456789)
    edits.brows.set(3, -0.333333)
    edits.brows.set(40, 0.777777)
    edits.blink.set(20, 0.6)
    edits.head_motion.set(10, 1.5)
    table = edits.frame_edits(60, BlinkSchedule(auto=True))
    edits.blink_rate = 30.0
    table = np.vstack([table, edits.frame_edits(60, BlinkSchedule(auto=True))])
    assert frame_edit_rows(table) == [frame_edit(row) for row in table]
    table[7, 3] = 1.5
    with pytest.raises(EditError, match="brows must be between -1 and 1"):
        frame_edit_rows(table)
