"""A subject "cropped from a video" for the paste-back tests: the demo subject's trained model
and frames, given a made-up 160x120 source video (its frames placed in a checkerboard frame, a
red bar at the top whose length numbers the frame)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from talkstudio.core.framing import video_identity
from talkstudio.core.media import Mp4Writer
from talkstudio.core.paste_back import crop_affine
from talkstudio.core.subject import Subject

FRAMES = 12  # exported frames
REFERENCE = 8  # the video subject's training frames: frames 8..11 play 6, 5, 4, 3
SOURCE_W, SOURCE_H = 160, 120
CROP = (40, 10, 96)  # x0, y0, side of the demo's 256² frames in the source


def checkerboard(h: int, w: int, cell: int = 4) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    grey = (((yy // cell + xx // cell) % 2) * 200 + 30).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def as_video_subject(root: Path, video: Path | None, version: int, crop=CROP) -> None:
    """Make ``root``'s subject.json say it was cropped from ``video`` (format ``version``)."""
    meta = json.loads((root / "subject.json").read_text())
    x0, y0, side = crop
    source = {
        "kind": "video",
        "path": str(video if video is not None else root / "gone.mp4"),
        "fps": 25.0,
        "variable_frame_rate": False,
        "width": SOURCE_W,
        "height": SOURCE_H,
        "crop": [x0, y0, side],
        "padded": False,
    }
    if version >= 2:
        source["crop_affine"] = crop_affine(x0, y0, side, meta["size"]).tolist()
        if video is not None:
            source.update(video_identity(video))
    meta.update(version=version, source=source)
    (root / "subject.json").write_text(json.dumps(meta))


def make_video_subject(demo_subject: Path, base: Path) -> Path:
    """The demo subject as if cropped from a 160x120 video: its frames 0..9 resized into the
    square CROP of a checkerboard, a bar k * 8 pixels long at the top for frame k."""
    root = base / "subject"
    root.mkdir()
    for name in ("frames", "masks", "models"):
        os.symlink(demo_subject / name, root / name)
    for name in ("tracks.npz", "background.png", "audio.wav", "subject.json"):
        shutil.copy(demo_subject / name, root / name)
    demo = Subject.open(demo_subject)
    x0, y0, side = CROP
    video = base / "source.mp4"
    with Mp4Writer(video, SOURCE_W, SOURCE_H, crf=12) as w:
        for k in range(10):
            img = checkerboard(SOURCE_H, SOURCE_W, cell=8)
            img[:8, : 8 * (k + 1)] = (255, 0, 0)
            face = cv2.resize(demo.load_frame(k), (side, side), interpolation=cv2.INTER_AREA)
            img[y0 : y0 + side, x0 : x0 + side] = face
            w.write(img)
    meta = json.loads((root / "subject.json").read_text())
    meta["train_frames"] = REFERENCE
    (root / "subject.json").write_text(json.dumps(meta))
    as_video_subject(root, video, version=2)
    return root
