"""Benchmark section ``preprocess``: throughput of ``talkstudio preprocess`` at 512².

On ``../shared/data/May_5s.mp4`` (512², 125 frames at 25 fps), in frames per second:

- tracking + segmentation: MediaPipe Face Mesh (video mode, 478 points, up to 2 faces) and the
  selfie segmentation (run at 256²) on frames decoded beforehand (decode not timed);
- pose: focal search, mean shape, PnP, smoothing and eye ratios for all frames, in ms;
- the whole command: ``preprocess(...)`` end to end (probe, two decodes, tracking, pose,
  segmentation, masks, JPEG/PNG writes, plate, audio, report, contact sheet), as frames / wall
  time.

MediaPipe (XNNPACK) and OpenCV use their default thread pools, i.e. all cores of the machine;
torch is not used. Skipped with a note when ``../shared/data`` is absent. A quick run uses a
2.5 s synthetic clip at 256² instead (``core.synthetic``, with its MP4).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure, time_call
from benchmarks.common import SHARED_DATA
from talkstudio.core.media import read_video_frames
from talkstudio.core.preprocess import preprocess
from talkstudio.core.preprocess.config import PreprocessConfig
from talkstudio.core.preprocess.pose import estimate_focal, intrinsics
from talkstudio.core.preprocess.segment import PersonSegmenter
from talkstudio.core.preprocess.solve import solve_tracks
from talkstudio.core.preprocess.tracking import FaceMeshTracker, choose_face
from talkstudio.core.progress import run_job
from talkstudio.core.subject import default_train_frames


def _track_and_segment(frames: np.ndarray) -> list[list[np.ndarray]]:
    found = []
    with FaceMeshTracker(max_faces=2) as tracker, PersonSegmenter(256) as segmenter:
        for rgb in frames:
            found.append(tracker(rgb))
            segmenter(rgb)
    return found


def _quick_clip(folder: Path) -> Path:
    """A 2.5 s synthetic talking head at 256² as an MP4."""
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    if not (folder / "synthetic.mp4").is_file():  # made once per results folder
        write_synthetic(folder, SynthConfig(seed=0, seconds=2.5, size=256))
    return folder / "synthetic.mp4"


def run(ctx: Context) -> list[Measure]:
    reps = ctx.reps
    clip = _quick_clip(ctx.results / "preprocess_clip") if ctx.quick else SHARED_DATA / "May_5s.mp4"
    if not clip.is_file():
        print(f"preprocess: {clip} is absent; nothing measured")
        return []
    frames = read_video_frames(clip)  # [125, 512, 512, 3] for May_5s
    n, size = len(frames), frames.shape[1]
    measures = []
    ms = time_call(lambda: _track_and_segment(frames), reps)
    measures.append(
        Measure(f"track + segment {size}²", "fps", [n / (t / 1000) for t in ms], note=f"{n} frames")
    )
    cands = _track_and_segment(frames)
    mesh = choose_face(cands, 25).mesh

    def pose() -> None:
        search = estimate_focal(mesh, size, 1.2 * size)
        solve_tracks(
            mesh,
            intrinsics(size, search.focal),
            default_train_frames(n),
            np.ones(n, bool),
            PreprocessConfig(),
        )

    measures.append(Measure("pose: focal search + solve", "ms", time_call(pose, reps)))
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(reps + 1):
            t0 = time.perf_counter()
            run_job(preprocess(clip, Path(tmp) / f"s{k}", size=size))
            if k:  # the first run warms caches and imports
                walls.append(time.perf_counter() - t0)
    measures.append(
        Measure(
            f"whole command {size}²",
            "fps",
            [n / w for w in walls],
            note=f"{n} frames, median {np.median(walls):.1f} s",
        )
    )
    return measures
