"""``talkstudio train torso SUBJECT``: train the torso UNet, then score it on validation frames."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..cli import register_train_part
from ._training import train_part

if TYPE_CHECKING:
    from talkstudio.core.progress import Progress


def _shown(p: Progress, every: int) -> bool:
    from talkstudio.core.presets import TRAIN_STAGE

    if p.stage != TRAIN_STAGE["torso"] and p.step != p.total:
        return False  # loading frames: only say when done
    return p.step % every == 0 or p.step == p.total or "training frames" in p.message


def _train_torso(args: argparse.Namespace) -> int:
    from talkstudio.core.torso import TorsoConfig, evaluate_torso, train_torso

    result = train_part(args, "torso", TorsoConfig.from_preset, train_torso, _shown)
    if result is None:
        return 2
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
