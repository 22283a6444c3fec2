"""Lip sync across speakers: does a subject's mouth follow *another* person's voice?

For each held-out test speaker of the corpus (``../shared/data/corpus/test``, tracked once into
the user cache by :mod:`talkstudio.core.stage1.corpus`) a trained subject is driven by that
speaker's audio, and the predicted track's mouth opening (inner-lip gap / mouth width) is
correlated with the speaker's own tracked opening over the frames where the speaker's face was
tracked: Pearson r at lag 0, and the best r within ±5 frames with its lag (positive: the
prediction comes late), and r at lag 0 with each driver's own sound moved back in line with its
picture by the offset the prior's linear part measures on it (the test clips are off by up to 3
frames). The opening is a ratio, so the subject's and the speaker's face sizes
do not matter. Medians over the test speakers.

Subjects: ``German_20s`` and ``German_8s`` (its first 8 s: the few-shot case), from
``$TALKSTUDIO_SUBJECTS`` (copied without models) or preprocessed here from ``../shared/data``,
and one long corpus subject, ``TaoKai__subtitleEffect__obama`` (61 s, English, a training
speaker of the prior: what is measured is how other voices drive it).
``$LIPSYNC_SUBJECTS`` (comma-separated names) keeps only those subjects; it may also name
``May_5s`` (its sound about 50 ms late against its picture) and ``German_20s+120ms`` (German_20s
with its sound moved 3 frames late), the subjects of docs/prior.md "Audio-picture offset".
``LIPSYNC_DRIVERS=validation`` drives with the prior's three validation speakers (training-split
clips held out of the prior, where recipe choices are made) instead of the test speakers.

Render space (a yardstick independent of our code): when ``$TALKSTUDIO_SUBJECTS`` holds the
subject with a trained head and torso, the ``prior + fine-tune`` and ``from scratch`` models of
``German_20s`` drive it with each 25-fps test clip (the check pairs frames by index, so clips at
other rates would drift), the export is written at 128² as a crop, and the mouth-sync check
beside the test footage (``checks/mouth_sync.py REAL RENDER``) re-tracks both with MediaPipe:
its mouth-opening r, and the mean opening of the real and the rendered mouth.
``LIPSYNC_RENDER=0`` skips it.

Rows (models) per subject:

- ``mel, from scratch``: today's per-subject training (preview preset, ``init="scratch"``);
- ``prior only``: the shipped prior fitted to the subject (its mean, length, opening range and
  closed mouth), no training;
- ``prior + fine-tune``: the default training (preview preset, starting from the prior);
- ``prior + fine-tune, sound as recorded``: the same without moving the subject's sound back in
  line with its picture (``sync_audio`` off, :mod:`talkstudio.core.stage1.sync`);
- ``phonetic, from scratch`` / ``mel+phonetic, from scratch`` (German_20s only);
- every extra prior in ``$TALKSTUDIO_PRIORS`` (one folder per prior, as built by
  ``scripts/make_prior.py --out``): prior only and prior + fine-tune.

``$LIPSYNC_ROWS`` (comma-separated words, e.g. ``scratch`` or ``prior``) keeps only the rows
whose name contains one of them.

Also per model: own-voice validation r and LMD vs the mean-landmark baseline (the subject's
validation split; for German_8s also the rest of German_20s, 8–20 s, as an own-voice held-out
clip), the silence check (the test audio with 1 s of silence before, inside and after:
mean predicted opening on the silent frames above the subject's closed mouth, in units of the
subject's opening range, 5th to 95th percentile; target ≤ 0.1) and inference speed (front end +
KV-cached decoding, one thread, × real time).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import SHARED_DATA, set_threads

CORPUS = SHARED_DATA / "corpus"
EIGHT_S = 200
"""Frames of the few-shot subject (8 s at 25 fps)."""
QUICK_TRAINING = {"steps": 4, "val_every": 2}
LONG_SUBJECT = "TaoKai__subtitleEffect__obama"
"""The long corpus subject (61 s of English at 1280×720, a small face)."""
RENDER_ROWS = ("prior + fine-tune", "mel, from scratch")
"""The rows whose models are also rendered and re-tracked (render space)."""
RENDER_SIZE = 128
LATE_SUBJECT = "German_20s+120ms"
LATE_FRAMES = 3


@dataclass
class Driver:
    """A driving clip with the driver's own tracked mouth: 16 kHz audio, 37 points, mask."""

    name: str
    audio: np.ndarray
    points37: np.ndarray  # [T, 37, 3]
    tracked: np.ndarray  # [T] bool
    offset: float = 0.0
    """Frames the clip's own sound is late against its picture, as the prior's linear part
    measures it (:mod:`talkstudio.core.stage1.sync`; 0 when unclear)."""


def _opening(points37: np.ndarray) -> np.ndarray:
    from talkstudio.core.landmarks import mouth_opening
    from talkstudio.core.stage1.metrics import to68

    return mouth_opening(to68(np.asarray(points37, np.float64)))


def _drivers(quick: bool, scratch: Path) -> tuple[list[Driver], str]:
    from talkstudio.core.landmarks import STAGE1_POINTS

    p37 = list(STAGE1_POINTS)
    validation = os.environ.get("LIPSYNC_DRIVERS") == "validation"
    split = "train" if validation else "test"
    if not quick and (CORPUS / split).is_dir():
        from talkstudio.core.stage1.corpus import iter_corpus
        from talkstudio.core.stage1.linear_prior import LinearPrior
        from talkstudio.core.stage1.prior import prior_dir
        from talkstudio.core.stage1.sync import measure_offset

        keep = _validation_speakers() if validation else None
        linear = LinearPrior.load(prior_dir())
        out = []
        for c in iter_corpus(CORPUS, split):
            if isinstance(c, tuple) or (keep is not None and c.name not in keep):
                continue
            lm = np.asarray(c.tracks.lm_world)[:, p37]
            t = c.tracks
            off = measure_offset(t.audio, t.lm_world, t.tracked, linear).offset if linear else 0.0
            out.append(Driver(c.name, c.tracks.audio, lm, c.tracks.tracked, off))
        kind = "the prior's validation speakers" if validation else "corpus test speakers"
        return out, f"{len(out)} {kind}"
    from talkstudio.core.subject import Subject
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    res = write_synthetic(scratch / "driver", SynthConfig(seed=3, seconds=4.0, size=64), False)
    s = Subject.open(res.subject_dir)
    lm = np.asarray(s.tracks.lm_world)[:, p37]
    return [Driver("synthetic seed 3", s.load_audio(), lm, s.tracks.tracked)], "synthetic driver"


def _validation_speakers() -> list[str]:
    """The clips the shipped prior held out for its recipe choices (its config's recipe)."""
    import json

    from talkstudio.core.stage1.prior import prior_dir

    raw = json.loads((prior_dir() / "config.json").read_text())
    return list(raw["meta"]["prior"]["recipe"]["val_speakers"])


def _subjects(quick: bool, scratch: Path) -> tuple[list[tuple[str, Path | None, str]], Path | None]:
    """The subjects to measure (``$LIPSYNC_SUBJECTS`` keeps some), and German_20s's folder
    (German_8s's unseen own audio is the rest of German_20s)."""
    from benchmarks.sections.stage1 import _real_subject

    if quick:
        from talkstudio.core.synthetic import SynthConfig, write_synthetic

        res = write_synthetic(scratch / "subj", SynthConfig(seed=0, seconds=4.0, size=64), False)
        return [("synthetic 4 s", res.subject_dir, "core.synthetic seed 0")], None
    keep = os.environ.get("LIPSYNC_SUBJECTS")
    wanted = keep.split(",") if keep else ["German_20s", "German_8s", LONG_SUBJECT]
    out: list[tuple[str, Path | None, str]] = []
    german: Path | None = None
    if "German_20s" in wanted or "German_8s" in wanted:
        german, note = _real_subject("German_20s", scratch)
        if "German_20s" in wanted:
            out.append(("German_20s", german, note))
    if "German_8s" in wanted:
        eight = _eight_seconds(scratch)
        out.append(("German_8s", eight, "first 8 s of German_20s.mp4, preprocessed here"))
    if LONG_SUBJECT in wanted:
        out.append((LONG_SUBJECT, *_corpus_subject(LONG_SUBJECT, scratch)))
    if "May_5s" in wanted:
        out.append(("May_5s", *_real_subject("May_5s", scratch)))
    if LATE_SUBJECT in wanted:
        out.append((LATE_SUBJECT, *_late_subject(scratch)))
    return out, german


def _late_subject(scratch: Path) -> tuple[Path | None, str]:
    """German_20s with its sound moved :data:`LATE_FRAMES` frames late against its picture."""
    import soundfile as sf

    from benchmarks.sections.stage1 import _real_subject
    from talkstudio.core.stage1.sync import shift_audio

    german, note = _real_subject("German_20s", scratch / "late")
    if german is None:
        return None, note
    audio, rate = sf.read(german / "audio.wav", dtype="float32")
    sf.write(german / "audio.wav", shift_audio(audio, -LATE_FRAMES), rate)
    return german, f"{note}, sound moved {LATE_FRAMES} frames late"


def _corpus_subject(name: str, scratch: Path) -> tuple[Path | None, str]:
    """A corpus training clip as a subject: from ``$TALKSTUDIO_SUBJECTS`` or preprocessed."""
    from benchmarks.common import SUBJECTS

    if (SUBJECTS / name / "subject.json").is_file():
        shutil.copytree(SUBJECTS / name, scratch / name, ignore=shutil.ignore_patterns("models"))
        return scratch / name, f"{SUBJECTS / name}"
    video = CORPUS / "train" / f"{name}.mp4"
    if not video.is_file():
        return None, f"skipped: no {SUBJECTS / name} and no {video}"
    from talkstudio.core.preprocess import preprocess
    from talkstudio.core.progress import run_job

    return run_job(preprocess(video, scratch / name)), f"preprocessed here from {video.name}"


def _eight_seconds(scratch: Path) -> Path | None:
    """German_20s.mp4 cut to its first 8 s and preprocessed."""
    from talkstudio.core.media import encode_mp4, iter_video_frames, load_audio
    from talkstudio.core.preprocess import preprocess
    from talkstudio.core.progress import run_job

    video = SHARED_DATA / "German_20s.mp4"
    if not video.is_file():
        return None
    frames = [f.rgb for f in iter_video_frames(video, fps=25, max_frames=EIGHT_S)]
    audio = load_audio(video)[: EIGHT_S * 640]
    cut = scratch / "German_8s.mp4"
    encode_mp4(cut, frames, audio, 16000, 25, crf=16)
    return run_job(preprocess(cut, scratch / "German_8s"))


def _copy(subject: Path, scratch: Path, tag: str) -> Path:
    dest = scratch / "runs" / f"{subject.name}-{tag}"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(subject, dest, ignore=shutil.ignore_patterns("models"))
    return dest


def _trained(subject: Path, scratch: Path, tag: str, **overrides: object) -> tuple[object, float]:
    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.infer import load_stage1
    from talkstudio.core.stage1.train import train_stage1

    work = _copy(subject, scratch, tag)
    cfg = Stage1Config.from_preset("preview", cpu_threads=1, **overrides)
    t0 = time.perf_counter()
    run_job(train_stage1(work, cfg, "cpu", resume=False))
    return load_stage1(work), time.perf_counter() - t0


def _prior_only(subject: Path, prior_dir: Path | None) -> tuple[object, float]:
    from talkstudio.core.stage1.prior import load_prior, prior_for_subject
    from talkstudio.core.subject import Subject

    t0 = time.perf_counter()
    model = prior_for_subject(Subject.open(subject), load_prior(prior_dir))
    return model, time.perf_counter() - t0


def _cross(model: object, drivers: list[Driver]) -> tuple[list[float], ...]:
    """Per driver: r at lag 0, the best r within ±5 frames, its lag, and r at lag 0 with the
    driver's own sound moved back in line with its picture (:attr:`Driver.offset`)."""
    from talkstudio.core.stage1.infer import predict
    from talkstudio.core.stage1.prior_train import opening_r, pearson
    from talkstudio.core.stage1.sync import shift_audio

    r0s, best, lags, in_line = [], [], [], []
    for d in drivers:
        pred = _opening(predict(model, d.audio))  # type: ignore[arg-type]
        true = _opening(d.points37)
        n = min(len(pred), len(true))
        m = d.tracked[:n]
        r0, lag, rb = opening_r(pred[:n][m], true[:n][m], 5)
        r0s.append(r0)
        best.append(rb)
        lags.append(float(lag))
        if d.offset:
            pred = _opening(predict(model, shift_audio(d.audio, d.offset)))  # type: ignore[arg-type]
            r0 = pearson(pred[:n][m], true[:n][m])
        in_line.append(r0)
    return r0s, best, lags, in_line


def _render_space(model: object, subject_name: str, scratch: Path) -> list[tuple[str, str]]:
    """``(clip, the shared check's output line)`` for each 25-fps test clip rendered by the
    trained subject ``$TALKSTUDIO_SUBJECTS/subject_name`` driven through ``model``; [] when
    that subject has no trained head and torso, or ``LIPSYNC_RENDER=0``."""
    import subprocess
    import sys

    from benchmarks.common import SUBJECTS
    from talkstudio.core.engine import Engine
    from talkstudio.core.media import probe
    from talkstudio.core.progress import run_job
    from talkstudio.core.subject import Subject

    check = SHARED_DATA.parent / "checks" / "mouth_sync.py"
    trained = SUBJECTS / subject_name
    if os.environ.get("LIPSYNC_RENDER") == "0" or not check.is_file():
        return []
    if not (trained / "subject.json").is_file():
        return []
    subject = Subject.open(trained)
    if not (subject.has_model("head") and subject.has_model("torso")):
        return []
    engine = Engine.open(trained, device="cpu")
    engine.stage1 = model
    out = []
    for clip in sorted((CORPUS / "test").glob("*.mp4")):
        if abs(probe(clip).fps - 25.0) > 0.01:
            continue
        engine.drive(clip)
        render = scratch / f"render-{clip.stem}.mp4"
        run_job(engine.export(render, size=RENDER_SIZE, framing="crop"))
        line = (
            subprocess.run(
                [sys.executable, str(check), str(clip), str(render)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        out.append((clip.stem, line))
    return out


def _check_value(line: str, key: str) -> float:
    """``key=value`` of the shared check's output line."""
    for word in line.split():
        if word.startswith(key + "="):
            return float(word.split("=", 1)[1])
    raise ValueError(f"{key} not in {line!r}")


def _silence(model: object, subject: Path, driver: Driver) -> float:
    """Mean predicted opening on silent frames above the closed mouth, in opening ranges."""
    from talkstudio.core.landmarks import STAGE1_POINTS
    from talkstudio.core.stage1.infer import predict
    from talkstudio.core.stage1.prior import closed_mouth, silent_frames
    from talkstudio.core.subject import Subject

    s = Subject.open(subject)
    own = np.asarray(s.tracks.lm_world)[: s.meta.train_frames][:, list(STAGE1_POINTS)]
    opening = _opening(own)
    span = float(np.percentile(opening, 95) - np.percentile(opening, 5))
    closed = float(_opening(closed_mouth(own)[None])[0])
    gap = np.zeros(16000, np.float32)
    half = (len(driver.audio) // 2) // 640 * 640
    audio = np.concatenate([gap, driver.audio[:half], gap, driver.audio[half:], gap])
    pred = _opening(predict(model, audio))  # type: ignore[arg-type]
    silent = silent_frames(audio, len(pred))
    return float((pred[silent].mean() - closed) / max(span, 1e-9))


def _own_rest(model: object, german: Path | None) -> float | None:
    """Opening r of the 8-s model on German_20s's frames 200-500 (same person, unseen audio)."""
    from talkstudio.core.landmarks import STAGE1_POINTS
    from talkstudio.core.stage1.infer import predict
    from talkstudio.core.stage1.prior_train import pearson
    from talkstudio.core.subject import Subject

    if german is None:
        return None
    g = Subject.open(german)
    audio = g.load_audio()[EIGHT_S * 640 :]
    pred = _opening(predict(model, audio))  # type: ignore[arg-type]
    true = _opening(np.asarray(g.tracks.lm_world)[EIGHT_S:][:, list(STAGE1_POINTS)])
    n = min(len(pred), len(true))
    return pearson(pred[:n], true[:n])


def _speed(model: object, drivers: list[Driver], seconds: float, reps: int) -> list[float]:
    """× real time of ``predict`` on ``seconds`` of the drivers' speech (after one untimed call
    that loads the decoders); fresh noise makes every call's audio new to the phonetic front
    end's cache (a seeded noise would repeat across rows and time cache hits)."""
    from talkstudio.core.stage1.infer import predict

    audio = np.concatenate([d.audio for d in drivers])
    n = int(seconds * 16000)
    audio = np.tile(audio, int(np.ceil(n / len(audio))))[:n]
    rng = np.random.default_rng()
    predict(model, audio[:16000])  # type: ignore[arg-type]
    out = []
    for _ in range(reps):
        noisy = audio + 1e-3 * rng.standard_normal(n).astype(np.float32)
        t0 = time.perf_counter()
        predict(model, noisy)  # type: ignore[arg-type]
        out.append(seconds / (time.perf_counter() - t0))
    return out


def _rows(subject_name: str, quick: bool) -> list[tuple[str, Callable[..., tuple[object, float]]]]:
    from talkstudio.core.stage1.prior import prior_dir

    over = QUICK_TRAINING if quick else {}
    rows: list[tuple[str, Callable[..., tuple[object, float]]]] = [
        ("mel, from scratch", lambda s, w: _trained(s, w, "scratch", init="scratch", **over)),
    ]
    priors = [("shipped prior", None)] if (prior_dir() / "config.json").is_file() else []
    extra = os.environ.get("TALKSTUDIO_PRIORS")
    if extra:
        priors += [(f"prior {p.name}", p) for p in sorted(Path(extra).iterdir()) if p.is_dir()]
    for label, path in priors:
        ppath = "" if path is None else str(path)
        rows.append((f"{label} only", lambda s, w, p=path: _prior_only(s, p)))
        for suffix, sync in (("", True), (", sound as recorded", False)):
            rows.append(
                (
                    f"{label} + fine-tune{suffix}",
                    lambda s, w, p=ppath, t=label + suffix, y=sync: _trained(
                        s, w, f"ft-{t}", init="prior", prior_path=p, sync_audio=y, **over
                    ),
                )
            )
    if subject_name == "German_20s" or quick:
        for feats in ("phonetic", "mel+phonetic"):
            rows.append(
                (
                    f"{feats}, from scratch",
                    lambda s, w, f=feats: _trained(
                        s, w, f"scratch-{f}", init="scratch", audio_features=f, **over
                    ),
                )
            )
    keep = os.environ.get("LIPSYNC_ROWS")  # e.g. "scratch" or "prior": rows naming any of them
    if keep:
        rows = [r for r in rows if any(k in r[0] for k in keep.split(","))]
    return rows


def run(ctx: Context) -> list[Measure]:
    from talkstudio.core.stage1.metrics import evaluate
    from talkstudio.core.subject import Subject

    threads = set_threads(1)
    measures: list[Measure] = []
    scratch = Path(tempfile.mkdtemp(prefix="talkstudio_lipsync_"))
    try:
        drivers, dnote = _drivers(ctx.quick, scratch)
        subjects, german = _subjects(ctx.quick, scratch)
        for name, subject, snote in subjects:
            if subject is None:
                measures.append(Measure(f"{name}", "-", [float("nan")], f"skipped: {snote}"))
                continue
            for label, make in _rows(name, ctx.quick):
                model, seconds = make(subject, scratch)
                tag = f"{name} | {label}"
                r0, rb, lags, in_line = _cross(model, drivers)
                own = evaluate(model, Subject.open(subject))
                measures += [
                    Measure(f"{tag} | cross r", "r", r0, f"{dnote}; lag 0; {snote}"),
                    Measure(f"{tag} | cross r best lag", "r", rb, "best within ±5 frames"),
                    Measure(f"{tag} | best lag", "frames", lags, "+: prediction late"),
                    Measure(
                        f"{tag} | cross r, drivers in line",
                        "r",
                        in_line,
                        "lag 0, each driver's own sound moved back by its measured offset "
                        f"({', '.join(f'{d.offset:+.1f}' for d in drivers)} frames)",
                    ),
                    Measure(f"{tag} | own-voice val r", "r", [own.corr], f"{own.frames} frames"),
                    Measure(
                        f"{tag} | own-voice opening std / track",
                        "ratio",
                        [own.opening_ratio],
                        "1: the subject's own range",
                    ),
                    Measure(
                        f"{tag} | own-voice val LMD / mean baseline",
                        "px@512",
                        [own.lmd],
                        f"baseline {own.lmd_baseline:.3f} px, ratio {own.lmd_ratio:.3f}",
                    ),
                    Measure(
                        f"{tag} | silence opening",
                        "range",
                        [_silence(model, subject, drivers[0])],
                        "above closed mouth, target ≤ 0.1",
                    ),
                    Measure(f"{tag} | make", "s", [seconds], "training or fitting, wall"),
                    Measure(
                        f"{tag} | inference",
                        "x realtime",
                        _speed(model, drivers, ctx.pick(20.0, 2.0), min(ctx.reps, 3)),
                        f"front end + decoding, {threads} thread",
                    ),
                ]
                if name == "German_20s" and label.endswith(RENDER_ROWS) and not ctx.quick:
                    rendered = _render_space(model, name, scratch)
                    for clip, line in rendered:
                        measures.append(
                            Measure(
                                f"{tag} | render {clip[:24]} r",
                                "r",
                                [_check_value(line, "mouth_corr")],
                                f"{RENDER_SIZE}² crop re-tracked by checks/mouth_sync.py: {line}",
                            )
                        )
                    if rendered:
                        measures.append(
                            Measure(
                                f"{tag} | render r",
                                "r",
                                [_check_value(line, "mouth_corr") for _, line in rendered],
                                f"{len(rendered)} 25-fps test clips, median",
                            )
                        )
                if name == "German_8s":
                    rest = _own_rest(model, german)
                    if rest is not None:
                        measures.append(
                            Measure(f"{tag} | own voice 8-20 s r", "r", [rest], "unseen audio")
                        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return measures
