"""Head pose from preprocessing against the ground truth of a synthetic subject."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from talkstudio.core.geometry import rotation_angle_deg
from talkstudio.core.preprocess import preprocess
from talkstudio.core.progress import run_job
from talkstudio.core.subject import Subject


@pytest.mark.slow
def test_pose_matches_synthetic_ground_truth(tmp_path: Path) -> None:
    """Rotations agree with the generator's within 2 degrees, once the constant rotation between
    the two head frames (each defines "frontal" its own way) is taken out; the offset is small."""
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    synth = write_synthetic(
        tmp_path / "synth", SynthConfig(seed=0, seconds=4, size=512, head_motion=3.0)
    )
    assert synth.video_path is not None
    truth = Subject.open(synth.subject_dir)
    out = run_job(preprocess(synth.video_path, tmp_path / "subject"))
    ours = Subject.open(out)
    assert ours.tracks.tracked.all()
    r_true = truth.tracks.pose[:, :3, :3].astype(np.float64)  # [T, 3, 3]
    r_ours = ours.tracks.pose[:, :3, :3].astype(np.float64)
    # pose = R_true @ C for a constant C (head frame to head frame): fit C, then compare
    offset = (Rotation.from_matrix(r_true).inv() * Rotation.from_matrix(r_ours)).mean().as_matrix()
    err = rotation_angle_deg(r_ours, r_true @ offset)  # [T]
    motion = rotation_angle_deg(r_true, r_true[:1])
    assert motion.max() > 5.0, "the synthetic head should move enough to test anything"
    assert rotation_angle_deg(offset, np.eye(3)) < 8.0
    assert err.mean() < 1.0 and err.max() <= 2.0, (err.mean(), err.max())
