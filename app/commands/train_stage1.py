"""``talkstudio train stage1 SUBJECT``: train the audio → landmarks Transformer of a subject."""

from __future__ import annotations

import argparse
import sys

from ..cli import register_train_part


def _train_stage1(args: argparse.Namespace) -> int:
    from talkstudio.core.progress import Eta, Progress, run_job
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.train import train_stage1

    overrides = {"steps": args.steps} if args.steps else {}
    config = Stage1Config.from_preset(args.preset, **overrides)
    eta = Eta()

    def show(p: Progress) -> None:
        if "val_lmd" in p.losses or p.step == 0:
            left = eta.remaining(p.step, p.total)
            tail = f", about {left:.0f} s left" if left is not None else ""
            values = ", ".join(f"{k} {v:.4g}" for k, v in p.losses.items())
            print(f"stage1 {p.step}/{p.total}: {values or p.message}{tail}", flush=True)

    result = run_job(train_stage1(args.subject, config, device=args.device), show)
    line = f"stage1 trained to step {result.steps} in {result.seconds:.0f} s → {result.model_dir}"
    if result.scores is not None:
        s = result.scores
        line += (
            f"\nvalidation ({s.frames} frames, free-running): LMD {s.lmd:.2f} px at 512² "
            f"(mean-landmark baseline {s.lmd_baseline:.2f} px), mouth-opening correlation "
            f"{s.corr:.2f}"
        )
    print(line, file=sys.stdout)
    return 0


register_train_part("stage1", _train_stage1)
