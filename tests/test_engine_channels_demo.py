"""The channels beyond α rendered on the built-in demo subject (shipped weights, small renders):
a brow raise changes the pixels around the brows and not the mouth, a still head renders every
frame from one pose, an inserted blink reaches the render, exports render the channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkstudio.core.edit import NEUTRAL_EDIT, Edits
from talkstudio.core.geometry import project_head_points, scale_intrinsics

SIZE = 64


@pytest.fixture(scope="module")
def engine(demo_subject: Path):
    from talkstudio.core.engine import Engine

    return Engine.open(demo_subject, device="cpu")


def _edit(brows: float = 0.0, blink: float = 1.0, head_motion: float = 1.0) -> tuple:
    e = list(NEUTRAL_EDIT)
    e[3], e[5], e[6] = brows, blink, head_motion
    return tuple(e)


def _box(engine, frame: int, points: list[int], pad: int) -> tuple[slice, slice]:
    """Rows and columns around the projected ``points`` of ``frame`` at SIZE."""
    K = scale_intrinsics(engine.subject.meta.K, engine.subject.meta.size, SIZE)
    uv = project_head_points(K, engine.track.pose[frame], engine.landmarks(frame))[points]
    x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(uv.max(0)).astype(int) + pad
    return slice(y0, y1), slice(x0, x1)


def test_brow_raise_changes_the_brow_region_only(engine) -> None:
    frame = 60
    base = engine.render(frame, _edit(), SIZE).rgb.astype(np.float64)
    raised = engine.render(frame, _edit(brows=-1.0), SIZE).rgb.astype(np.float64)
    diff = np.abs(raised - base).mean(axis=2)
    brows = diff[_box(engine, frame, list(range(17, 27)), 2)].mean()
    mouth = diff[_box(engine, frame, list(range(48, 68)), 1)].mean()
    assert brows >= 1.0, f"a brow edit changed the brow region by only {brows:.2f}/255"
    assert mouth < 0.2 * brows, f"a brow edit changed the mouth by {mouth:.2f}/255"


def test_still_head_renders_every_frame_from_one_pose(engine) -> None:
    track = engine.track
    poses = np.stack([track.pose_at(f, 0.0) for f in range(track.num_frames)])
    assert np.ptp(track.pose[:, :3, 3], axis=0).max() > 0  # the reference moves ...
    np.testing.assert_allclose(poses, poses[:1].repeat(len(poses), 0), atol=1e-9)  # ... not now
    pose = engine._pose(120, tuple(float(v) for v in _edit(head_motion=0.0)))
    np.testing.assert_allclose(pose, poses[0])


def test_export_renders_an_inserted_blink(engine, tmp_path: Path) -> None:
    from talkstudio.core.media import read_video_frames
    from talkstudio.core.progress import run_job

    edits = Edits()
    edits.blink.set(2, 1.0)
    out = run_job(engine.export(tmp_path / "blink.mp4", edits, size=SIZE, start=0, end=4))
    frames = read_video_frames(out)
    plain = engine.render_once(2, (1, 1, 1), SIZE).rgb.astype(np.float64)
    shut = engine.render_once(2, _edit(blink=0.0), SIZE).rgb.astype(np.float64)
    eyes = _box(engine, 2, list(range(36, 48)), 1)
    assert np.abs(shut - plain)[eyes].mean() > 2.0  # the blink shows in the eyes ...
    exported = frames[2].astype(np.float64)
    assert np.abs(exported - shut)[eyes].mean() < np.abs(exported - plain)[eyes].mean()
