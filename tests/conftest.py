"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of ``../shared/data/<name>``; skips the calling test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(
            f"{path} is absent: the real-footage data lives in ../shared/data beside the repo"
        )
    return path


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """Keep torch on the CI machine's two cores without oversubscription."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(2)


def make_tiny_subject(root: Path, frames: int = 12, size: int = 32, audio: bool = True) -> Path:
    """Write a small valid subject folder (random content, consistent shapes) at ``root``."""
    import numpy as np

    from talkstudio.core import geometry, subject
    from talkstudio.core.timing import SAMPLES_PER_FRAME

    rng = np.random.default_rng(0)
    meta = subject.SubjectMeta(
        name="tiny",
        size=size,
        num_frames=frames,
        intrinsics=geometry.default_intrinsics(size).tolist(),
        head_bbox=[[-1.0, -1.2, -1.0], [1.0, 1.2, 1.0]],
        has_audio=audio,
        frame_ext=".png",
    )
    subj = subject.create(root, meta)
    for i in range(frames):
        subj.write_frame(i, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        subj.write_mask(i, np.full((size, size), subject.MASK_PERSON | subject.MASK_HEAD, np.uint8))
    subj.write_background(np.zeros((size, size, 3), np.uint8))
    shape = rng.normal(0, 0.3, (68, 3)).astype(np.float32)
    pose = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    pose[:, 2, 3] = 6.0
    lm_world = np.repeat(shape[None], frames, 0)
    lm2d = geometry.project_head_points(meta.K, pose, lm_world).astype(np.float32)
    subj.write_tracks(
        subject.Tracks(
            lm2d=lm2d,
            lm_world=lm_world,
            pose=pose,
            eye_ratio=np.ones((frames, 2), np.float32),
            tracked=np.ones(frames, bool),
            mean_shape=shape,
            eye_open_area=np.array([0.02, 0.02], np.float32),
        )
    )
    if audio:
        t = np.arange(frames * SAMPLES_PER_FRAME) / 16000
        subj.write_audio((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return root


@pytest.fixture
def tiny_subject(tmp_path: Path) -> Path:
    """A small valid subject folder (12 frames, 32²) in a temporary directory."""
    return make_tiny_subject(tmp_path / "subject")
