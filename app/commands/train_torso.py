"""``talkstudio train torso SUBJECT``: train the torso UNet, then score it on validation frames."""

from __future__ import annotations

import argparse
import sys

from ..cli import register_train_part


def _train_torso(args: argparse.Namespace) -> int:
    from talkstudio.core.progress import Progress, run_job
    from talkstudio.core.torso import TorsoConfig, evaluate_torso, train_torso

    overrides = {"steps": args.steps} if args.steps is not None else {}
    try:
        config = TorsoConfig.from_preset(args.preset, **overrides)
    except ValueError as exc:
        print(f"talkstudio train torso: {exc}", file=sys.stderr)
        return 2
    every = max(1, config.steps // 20)

    def show(p: Progress) -> None:
        if p.stage != "train torso" and p.step != p.total:
            return  # loading frames: only say when done
        if p.step % every == 0 or p.step == p.total or "training frames" in p.message:
            print(f"[{p.stage}] {p.step}/{p.total} {p.message}", flush=True)

    result = run_job(train_torso(args.subject, config, args.device), show)
    print(f"saved {result.model_dir} ({result.steps} steps, {result.seconds:.1f} s this run)")
    report = evaluate_torso(args.subject, result.model_dir, "val", args.device)
    s = report.summary()
    print(
        f"validation ({len(report.frames)} frames at {report.image_size}²): "
        f"PSNR {s['psnr_unet']:.2f} dB (baseline {s['psnr_baseline']:.2f} dB); "
        f"{report.seam_px}-px seam band error {s['seam_mae_unet']:.2f} levels "
        f"(baseline {s['seam_mae_baseline']:.2f})"
    )
    return 0


register_train_part("torso", _train_torso)
