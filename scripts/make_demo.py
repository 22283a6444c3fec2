"""Build the built-in demo subject's shipped files in ``resources/demo/``.

    python -m scripts.make_demo [--seconds 12] [--size 256] [--work DIR] [--parts head ...]

Makes a synthetic subject, trains stage 1, the head NeRF and the torso UNet with the preview
preset (narrow enough that the fp16 weights total at most 20 MB), and writes only the weights
(fp16 safetensors) and configs plus the generator's config. ``--parts`` retrains only those parts
and keeps the shipped files of the others (the three parts train independently). Frames and audio are regenerated
from the seed on first use (``talkstudio.core.demo``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from talkstudio.core.demo import DEMO_PARTS
from talkstudio.core.head.config import HeadConfig
from talkstudio.core.head.train import train_head
from talkstudio.core.progress import Progress, run_job
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.train import train_stage1
from talkstudio.core.synthetic import SynthConfig, write_synthetic
from talkstudio.core.torso.config import TorsoConfig
from talkstudio.core.torso.train import train_torso

OUT = Path(__file__).resolve().parents[1] / "resources" / "demo"
LIMIT_MB = 20.0


def _log(every: int):
    def show(p: Progress) -> None:
        if p.step % every == 0 or p.step == p.total:
            losses = " ".join(f"{k}={v:.4g}" for k, v in p.losses.items())
            print(f"[{p.stage}] {p.step}/{p.total} {losses} {p.message}", flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--head-steps", type=int, default=None, help="override the preview preset")
    ap.add_argument("--torso-steps", type=int, default=None)
    ap.add_argument("--stage1-steps", type=int, default=None)
    ap.add_argument("--work", type=Path, help="keep the training subject here")
    ap.add_argument("--out", type=Path, default=OUT, help=f"where the demo goes (default {OUT})")
    ap.add_argument(
        "--parts", nargs="+", choices=DEMO_PARTS, default=list(DEMO_PARTS),
        help="train only these parts; the others keep their shipped files",
    )  # fmt: skip
    args = ap.parse_args(argv)
    out: Path = args.out
    partial = set(args.parts) != set(DEMO_PARTS)
    if partial and not (out / "demo.json").is_file():
        ap.error(f"--parts needs the shipped demo in {out} for the parts it does not train")
    synth = SynthConfig(seed=args.seed, seconds=args.seconds, size=args.size, name="demo")
    work = args.work or Path(tempfile.mkdtemp(prefix="talkstudio-demo-"))
    t0 = time.perf_counter()
    subject = Path(work) / "subject"
    if not (subject / "tracks.npz").is_file():
        subject = write_synthetic(work, synth, video=False).subject_dir
    print(f"synthetic subject {subject} ({time.perf_counter() - t0:.0f} s)", flush=True)
    over = lambda steps: {} if steps is None else {"steps": steps}  # noqa: E731
    timings = {}
    if partial:
        timings = json.loads((out / "demo.json").read_text())["train_seconds"]
    for part, job in (
        (
            "stage1",
            lambda: train_stage1(
                subject, Stage1Config.from_preset("preview", **over(args.stage1_steps))
            ),
        ),
        (
            "head",
            lambda: train_head(subject, HeadConfig.from_preset("preview", **over(args.head_steps))),
        ),
        (
            "torso",
            lambda: train_torso(
                subject, TorsoConfig.from_preset("preview", base_width=16, **over(args.torso_steps))
            ),
        ),
    ):
        if part not in args.parts:
            continue
        t = time.perf_counter()
        run_job(job(), _log(100))
        timings[part] = round(time.perf_counter() - t, 1)
        print(f"trained {part} in {timings[part]} s", flush=True)
    total = 0
    for part in DEMO_PARTS:
        src, dst = subject / "models" / part, out / part
        if part not in args.parts:
            total += (dst / "model.safetensors").stat().st_size
            continue
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        state = load_file(str(src / "model.safetensors"))
        half = {
            k: v.half() if v.is_floating_point() and v.dtype == torch.float32 else v
            for k, v in state.items()
        }
        save_file(half, str(dst / "model.safetensors"))
        shutil.copyfile(src / "config.json", dst / "config.json")
        total += (dst / "model.safetensors").stat().st_size
    (out / "demo.json").write_text(
        json.dumps({"synth": asdict(synth), "train_seconds": timings}, indent=2) + "\n"
    )
    mb = total / 2**20
    print(f"demo weights: {mb:.1f} MB in {out} (limit {LIMIT_MB} MB)")
    return 0 if mb <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
