"""Build the shipped stage-1 speaker prior in ``resources/prior/`` (docs/prior.md).

    python scripts/make_prior.py [--corpus ../shared/data/corpus] [--steps 3000] [--out DIR]
    python scripts/make_prior.py --fold 1/3 --out DIR   # one fold of scripts/prior_folds.py

Tracks the corpus's ``train/`` clips once (cached in the user's cache folder, never in the
project), normalises every speaker's landmarks, augments the audio, trains the stage-1 network
on all of it with one torch thread, validates on the held-out training speakers
(``--val-speakers``, or the speakers of fold I of K with ``--fold I/K``) and writes fp16 safetensors + ``config.json`` (the recipe, the speakers,
the validation history) to ``--out``. The ``test/`` clips are never read here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from talkstudio.core.atomic import write_json
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.corpus import CorpusClip, iter_corpus
from talkstudio.core.stage1.features import AudioFrontEnd
from talkstudio.core.stage1.linear_prior import LinearPrior
from talkstudio.core.stage1.prior_train import (
    PriorRecipe,
    fit_linear,
    linear_val_r,
    prepare_clips,
    save_prior,
    speaker_folds,
    speaker_norms,
    train_prior,
)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "resources" / "prior"
CORPUS = REPO.parent / "shared" / "data" / "corpus"
VAL_SPEAKERS = (
    "MRzzm__DINet__dinet_test19",
    "OpenTalker__video-retalking__5",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS__00098",
)
"""Training-split speakers held out for validation (to camera, interview; woman, two men)."""
LIMIT_MB = 15.0


def parse_fold(text: str) -> tuple[int, int]:
    """``"I/K"`` (fold I of K, counted from 1) as ``(I - 1, K)``."""
    try:
        i, k = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fold takes I/K, e.g. 1/3, got {text!r}") from None
    if not 1 <= i <= k or k < 2:
        raise argparse.ArgumentTypeError(f"--fold {text}: need 1 <= I <= K and K >= 2")
    return i - 1, k


def add_linear(out: Path, linear: LinearPrior, meta: dict[str, object], clips: list[str]) -> int:
    """Put ``linear`` beside the prior in ``out`` and record it in the prior's config.json."""
    path = out / "config.json"
    if not path.is_file():
        print(f"--linear-only: {out} holds no prior (no config.json); build one first")
        return 1
    config = json.loads(path.read_text())
    prior = config["meta"]["prior"]
    if sorted(prior["clips"]) != clips:
        print(f"--linear-only: the prior in {out} was trained on other clips; give the same split")
        return 1
    prior["linear"] = meta
    linear.save(out)
    write_json(path, config)
    print(f"linear part added to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--features", default="mel", help="the stage-1 audio front end")
    ap.add_argument("--steps", type=int, default=PriorRecipe.steps)
    ap.add_argument("--batch", type=int, default=PriorRecipe.batch)
    ap.add_argument("--lr", type=float, default=PriorRecipe.lr)
    ap.add_argument("--variants", type=int, default=PriorRecipe.variants)
    ap.add_argument("--window", type=int, default=PriorRecipe.window)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-speakers", nargs="*", default=list(VAL_SPEAKERS))
    ap.add_argument(
        "--fold",
        type=parse_fold,
        help="I/K: hold out the speakers of fold I of K instead of --val-speakers",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mouth-weight", type=float, default=PriorRecipe.mouth_weight)
    ap.add_argument("--input-noise", type=float, default=PriorRecipe.input_noise)
    ap.add_argument("--rollout-passes", type=int, default=PriorRecipe.rollout_passes)
    ap.add_argument("--audio-kernel", type=int, default=Stage1Config.audio_kernel)
    ap.add_argument("--conv-layers", type=int, default=Stage1Config.audio_conv_layers)
    ap.add_argument(
        "--lattice-scale",
        type=float,
        default=Stage1Config.phone_lattice_scale,
        help="phone_lattice_scale: phone posteriors from the phone lattice (0: the best path)",
    )
    ap.add_argument(
        "--linear-only",
        action="store_true",
        help="fit only the linear part (linear.safetensors) into the prior already in --out",
    )
    ap.add_argument("--clip-norm", action="store_true", help="mel_clip_norm (per-clip CMN)")
    ap.add_argument(
        "--gain-jitter-db",
        type=float,
        default=PriorRecipe.gain_jitter_db,
        help="loudness jitter of the log-mel rows per window, ± dB (0: none)",
    )
    ap.add_argument(
        "--ppg-scale",
        type=float,
        default=Stage1Config.ppg_scale,
        help="ppg_scale: append the acoustic model's phone posteriors at this scale (0: none)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.monotonic()

    clips: list[CorpusClip] = []
    skipped: dict[str, str] = {}
    for c in iter_corpus(args.corpus, "train"):
        if isinstance(c, tuple):
            skipped[c[0]] = c[1]
            print(f"skipped {c[0]}: {c[1]}", flush=True)
        else:
            clips.append(c)
    print(f"{len(clips)} clips tracked ({time.monotonic() - t0:.0f} s)", flush=True)
    if args.fold is None:
        val_names = set(args.val_speakers)
    else:
        held_out = set(speaker_folds(clips, args.fold[1])[args.fold[0]])
        val_names = {c.name for c in clips if c.speaker in held_out}
    train_clips = [c for c in clips if c.name not in val_names]
    val_clips = [c for c in clips if c.name in val_names]
    norms = speaker_norms(clips)
    t1 = time.monotonic()
    linear = fit_linear(train_clips, norms)
    linear_meta = {
        "scale": linear.scale,
        "context": linear.context,
        "stride": linear.stride,
        "val_r": round(linear_val_r(linear, val_clips, norms), 4),
        "seconds": round(time.monotonic() - t1, 1),
    }
    print(f"linear part: {json.dumps(linear_meta)}", flush=True)
    if args.linear_only:
        return add_linear(args.out, linear, linear_meta, sorted(c.name for c in train_clips))
    given = ("steps", "batch", "lr", "window", "variants", "seed", "mouth_weight", "input_noise")
    given += ("rollout_passes", "gain_jitter_db")
    recipe = PriorRecipe(
        **{name: getattr(args, name) for name in given}, val_speakers=tuple(sorted(val_names))
    )
    config = Stage1Config(
        audio_features=args.features,
        window=args.window,
        seed=args.seed,
        mel_clip_norm=args.clip_norm,
        phone_lattice_scale=args.lattice_scale,
        ppg_scale=args.ppg_scale,
        audio_kernel=args.audio_kernel,
        audio_conv_layers=args.conv_layers,
        mouth_weight=args.mouth_weight,
    )
    front_end = AudioFrontEnd(config, allow_fallback=False)
    t1 = time.monotonic()
    train = prepare_clips(train_clips, norms, front_end, recipe)
    val = prepare_clips(val_clips, norms, front_end, recipe, augment=False)
    frames = sum(c.frames for c in train_clips)
    print(
        f"features: {len(train)} copies of {len(train_clips)} clips ({frames} frames clean), "
        f"{len(val)} validation clips ({time.monotonic() - t1:.0f} s)",
        flush=True,
    )
    poses = {c.name: (c.tracks.pose, c.tracks.K, c.tracks.size) for c in val_clips}
    t2 = time.monotonic()
    model, history = train_prior(config, recipe, train, val, norms, poses, front_end)
    train_s = time.monotonic() - t2
    meta = {
        "recipe": recipe.to_dict(),
        "speakers": sorted({c.speaker for c in train_clips}),
        "clips": sorted(c.name for c in train_clips),
        "train_frames": frames,
        "skipped": skipped,
        "history": history,
        "train_seconds": round(train_s, 1),
        "threads": args.threads,
        "fold": None if args.fold is None else [args.fold[0] + 1, args.fold[1]],
        "linear": linear_meta,
    }
    save_prior(model, args.out, meta)
    linear.save(args.out)
    mb = (args.out / "model.safetensors").stat().st_size / 2**20
    print(json.dumps(history[-1]), flush=True)
    print(f"prior: {mb:.2f} MB in {args.out} (limit {LIMIT_MB} MB), trained in {train_s:.0f} s")
    return 0 if mb <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
