"""Benchmark section ``media``: decode and encode speed of ``talkstudio.core.media``.

- decode: ``read_video_frames`` of ``../shared/data/May_5s.mp4`` (512², 125 frames) at 25 fps,
  in output frames per second;
- ``load_audio`` of the same file (48 kHz stereo AAC → 16 kHz mono), in milliseconds;
- encode: ``encode_mp4`` of 125 frames (5 s) with 5 s of audio at 256² and 512², crf 20,
  libx264 preset ``medium``, in frames per second.

The encoded frames are smooth moving gradients (cheaper than camera noise, dearer than flat
colour). The real clip is skipped, with a note, when ``../shared/data`` is absent. FFmpeg picks
its own thread count (all cores); torch is not used. A quick run encodes 10 frames at 64².
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure, time_call
from benchmarks.common import SHARED_DATA
from talkstudio.core.media import encode_mp4, load_audio, read_video_frames

FRAMES = 125
"""Frames of the real clip, and of each encode."""


def _frames(size: int, count: int) -> list[np.ndarray]:
    """``count`` moving colour gradients, uint8 [size, size, 3] each."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = []
    for i in range(count):
        p = i / count
        rgb = np.stack([x + p, y + 0.5 * p, 0.5 * (x + y) - p], axis=-1) % 1.0
        out.append((rgb * 255).astype(np.uint8))
    return out


def run(ctx: Context) -> list[Measure]:
    reps = ctx.reps
    measures: list[Measure] = []
    clip = SHARED_DATA / "May_5s.mp4"
    if clip.is_file():
        ms = time_call(lambda: read_video_frames(clip), reps)
        measures.append(
            Measure(
                "decode May_5s.mp4 512² @25fps",
                "fps",
                [FRAMES / (t / 1000) for t in ms],
                note=f"{FRAMES} frames, median {np.median(ms):.0f} ms",
            )
        )
        ms = time_call(lambda: load_audio(clip), reps)
        measures.append(
            Measure("load_audio May_5s.mp4 (5 s, 48k stereo AAC)", "ms", ms, note="→ 16 kHz mono")
        )
    else:
        print(f"media: {clip} is absent; real-clip decode measures skipped")
    count = ctx.pick(FRAMES, 10)
    t = np.arange(count * 640) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for size in ctx.pick((256, 512), (64,)):
            frames = _frames(size, count)
            out = Path(tmp) / f"enc{size}.mp4"
            ms = time_call(lambda f=frames, o=out: encode_mp4(o, f, audio=audio), reps)
            measures.append(
                Measure(
                    f"encode_mp4 {size}² + audio",
                    "fps",
                    [count / (m / 1000) for m in ms],
                    note=f"{count} frames, crf 20, preset medium, {out.stat().st_size // 1024} KiB",
                )
            )
    return measures
