"""Looking again for a face the tracker missed: Face Mesh's detector misses a face that is small
in a large frame (a waist-up or full-body shot), although it follows it once found.
``look_again`` searches the untracked frames in an enlarged square around the nearest face
found. Real footage (May_5s) placed small in a 1280x720 frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from conftest import shared_data

from talkstudio.core.media import Mp4Writer, iter_video_frames
from talkstudio.core.preprocess.tracking import (
    FaceChoice,
    FaceMeshTracker,
    face_size,
    look_again,
)
from talkstudio.core.progress import run_job

W, H = 1280, 720
SIDE = 200  # the 512² May frames are shrunk to this: a face of about 110 px
AT = (700, 300)  # top-left corner of the shrunk frame in the large one
FRAMES = 12
LOST = 6  # frames 0..5 are given as untracked


def _small_face_video(path: Path) -> list[np.ndarray]:
    """Write the video; return the meshes [478, 3] of its frames in its pixels, found by
    tracking the full-size May frames and mapping them (the truth)."""
    truth: list[np.ndarray] = []
    scale = SIDE / 512
    with (
        FaceMeshTracker(1, static=True) as tracker,
        Mp4Writer(path, W, H, crf=12) as writer,
    ):
        for frame in iter_video_frames(shared_data("May_5s.mp4"), fps=25):
            if frame.index == FRAMES:
                break
            big = np.full((H, W, 3), 110, np.uint8)
            small = cv2.resize(frame.rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
            big[AT[1] : AT[1] + SIDE, AT[0] : AT[0] + SIDE] = small
            writer.write(big)
            (face,) = tracker(frame.rgb)
            truth.append(face * scale + np.array([AT[0], AT[1], 0.0]))
    return truth


def test_a_small_face_the_detector_misses_is_found_near_the_next_face(tmp_path: Path) -> None:
    video = tmp_path / "small.mp4"
    truth = _small_face_video(video)
    frames = [f.rgb for f in iter_video_frames(video, fps=25)]
    with FaceMeshTracker(1) as tracker:  # the premise: tracking the whole frame finds nothing
        assert not any(tracker(rgb) for rgb in frames[:LOST])
    mesh = np.full((FRAMES, 478, 3), np.nan)
    found = np.zeros(FRAMES, bool)
    mesh[LOST:], found[LOST:] = np.stack(truth[LOST:]), True
    choice = FaceChoice(mesh, found)
    records: list = []
    notes = run_job(look_again(video, choice, 25), records.append)
    assert choice.found.all()
    assert notes == [
        f"the face was found in {LOST} of {LOST} untracked frame(s) by searching near it"
    ]
    assert [r.step for r in records] == list(range(1, LOST + 1))
    for i in range(LOST):  # searched backwards from frame 6; each lands on the face
        err = np.linalg.norm(choice.mesh[i, :, :2] - truth[i][:, :2], axis=1).mean()
        assert err < 0.05 * face_size(truth[i]), (i, err)


def test_nothing_near_the_last_face_stays_untracked(tmp_path: Path) -> None:
    video = tmp_path / "small.mp4"
    truth = _small_face_video(video)
    mesh = np.full((FRAMES, 478, 3), np.nan)
    found = np.zeros(FRAMES, bool)
    far = truth[0] + np.array([-600.0, -250.0, 0.0])  # a "face" where the frame is grey
    mesh[:2], found[:2] = np.stack([far, far]), True
    choice = FaceChoice(mesh, found)
    notes = run_job(look_again(video, choice, 25))
    assert notes == [] and not choice.found[2:].any()
