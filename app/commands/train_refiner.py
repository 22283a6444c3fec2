"""``talkstudio train refiner SUBJECT``: render the head once at low resolution, train the refiner
on crops at the subject's resolution, then score it on validation frames."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..cli import register_train_part
from ._training import train_part

if TYPE_CHECKING:
    from talkstudio.core.progress import Progress


def _shown(p: Progress, every: int) -> bool:
    from talkstudio.core.presets import TRAIN_STAGE

    if p.stage != TRAIN_STAGE["refiner"]:  # rendering the head's inputs: about ten lines
        return p.step == p.total or p.step % max(1, p.total // 10) == 0
    return p.step % every == 0 or p.step == p.total or not p.losses


def _train_refiner(args: argparse.Namespace) -> int:
    from talkstudio.core.refiner import RefinerConfig, train_refiner
    from talkstudio.core.refiner.evaluate import evaluate_refiner

    result = train_part(args, "refiner", RefinerConfig.from_preset, train_refiner, _shown)
    if result is None:
        return 2
    report = evaluate_refiner(args.subject, device=args.device)
    print(report.line())
    if report.strip is not None:
        path = report.save_strip(result.model_dir / "validation_strip.png")
        print(f"real | upscaled | refined strip: {path}")
    return 0


register_train_part("refiner", _train_refiner)
