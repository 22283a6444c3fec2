"""Benchmark section ``synthetic``: how fast synthetic subjects render and how face-like they are.

- render time per frame (``SynthSequence.render``: paint, project, z-buffer, shade, 2x
  supersampling, sensor noise) at 256² and 512², in milliseconds, medians over ``reps`` frames,
  wall clock and CPU time of this process (they differ when the machine is shared);
- the whole job ``write_synthetic`` for an 8 s clip at 256² (audio, 200 renders, PNG frames and
  masks, H.264 + AAC MP4), in seconds, once;
- MediaPipe Face Mesh detection rate on the 8 s clip at 256² and 512², as a camera would deliver
  it: the frames go through the H.264 MP4 and are decoded back. ``FaceMesh(static_image_mode=
  False, max_num_faces=1, refine_landmarks=True)``, the settings preprocessing uses;
- how well MediaPipe's mesh, mapped to iBUG-68 by preprocessing's map, agrees with the ground
  truth: mean point distance in pixels at 512², and the Pearson correlation of the mouth
  opening (inner-lip gap / mouth width) between the two.

Single process; NumPy/OpenCV as configured (OpenCV may use its own threads for resizing);
torch is not used. Seed 0. A quick run makes a 1 s clip at 128².
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure
from talkstudio.core.subject import Subject
from talkstudio.core.synthetic import SynthConfig, synthesize, write_synthetic

SECONDS = 8.0


def _render_ms(size: int, reps: int, seconds: float) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of ``reps`` frame renders."""
    seq = synthesize(SynthConfig(seed=0, seconds=seconds, size=size))
    seq.render(0)  # warm-up: backgrounds, caches
    wall, cpu = [], []
    for i in range(1, reps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        seq.render(i * 7 % seq.num_frames)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return wall, cpu


def _mediapipe(video: Path, truth: np.ndarray) -> tuple[float, int, float, float]:
    """Detection rate, frames, mean iBUG-68 error (px at 512²) and mouth-opening correlation
    of MediaPipe on ``video`` against the ground-truth pixels ``truth`` [T, 68, 2]."""
    import mediapipe as mp

    from talkstudio.core.landmarks import mouth_opening
    from talkstudio.core.media import read_video_frames
    from talkstudio.core.preprocess.ibug68 import mesh_to_ibug68

    frames = read_video_frames(video)
    size = frames[0].shape[1]
    found, errors, ours, theirs = 0, [], [], []
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=True
    ) as mesh:
        for i, rgb in enumerate(frames):
            res = mesh.process(np.ascontiguousarray(rgb))
            if res.multi_face_landmarks is None:
                continue
            found += 1
            pts = np.array([(p.x * size, p.y * size) for p in res.multi_face_landmarks[0].landmark])
            lm = mesh_to_ibug68(pts)  # [68, 2]
            errors.append(np.linalg.norm(lm - truth[i], axis=-1).mean() * 512 / size)
            ours.append(mouth_opening(truth[i]))
            theirs.append(mouth_opening(lm))
    corr = float(np.corrcoef(ours, theirs)[0, 1]) if found > 2 else float("nan")
    err = float(np.mean(errors)) if errors else float("nan")
    return found / len(frames), len(frames), err, corr


def run(ctx: Context) -> list[Measure]:
    seconds, sizes = ctx.pick(SECONDS, 1.0), ctx.pick((256, 512), (128,))
    measures: list[Measure] = []
    for size in sizes:
        wall, cpu = _render_ms(size, ctx.reps, seconds)
        measures.append(Measure(f"render one frame {size}²", "ms", wall, note="supersample 2"))
        measures.append(Measure(f"render one frame {size}², CPU time", "ms", cpu))
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            result = write_synthetic(
                Path(tmp) / f"s{size}", SynthConfig(seed=0, seconds=seconds, size=size)
            )
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            measures.append(
                Measure(
                    f"write_synthetic {seconds:g} s clip {size}²",
                    "s",
                    [wall],
                    note=f"{result.num_frames} frames, CPU {cpu:.1f} s, MP4 + PNG subject",
                )
            )
            assert result.video_path is not None
            truth = Subject.open(result.subject_dir).tracks.lm2d  # [T, 68, 2]
            rate, n, err, corr = _mediapipe(result.video_path, truth)
            measures.append(
                Measure(
                    f"MediaPipe detection {seconds:g} s clip {size}²",
                    "%",
                    [100.0 * rate],
                    note=f"{round(rate * n)}/{n} frames, decoded from the MP4",
                )
            )
            measures.append(
                Measure(
                    f"MediaPipe iBUG-68 vs ground truth {size}²",
                    "px@512",
                    [err],
                    note=f"mean point error; mouth-opening Pearson r = {corr:.3f}",
                )
            )
    return measures
