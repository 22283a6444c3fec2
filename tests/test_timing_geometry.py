"""Time mapping and coordinate helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talkstudio.core import geometry, landmarks, timing


@given(st.integers(0, 10**7))
def test_frames_cover_samples(samples: int) -> None:
    n = timing.num_frames(samples)
    assert n * 640 >= samples > (n - 1) * 640 or samples == n == 0


def test_frame_ranges() -> None:
    assert timing.num_frames(16000) == 25
    assert timing.num_frames(16001) == 26
    assert timing.frame_sample_range(3) == (1920, 2560)
    padded = timing.pad_to_frames(np.ones(641, np.float32))
    assert len(padded) == 1280 and padded[641:].sum() == 0


@given(
    st.floats(-0.6, 0.6),
    st.floats(-0.6, 0.6),
    st.floats(-0.6, 0.6),
)
def test_euler_round_trip(pitch: float, yaw: float, roll: float) -> None:
    rot = geometry.rotation_from_euler(pitch, yaw, roll)
    np.testing.assert_allclose(geometry.euler_from_rotation(rot), (pitch, yaw, roll), atol=1e-9)
    assert geometry.rotation_angle_deg(rot, rot) == pytest.approx(0.0, abs=1e-5)


def test_pose_inverse_and_projection() -> None:
    pose = np.eye(4)
    pose[:3, :3] = geometry.rotation_from_euler(0.1, -0.2, 0.05)
    pose[:3, 3] = [0.1, -0.2, 6.0]
    pts = np.random.default_rng(0).normal(size=(68, 3))
    back = geometry.transform_points(
        geometry.invert_pose(pose), geometry.transform_points(pose, pts)
    )
    np.testing.assert_allclose(back, pts, atol=1e-12)
    K = geometry.default_intrinsics(512)
    # A point on the optical axis lands on the principal point (the image centre, 256, 256).
    np.testing.assert_allclose(geometry.project(K, np.array([[0.0, 0.0, 5.0]])), [[256.0, 256.0]])
    K2 = geometry.scale_intrinsics(K, 512, 128)
    uv = geometry.project_head_points(K, pose, pts)
    np.testing.assert_allclose(geometry.project_head_points(K2, pose, pts), uv / 4, atol=1e-9)


def test_openings() -> None:
    pts = np.zeros((68, 2))
    pts[42], pts[45] = (0, 0), (4, 0)
    pts[43], pts[47], pts[44], pts[46] = (1, -1), (1, 1), (3, -1), (3, 1)
    assert landmarks.eye_opening(pts, left=True) == pytest.approx(0.5)
    pts[48], pts[54], pts[62], pts[66] = (0, 5), (10, 5), (5, 4), (5, 7)
    assert landmarks.mouth_opening(pts) == pytest.approx(0.3)
    assert len(landmarks.STAGE1_POINTS) == 37 and len(landmarks.REFERENCE_POINTS) == 31
