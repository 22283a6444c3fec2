"""The engine on a real subject driven by other speech: export times, the mouth edit re-tracked
by MediaPipe, and the exported file's A/V offset.

Subject: ``$TALKSTUDIO_ENGINE_SUBJECT``, else ``../subjects/German_20s`` beside the repository,
with all three parts trained (``talkstudio preprocess ../shared/data/German_20s.mp4 --out
../subjects/German_20s`` then ``talkstudio train stage1|head|torso ... --preset preview``).
Speech: ``../shared/data/Obama_5s.wav``. Without them only a note is printed.

- **export 5 s** at 128² and 256²: the whole ``Engine.export`` job (stage 1 ran before), wall
  seconds; 128² is repeated, 256² runs once (its per-frame median is given beside it);
- **512²**: ms per frame while exporting the first second (25 frames);
- **α3 = 2 vs α3 = 1**: 25 frames rendered at 256² both ways and re-tracked with MediaPipe Face
  Mesh (static mode): the median ratio of inner-lip gap / mouth width over the frames whose mouth
  is open at α3 = 1, and the relative change of the eye openings. Once on frames spread over the
  driven clip ("driven"), once on the subject's own replayed frames whose tracked mouth is at
  least half open ("own"); ``ENGINE_BENCH_ONLY=mouth`` runs only these;
- **lip colour flicker**: over 40 consecutive driven frames (5 in a quick run) at the edit size,
  the mean |second difference| in time of the lips' mean colour (inside the hull of the wanted
  lips), 8-bit levels; with a refiner that lays a real mouth in, also with its colour match off
  (``reference_colour_sigma`` 0), and for the subject's own video over as many frames;
- **fast α preview** at the edit size (the studio's slider preview, ``Engine.render_fast``):
  on 3 frames spread over the driven clip, each after a full render, α3 moved over 0.5 … 2 (7
  values), square crop and source framing (the studio's default view; the crop again for a
  subject without a usable source video): the ms of each preview frame.
  ``ENGINE_BENCH_ONLY=preview`` runs only this;
- **A/V offset**: the first video frame's time minus the first audio sample's time in the
  exported 128² file (from the container's stream start times);
- strips of those 256² renders (α3 = 1 above, α3 = 2 below) in
  ``bench_results/engine_strip.png`` and ``engine_strip_own.png``.

Torch threads: ``$TALKSTUDIO_BENCH_THREADS`` (default 1). A quick run drives the built-in demo
subject with 2 s of its own speech, exports 4 frames at 64² and re-tracks 3 frames at 128².
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import SHARED_DATA, set_threads, subject_from_env

AUDIO = SHARED_DATA / "Obama_5s.wav"


@dataclass(frozen=True)
class Plan:
    """What one run drives with and at which sizes it measures."""

    audio: Path | np.ndarray
    export_sizes: tuple[int, int, int]  # the "128²", "256²" and "512²" exports
    export_end: int | None  # last frame of the 128² and 256² exports (None: the whole clip)
    edit_size: int
    edit_frames: int
    results: Path
    flicker_frames: int = 40
    """Consecutive driven frames the lip colour flicker is taken over."""


FULL_EXPORTS = (128, 256, 512)


def _export(engine, out: Path, size: int, end: int | None = None, edits=None) -> list[float]:
    """Run one export; the ms each frame took."""
    from talkstudio.core.progress import run_job

    stamps = [time.perf_counter()]
    run_job(
        engine.export(out, edits, size=size, end=end), lambda p: stamps.append(time.perf_counter())
    )
    return [(b - a) * 1e3 for a, b in itertools.pairwise(stamps)]


def av_offset_ms(path: Path) -> float:
    """First video frame time minus first audio sample time (ms), from the decoded frames."""
    import av

    with av.open(str(path)) as c:
        v = next(f for f in c.decode(video=0))
        video_t = float(v.pts * v.time_base)
    with av.open(str(path)) as c:
        a = next(f for f in c.decode(audio=0))
        audio_t = float(a.pts * a.time_base)
    return (video_t - audio_t) * 1e3


def _retrack(frames: list[np.ndarray]) -> np.ndarray:
    """iBUG-68 image points [N, 68, 2] of each frame (NaN where no face was found)."""
    from talkstudio.core.preprocess.ibug68 import mesh_to_ibug68
    from talkstudio.core.preprocess.tracking import FaceMeshTracker

    out = np.full((len(frames), 68, 2), np.nan)
    with FaceMeshTracker(max_faces=1, static=True) as tracker:
        for i, rgb in enumerate(frames):
            faces = tracker(rgb)
            if faces:
                out[i] = mesh_to_ibug68(faces[0])[:, :2]
    return out


def _mouth_edit(
    engine, measures: list[Measure], note: str, picks: np.ndarray, label: str, plan: Plan
) -> None:
    import cv2

    from talkstudio.core.landmarks import eye_opening, mouth_opening

    size = plan.edit_size
    one = [engine.render(int(i), (1, 1, 1), size).rgb for i in picks]
    two = [engine.render(int(i), (1, 1, 2), size).rgb for i in picks]
    p1, p2 = _retrack(one), _retrack(two)
    ok = ~np.isnan(p1[:, 0, 0]) & ~np.isnan(p2[:, 0, 0])
    m1, m2 = mouth_opening(p1[ok]), mouth_opening(p2[ok])
    open1 = m1 > 0.02  # frames with the mouth visibly open at α3 = 1
    ratio = float(np.median(m2[open1] / m1[open1])) if open1.any() else float("nan")
    eyes = []
    for left in (True, False):
        e1, e2 = eye_opening(p1[ok], left), eye_opening(p2[ok], left)
        eyes.append(float(np.median(np.abs(e2 - e1) / np.maximum(e1, 1e-6))))
    found = f"{int(ok.sum())}/{len(picks)} frames re-tracked, {int(open1.sum())} with an open mouth"
    measures += [
        Measure(f"{label}: α3=2 / α3=1 mouth opening", "ratio", [ratio], f"{note}; {found}"),
        Measure(f"{label}: left eye opening change", "rel", [eyes[0]], "median |Δ| / opening"),
        Measure(f"{label}: right eye opening change", "rel", [eyes[1]], "median |Δ| / opening"),
        Measure(
            f"{label}: mouth opening at α3=1 (median)",
            "ratio",
            [float(np.median(m1[open1])) if open1.any() else float("nan")],
            f"α3=2: {float(np.median(m2[open1])) if open1.any() else float('nan'):.3f}",
        ),
    ]
    strip = np.concatenate(
        [np.concatenate(one[::5], axis=1), np.concatenate(two[::5], axis=1)], axis=0
    )
    name = "engine_strip.png" if label == "driven" else f"engine_strip_{label}.png"
    cv2.imwrite(str(plan.results / name), strip[..., ::-1])


def _own_frames(engine, count: int) -> np.ndarray:
    """``count`` of the subject's own (replayed) frames whose tracked mouth is open: spread over
    the upper half of the openings, where doubling is a visible change."""
    from talkstudio.core.landmarks import mouth_opening

    engine.replay()
    opening = mouth_opening(engine.track.lm_world.astype(np.float64))  # [T]
    open_frames = np.flatnonzero(opening >= np.median(opening))
    return open_frames[np.linspace(0, len(open_frames) - 1, count).round().astype(int)]


def _quick_plan(results: Path) -> tuple[Path, Plan, str]:
    from talkstudio.core.demo import ensure_demo_subject
    from talkstudio.core.subject import Subject

    subject = ensure_demo_subject()
    speech = Subject.open(subject).load_audio()[: 2 * 16000]
    return subject, Plan(speech, (64, 64, 64), 3, 128, 3, results, 5), "2 s of its own speech"


def run(ctx: Context) -> list[Measure]:
    from talkstudio.core.engine import Engine

    threads = set_threads(1)
    if ctx.quick:
        subject, plan, driver = _quick_plan(ctx.results)
    else:
        subject, driver = subject_from_env("TALKSTUDIO_ENGINE_SUBJECT"), AUDIO.name
        plan = Plan(AUDIO, FULL_EXPORTS, None, 256, 25, ctx.results)
        if not (subject / "models" / "torso" / "config.json").is_file() or not AUDIO.is_file():
            note = f"skipped: no trained {subject} or audio"
            return [Measure("engine", "-", [float("nan")], note)]
    note = f"{subject.name} driven by {driver}, CPU, {threads} thread(s)"
    engine = Engine.open(subject, device="cpu")
    only = os.environ.get("ENGINE_BENCH_ONLY")
    if only == "mouth":
        return _mouth_measures(engine, note, plan)
    if only == "preview":
        return _preview_measures(engine, note, plan)
    t0 = time.perf_counter()
    engine.drive(plan.audio)
    drive_s = time.perf_counter() - t0
    seconds = ctx.pick(5, 2)
    measures = [Measure(f"stage 1 + driving track, {seconds} s", "s", [drive_s], note)]
    small, mid, large = plan.export_sizes
    reps, end = ctx.reps, plan.export_end
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        runs = [
            _export(engine, out / f"e128_{r}.mp4", small, end) for r in range(max(1, min(reps, 3)))
        ]
        frames = engine.num_frames if end is None else end
        measures.append(
            Measure(
                f"export {frames} frames at {small}²",
                "s",
                [sum(r) / 1e3 for r in runs],
                f"{note}; {statistics.median(runs[0]):.0f} ms/frame",
            )
        )
        measures.append(
            Measure("A/V offset of the export", "ms", [av_offset_ms(out / "e128_0.mp4")])
        )
        ms256 = _export(engine, out / "e256.mp4", mid, end)
        measures.append(
            Measure(
                f"export {frames} frames at {mid}²",
                "s",
                [sum(ms256) / 1e3],
                f"one export; {statistics.median(ms256):.0f} ms/frame median",
            )
        )
        ms512 = _export(engine, out / "e512.mp4", large, end=25 if end is None else end)
        measures.append(Measure(f"export at {large}², first second", "ms/frame", ms512, note))
    preview = _preview_measures(engine, note, plan, driven=True)
    return measures + preview + _mouth_measures(engine, note, plan)


PREVIEW_ALPHAS = (0.5, 0.75, 1.25, 1.5, 1.75, 2.0, 1.0)
"""The α3 values a preview measure moves the slider over, in this order."""


def _preview_measures(engine, note: str, plan: Plan, driven: bool = False) -> list[Measure]:
    """The fast α preview's frame time (see the module docstring); ``driven``: the engine is
    already driven by ``plan.audio``."""
    from talkstudio.core.fidelity import evenly_spaced

    if not driven:
        engine.drive(plan.audio)
    size = plan.edit_size
    frames = evenly_spaced(engine.num_frames, 3)
    measures = []
    for view in ("crop", "source"):
        times = []
        for frame in frames:
            engine.render(frame, (1, 1, 1), size, view)
            for alpha in PREVIEW_ALPHAS:
                shown = engine.render_fast(frame, (1, 1, alpha), size, view)
                assert shown.kind == "fast", "the preview fell back to a full render"
                times.append(shown.ms)
        label = f"fast α preview at {size}², {view} framing"
        detail = f"{note}; α3 over {len(PREVIEW_ALPHAS)} values on {len(frames)} frames"
        first = max(times[:: len(PREVIEW_ALPHAS)])
        measures.append(
            Measure(label, "ms", times, f"{detail}; a frame's first edit ≤ {first:.0f} ms")
        )
    return measures


def _mouth_measures(engine, note: str, plan: Plan) -> list[Measure]:
    """The α3 edit re-tracked on the driven clip and on the subject's own open-mouth frames."""
    measures: list[Measure] = []
    engine.drive(plan.audio)
    count = plan.edit_frames
    driven = np.linspace(0, engine.num_frames - 1, count).round().astype(int)
    _mouth_edit(engine, measures, note, driven, "driven", plan)
    own = _own_frames(engine, count)
    _mouth_edit(engine, measures, f"{engine.subject.meta.name}'s own frames", own, "own", plan)
    return measures + _lip_flicker(engine, note, plan)


def _lip_colours(frames: list[np.ndarray], lips: list[np.ndarray]) -> np.ndarray:
    """[T, 3] mean colour (8-bit levels) of each frame inside the hull of its lips [20, 2]."""
    import cv2

    out = []
    for rgb, pts in zip(frames, lips):
        mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), (1,))
        out.append(rgb[mask > 0].astype(np.float64).mean(axis=0))
    return np.asarray(out)


def _flicker(colours: np.ndarray) -> float:
    """Mean |second difference| in time of [T, 3] colours: change that reverses frame to frame."""
    return float(np.abs(colours[2:] - 2 * colours[1:-1] + colours[:-2]).mean())


def _lip_flicker(engine, note: str, plan: Plan) -> list[Measure]:
    """Lip colour flicker on consecutive driven frames (see the module docstring)."""
    from talkstudio.core.edit import frame_edit
    from talkstudio.core.landmarks import MOUTH
    from talkstudio.core.refiner.reference import lip_points
    from talkstudio.core.torso.data import resize_rgb

    size, subject = plan.edit_size, engine.subject
    count = min(plan.flicker_frames, engine.num_frames)
    start = max(0, engine.num_frames // 2 - count // 2)
    frames = range(start, start + count)
    edit = frame_edit((1, 1, 1))
    scale = size / subject.meta.size
    lips = [
        lip_points(subject, engine._pose(i, edit), engine.landmarks(i, edit)) * scale
        for i in frames
    ]
    refiner = engine.refiner
    variants = [("render", None)]
    if refiner is not None and refiner.reference is not None:
        variants.append(("render, colour match off", 0.0))
    measures = []
    for label, sigma in variants:
        shipped = refiner.config.reference_colour_sigma if refiner is not None else 0.0
        if refiner is not None and sigma is not None:
            refiner.config.reference_colour_sigma = sigma
        try:
            rgbs = [engine._full_frame(i, edit, size, keep=False) for i in frames]
        finally:
            if refiner is not None:
                refiner.config.reference_colour_sigma = shipped
        value = _flicker(_lip_colours(rgbs, lips))
        measures.append(Measure(f"lip colour flicker, {label}", "levels", [value], note))
    own = range(min(count, subject.meta.num_frames))
    real = [resize_rgb(subject.load_frame(i), size) for i in own]
    own_lips = [np.asarray(subject.tracks.lm2d[i], np.float64)[list(MOUTH)] * scale for i in own]
    value = _flicker(_lip_colours(real, own_lips))
    measures.append(Measure("lip colour flicker, the subject's own video", "levels", [value]))
    return measures
