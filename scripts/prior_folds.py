"""Cross-validate a stage-1 prior recipe over the corpus's training speakers (docs/prior.md
"A cross-validated yardstick").

    python scripts/prior_folds.py --subject DIR --out OUT [--folds 3] [--jobs 2] [-- OPTIONS]
    python scripts/prior_folds.py --compare OUT_A OUT_B

The training speakers are dealt into ``--folds`` folds (``speaker_folds``). For each fold,
``make_prior.py OPTIONS --fold I/K`` builds a prior on the other folds; the subject (a
preprocessed subject folder, e.g. German_20s) is fine-tuned from it with the ``preview`` preset,
and every clip of the fold drives it. Each clip's predicted mouth opening is correlated with the
clip's own tracked opening (lag 0) for three tracks: the prior alone (fitted to the subject),
the fine-tuned model alone, and the default blend of the two. The figures of every clip go to
``OUT/folds.json``; ``--compare`` pairs two recipes clip by clip (mean paired difference with a
bootstrap interval, and how many clips gain). A fold already done is not done again, so an
interrupted run resumes. The corpus's test split is never read.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from talkstudio.core.atomic import write_json
from talkstudio.core.stage1.corpus import CorpusClip, iter_corpus

SCRIPTS = Path(__file__).resolve().parent
CORPUS = SCRIPTS.parents[1] / "shared" / "data" / "corpus"
TRACKS = ("prior", "alone", "blend")
"""The tracks scored per clip: the prior fitted to the subject, the fine-tune, and the default
prediction (the fine-tune with the prior's and its linear part's shares mixed in)."""
SUBJECT_LINKS = ("frames", "masks")
"""Large folders of the subject that stage 1 does not read: linked, not copied."""


def training_clips(corpus: Path) -> list[CorpusClip]:
    return [c for c in iter_corpus(corpus, "train") if not isinstance(c, tuple)]


def _subject_copy(subject: Path, dest: Path) -> Path:
    """A copy of ``subject`` without its models, for one fold's fine-tune."""
    if (dest / "subject.json").is_file():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    skip = ("models", *SUBJECT_LINKS)
    shutil.copytree(subject, dest, ignore=shutil.ignore_patterns(*skip))
    for name in SUBJECT_LINKS:
        if (subject / name).exists():
            (dest / name).symlink_to((subject / name).resolve())
    return dest


def _opening_r(points: np.ndarray, clip: CorpusClip) -> float:
    from talkstudio.core.landmarks import STAGE1_POINTS, mouth_opening
    from talkstudio.core.stage1.metrics import to68
    from talkstudio.core.stage1.prior_train import pearson

    true = np.asarray(clip.tracks.lm_world, np.float64)[:, list(STAGE1_POINTS)]
    n = min(len(points), len(true))
    keep = clip.tracks.tracked[:n]
    pred = mouth_opening(to68(np.asarray(points[:n], np.float64)))
    return pearson(pred[keep], mouth_opening(to68(true[:n]))[keep])


def _tracks(model: Any, clip: CorpusClip) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fine-tuned model's and its fitted prior's raw points [T, 37, 3] for ``clip``'s audio
    (before blending, smoothing and silences), and the 16 kHz samples."""
    import torch

    from talkstudio.core.stage1.features import prepare_audio
    from talkstudio.core.stage1.infer import front_end_for, generate

    samples = prepare_audio(np.asarray(clip.tracks.audio, np.float32))
    rows = torch.from_numpy(front_end_for(model)(samples).astype(np.float32))[None]
    with torch.no_grad():
        own = model.to_points(generate(model, rows))[0].numpy()
        fitted = model.blend.prior.to_points(generate(model.blend.prior, rows))[0].numpy()
    return own, fitted, samples


def _fine_tuned(subject: Path) -> Any:
    from talkstudio.core.stage1.infer import load_stage1

    model = load_stage1(subject)
    if model.blend is None or model.closed_lm is None:
        raise SystemExit(
            f"{subject}: stage 1 was not fine-tuned from a prior (no prior.safetensors)"
        )
    return model


def score_clips(subject: Path, clips: list[CorpusClip]) -> dict[str, dict[str, float]]:
    """Mouth-opening r of each of :data:`TRACKS` for every clip driving ``subject``."""
    from talkstudio.core.stage1.infer import blended, finish_track

    model = _fine_tuned(subject)
    out: dict[str, dict[str, float]] = {}
    for clip in clips:
        own, fitted, samples = _tracks(model, clip)
        tracks = {
            "prior": fitted,
            "alone": own,
            "blend": blended(model, own, fitted, samples),
        }
        out[clip.name] = {
            name: round(_opening_r(finish_track(model, pts, samples), clip), 4)
            for name, pts in tracks.items()
        }
    return out


def sweep(
    runs: list[Path], corpus: Path, blends: list[float], linears: list[float], sigma: float | None
) -> int:
    """Score the finished folds of ``runs`` again over the network prior's share
    (``prior_blend``) and the linear part's (``linear_share``), inference settings both, without
    training anything (the linear part is taken from the fold's prior)."""
    from talkstudio.core.stage1.infer import blended, finish_track
    from talkstudio.core.stage1.linear_prior import LinearPrior

    clips = {c.name: c for c in training_clips(corpus)}
    rs: dict[tuple[int, int], list[float]] = {}
    for run in runs:
        for fold in load_run(run)["folds"]:
            folder = run / f"fold{fold['fold']}"
            model = _fine_tuned(folder / "subject")
            model.blend.linear = LinearPrior.load(folder / "prior")
            if model.blend.linear is None and any(w > 0 for w in linears):
                raise SystemExit(f"{folder}/prior has no linear part: make_prior.py --linear-only")
            for name in fold["clips"]:
                own, fitted, samples = _tracks(model, clips[name])
                for i, wb in enumerate(blends):
                    for j, wl in enumerate(linears):
                        if wb + wl >= 1:
                            continue
                        model.blend.weight, model.blend.linear_weight = wb, wl
                        mixed = blended(model, own, fitted, samples)
                        r = _opening_r(finish_track(model, mixed, samples, sigma), clips[name])
                        rs.setdefault((i, j), []).append(r)
    count = len(next(iter(rs.values())))
    print(f"mouth-opening r over {count} (run, clip) pairs, median (mean); rows: prior_blend, "
          "columns: linear_share")  # fmt: skip
    print("| prior_blend | " + " | ".join(f"{w:g}" for w in linears) + " |")
    print("|---" * (len(linears) + 1) + "|")
    for i, wb in enumerate(blends):
        cells = [
            f"{np.median(rs[(i, j)]):.3f} ({np.mean(rs[(i, j)]):.3f})" if (i, j) in rs else "–"
            for j in range(len(linears))
        ]
        print(f"| {wb:g} | " + " | ".join(cells) + " |")
    return 0


def run_fold(
    index: int,
    folds: int,
    out: Path,
    subject: Path,
    corpus: Path,
    options: list[str],
    finetune_steps: int = 0,
) -> dict[str, Any]:
    """Build fold ``index``'s prior, fine-tune the subject from it and score the held-out clips;
    the result is kept in ``OUT/foldI/result.json`` and read back when present."""
    import torch

    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import make_prior

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.prior_train import speaker_folds
    from talkstudio.core.stage1.train import train_stage1

    torch.set_num_threads(1)
    folder = out / f"fold{index + 1}"
    result_path = folder / "result.json"
    if result_path.is_file():
        return dict(json.loads(result_path.read_text()))
    t0 = time.monotonic()
    prior = folder / "prior"
    if not (prior / "model.safetensors").is_file():
        argv = [*options, "--fold", f"{index + 1}/{folds}", "--out", str(prior)]
        argv += ["--corpus", str(corpus), "--threads", "1"]
        if make_prior.main(argv) != 0:
            raise SystemExit(f"fold {index + 1}: make_prior.py {' '.join(argv)} failed")
    built = time.monotonic() - t0
    copy = _subject_copy(subject, folder / "subject")
    steps = {"steps": finetune_steps} if finetune_steps > 0 else {}
    config = Stage1Config.from_preset("preview", cpu_threads=1, prior_path=str(prior), **steps)
    run_job(train_stage1(copy, config, "cpu", resume=False))
    clips = training_clips(corpus)
    held_out = set(speaker_folds(clips, folds)[index])
    history = json.loads((prior / "config.json").read_text())["meta"]["prior"]["history"]
    result = {
        "fold": index + 1,
        "speakers": sorted(held_out),
        "prior_val_r": history[-1].get("val_r"),
        "clips": score_clips(copy, [c for c in clips if c.speaker in held_out]),
        "seconds": {"prior": round(built, 1), "total": round(time.monotonic() - t0, 1)},
    }
    write_json(result_path, result)
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    clips = {name: r for res in results for name, r in res["clips"].items()}
    summary: dict[str, Any] = {"clips": len(clips)}
    for track in TRACKS:
        rs = np.array([r[track] for r in clips.values()])
        summary[track] = {
            "median": round(float(np.median(rs)), 4),
            "mean": round(float(rs.mean()), 4),
        }
    return summary


def print_summary(name: str, summary: dict[str, Any]) -> None:
    print(f"\n{name}: {summary['clips']} held-out clips, mouth-opening r (lag 0)")
    print("| track | median | mean |\n|---|---|---|")
    for track in TRACKS:
        s = summary[track]
        print(f"| {track} | {s['median']:.3f} | {s['mean']:.3f} |")


def paired(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], track: str,
           resamples: int = 10000) -> dict[str, float]:  # fmt: skip
    """Clip-by-clip comparison of ``track`` between two runs (``b`` minus ``a``)."""
    names = sorted(set(a) & set(b))
    if not names:
        raise SystemExit("the two runs share no held-out clip: were they made with the same folds?")
    d = np.array([b[n][track] - a[n][track] for n in names])
    rng = np.random.default_rng(0)
    boot = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    lo, hi = np.percentile(boot, [5, 95])
    return {
        "clips": len(d),
        "mean": float(d.mean()),
        "median": float(np.median(d)),
        "lo": float(lo),
        "hi": float(hi),
        "gains": int((d > 0).sum()),
    }


def load_run(folder: Path) -> dict[str, Any]:
    path = folder / "folds.json"
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: run prior_folds.py --out {folder} first")
    return dict(json.loads(path.read_text()))


def compare(first: Path, second: Path) -> int:
    a, b = load_run(first), load_run(second)
    print(f"{second.name} against {first.name}, clip by clip (90 % bootstrap interval of the mean)")
    print("| track | median A | median B | mean difference (90 %) | clips gaining |")
    print("|---|---|---|---|---|")
    for track in TRACKS:
        p = paired(a["clips"], b["clips"], track)
        print(
            f"| {track} | {a['summary'][track]['median']:.3f} | {b['summary'][track]['median']:.3f}"
            f" | {p['mean']:+.3f} ({p['lo']:+.3f} … {p['hi']:+.3f}) | {p['gains']} of {p['clips']} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, options = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--subject", type=Path, help="a preprocessed subject folder to fine-tune")
    ap.add_argument("--out", type=Path, help="folder for the folds' priors, subjects and results")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1, help="folds run at once, one thread each")
    ap.add_argument(
        "--finetune-steps", type=int, default=0, help="the subject's fine-tune (0: the preset's)"
    )
    ap.add_argument("--sweep", type=Path, nargs="+", metavar="OUT", help="rescore finished runs")
    ap.add_argument("--blends", type=float, nargs="+", default=[0, 0.15, 0.3, 0.45])
    ap.add_argument("--linears", type=float, nargs="+", default=[0])
    ap.add_argument("--sigma", type=float, help="smoothing for --sweep (default: the model's)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("OUT_A", "OUT_B"))
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if args.sweep:
        return sweep(args.sweep, args.corpus, args.blends, args.linears, args.sigma)
    if args.subject is None or args.out is None:
        ap.error("--subject and --out are needed (or --compare OUT_A OUT_B)")
    if not (args.subject / "subject.json").is_file():
        ap.error(
            f"{args.subject} is not a subject folder (no subject.json): preprocess a video first"
        )
    from talkstudio.core.stage1.prior_train import speaker_folds

    folds = speaker_folds(training_clips(args.corpus), args.folds)
    recipe = {
        "options": options,
        "folds": [list(f) for f in folds],
        "subject": str(args.subject),
        "finetune_steps": args.finetune_steps,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    recipe_path = args.out / "recipe.json"
    if recipe_path.is_file() and json.loads(recipe_path.read_text()) != recipe:
        raise SystemExit(
            f"{args.out} holds a run with other options, folds or subject ({recipe_path}): "
            "give another --out, or delete it to start over"
        )
    write_json(recipe_path, recipe)
    for i, fold in enumerate(folds):
        print(f"fold {i + 1}: {', '.join(fold)}", flush=True)
    work = [
        (i, args.folds, args.out, args.subject, args.corpus, options, args.finetune_steps)
        for i in range(args.folds)
    ]
    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            results = list(pool.map(run_fold, *zip(*work)))
    else:
        results = [run_fold(*w) for w in work]
    clips = {name: r for res in results for name, r in res["clips"].items()}
    summary = summarise(results)
    write_json(args.out / "folds.json", {"recipe": recipe, "summary": summary, "clips": clips,
                                         "folds": results})  # fmt: skip
    print_summary(args.out.name, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
