"""Preprocessing real footage (``May_5s.mp4``): tracking, pose, map, masks, report, cancel."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_data

from talkstudio.core import subject as sj
from talkstudio.core.geometry import OUTER_EYE_DISTANCE, project_head_points
from talkstudio.core.landmarks import STABLE_POINTS
from talkstudio.core.preprocess import preprocess
from talkstudio.core.preprocess.ibug68 import mesh_to_ibug68
from talkstudio.core.preprocess.pose import fit_rigid, intrinsics
from talkstudio.core.preprocess.tracking import FaceMeshTracker, choose_face
from talkstudio.core.subject import Subject, validate_subject


@pytest.fixture(scope="module")
def may_video() -> Path:
    return shared_data("May_5s.mp4")


@pytest.fixture(scope="module")
def may_frames(may_video: Path) -> np.ndarray:
    from talkstudio.core.media import read_video_frames

    return read_video_frames(may_video)  # [125, 512, 512, 3]


@pytest.fixture(scope="module")
def may_subject(may_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """May_5s preprocessed once through the command line."""
    from talkstudio.app.cli import main

    out = tmp_path_factory.mktemp("may") / "May_5s"
    assert main(["preprocess", str(may_video), "--out", str(out)]) == 0
    return out


def test_may_subject_is_valid_and_accurate(may_subject: Path) -> None:
    assert validate_subject(may_subject) == []
    subject = Subject.open(may_subject)
    report = json.loads((may_subject / "preprocess_report.json").read_text())
    assert report["frames"] == 125 and report["frames_tracked"] == 125
    assert subject.tracks.tracked.all()
    assert report["reprojection_px"]["mean"] <= 2.0
    assert report["rigidity"]["mean"] <= 0.02
    assert subject.meta.has_audio and len(subject.load_audio()) == 125 * 640
    assert (may_subject / "contact_sheet.png").stat().st_size > 10_000
    for key in ("pose_jitter", "eye_ratio", "timing_s", "focal_px", "head_angles_deg"):
        assert key in report


def test_report_agrees_with_the_tracks(may_subject: Path) -> None:
    """The report's numbers are recomputed from tracks.npz and K: pose + K + L_world vs lm2d."""
    subject = Subject.open(may_subject)
    tr = subject.tracks
    report = json.loads((may_subject / "preprocess_report.json").read_text())
    proj = project_head_points(subject.meta.K, tr.pose.astype(np.float64), tr.lm_world)
    err = np.linalg.norm(proj - tr.lm2d, axis=-1)  # [T, 68]
    assert err.mean() == pytest.approx(report["reprojection_px"]["mean"], abs=0.01)
    assert err.max() == pytest.approx(report["reprojection_px"]["max"], abs=0.05)
    std = np.linalg.norm(tr.lm_world[:, list(STABLE_POINTS)].std(0), axis=-1)
    assert std.mean() / OUTER_EYE_DISTANCE == pytest.approx(report["rigidity"]["mean"], abs=1e-4)


def test_head_frame_conventions(may_subject: Path) -> None:
    tr = Subject.open(may_subject).tracks
    mean = tr.mean_shape.astype(np.float64)  # [68, 3]
    assert np.linalg.norm(mean[45] - mean[36]) == pytest.approx(OUTER_EYE_DISTANCE, rel=0.02)
    assert np.abs(mean.mean(0)).max() < 0.02  # origin at the centroid
    assert mean[45, 0] > mean[36, 0]  # x toward the subject's left
    assert mean[8, 1] > mean[27, 1]  # y down
    assert mean[30, 2] < mean[0, 2] and mean[30, 2] < mean[16, 2]  # nose tip nearer the camera
    rot = tr.pose[:, :3, :3].astype(np.float64)
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-4)
    assert np.all(tr.pose[:, 2, 3] > 0)  # the head is in front of the camera


def test_eye_ratio_sees_the_blinks(may_subject: Path) -> None:
    r = Subject.open(may_subject).tracks.eye_ratio  # [T, 2]
    assert np.percentile(r, 90, axis=0) == pytest.approx([1.0, 1.0], abs=0.1)
    closed = np.flatnonzero(r.max(1) < 0.4)  # both eyes nearly shut
    assert len(closed) >= 2, "May blinks at least twice in these 5 s"
    assert r.max() < 1.5


def test_masks_have_the_right_regions(may_subject: Path) -> None:
    subject = Subject.open(may_subject)
    lm = subject.tracks.lm2d
    for i in (0, 60, 124):
        m = subject.load_mask(i)
        face, head, torso = m & sj.MASK_FACE > 0, m & sj.MASK_HEAD > 0, m & sj.MASK_TORSO > 0
        assert not np.any(head & torso)
        assert np.all(head[face])
        for bit in (sj.MASK_LEFT_EYE, sj.MASK_RIGHT_EYE, sj.MASK_MOUTH):
            region = m & bit > 0
            assert region.sum() > 30 and (face[region]).mean() > 0.95
        rows = np.arange(m.shape[0])[:, None] * np.ones(m.shape[1])
        assert rows[head].mean() < lm[i, 8, 1] < rows[torso].mean()
        assert 0.15 < head.mean() < 0.6 and torso.mean() > 0.05
        # the subject's left eye (42-47) is on the image's right
        left_cols = np.nonzero(m & sj.MASK_LEFT_EYE)[1]
        right_cols = np.nonzero(m & sj.MASK_RIGHT_EYE)[1]
        assert left_cols.mean() > right_cols.mean()


def _vertex_set(connections: frozenset) -> list[int]:
    return sorted({v for edge in connections for v in edge})


def test_mapped_groups_sit_in_the_right_regions(may_frames: np.ndarray) -> None:
    """The JSON map's 68 points lie where iBUG puts them, checked against MediaPipe's own
    eye and lip contours on real frames."""
    from mediapipe.python.solutions import face_mesh as fm

    with FaceMeshTracker(max_faces=1) as tracker:
        meshes = [tracker(f)[0] for f in may_frames[::12]]
    for mesh in meshes:
        lm = mesh_to_ibug68(mesh)[:, :2]  # [68, 2] pixels
        u, v = lm[:, 0], lm[:, 1]
        for group, conn in (
            (range(36, 42), fm.FACEMESH_RIGHT_EYE),
            (range(42, 48), fm.FACEMESH_LEFT_EYE),
        ):
            ref = mesh[_vertex_set(conn), :2]
            assert np.all(lm[list(group)] >= ref.min(0) - 1.0)
            assert np.all(lm[list(group)] <= ref.max(0) + 1.0)
        lips = mesh[_vertex_set(fm.FACEMESH_LIPS), :2]
        assert np.all(lm[48:68] >= lips.min(0) - 1.0) and np.all(lm[48:68] <= lips.max(0) + 1.0)
        assert u[36:42].mean() < u[42:48].mean()  # subject's right eye on the image's left
        # the rest in the face's upright frame (eye line horizontal): May tilts her head
        eye = lm[45] - lm[36]
        c, s = eye / np.linalg.norm(eye)
        u, v = c * u + s * v, -s * u + c * v
        assert u[36] < u[39] < u[42] < u[45]  # eye corners left to right
        assert v[37] < v[41] and v[38] < v[40] and v[43] < v[47] and v[44] < v[46]  # lids
        assert v[17:22].mean() < v[36:42].min() and v[22:27].mean() < v[42:48].min()  # brows
        assert np.all(np.diff(v[27:31]) > 0) and u[39] < u[27] < u[42]  # nose bridge
        assert np.all(np.diff(u[31:36]) > 0) and v[33] > v[29]  # nostrils
        assert v[30] < v[51] < v[62] < v[66] < v[57]  # nose tip, upper lip, inner lips, lower lip
        assert u[48] == u[48:60].min() and u[54] == u[48:60].max()  # mouth corners
        assert v[8] == v.max()  # chin lowest
        assert np.all(np.diff(v[0:9]) > 0) and np.all(np.diff(v[8:17]) < 0)  # jaw down, then up
        assert u[0] < u[4] < u[8] < u[12] < u[16]
        assert u[0] < u[36] and u[16] > u[45]


def _roll_about_camera_axis(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Degrees of the rotation about the camera's z axis taking ``rot_b`` [T,3,3] to ``rot_a``."""
    rel = rot_a @ rot_b.transpose(0, 2, 1)
    return np.degrees(np.arctan2(rel[:, 1, 0], rel[:, 0, 0]))


def test_roll_of_rotated_frames_is_recovered(may_frames: np.ndarray) -> None:
    """Frames turned in-plane by a known angle about the principal point: the pose's roll
    changes by exactly that angle (within 2 degrees), frame by frame."""
    frames = may_frames[::3]  # 42 frames
    K = intrinsics(512, 614.4)

    def rotations(angle: float) -> np.ndarray:
        warp = cv2.getRotationMatrix2D((255.5, 255.5), angle, 1.0)
        with FaceMeshTracker(max_faces=1) as tracker:
            cands = [
                tracker(cv2.warpAffine(f, warp, (512, 512), borderMode=cv2.BORDER_REPLICATE))
                for f in frames
            ]
        choice = choose_face(cands, 25.0)
        assert choice.found.all()
        return fit_rigid(choice.mesh, K).rot

    base = rotations(0.0)
    for angle in (15.0, -15.0):
        # cv2 turns the picture counter-clockwise for a positive angle, which in the camera
        # frame (y down) is a rotation by -angle about the optical axis.
        roll = _roll_about_camera_axis(rotations(angle), base)
        assert np.abs(roll + angle).max() <= 2.0, (angle, roll)


def test_cancel_leaves_nothing_behind(may_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "cancelled"
    job = preprocess(may_video, out, size=128)
    for record in job:
        if record.stage == "frames" and record.step == 20:
            break
    staging = [p for p in tmp_path.iterdir() if p.name.startswith(".cancelled.")]
    assert staging and any((staging[0] / "frames").iterdir())  # work was under way
    job.close()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
