"""``talkstudio train stage1 SUBJECT``: train the audio → landmarks Transformer of a subject."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..cli import register_train_part
from ._training import train_part

if TYPE_CHECKING:
    from talkstudio.core.progress import Progress


def _shown(p: Progress, every: int) -> bool:
    """The first record, each validation and the last step."""
    return p.step == 0 or "val_lmd" in p.metrics or p.step == p.total


def _train_stage1(args: argparse.Namespace) -> int:
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.train import train_stage1

    def from_preset(name: str, **overrides: object) -> Stage1Config:
        if getattr(args, "from_scratch", False):  # else: fine-tune the shipped speaker prior
            overrides["init"] = "scratch"
        return Stage1Config.from_preset(name, **overrides)

    result = train_part(args, "stage1", from_preset, train_stage1, _shown)
    if result is None:
        return 2
    if result.scores is not None:
        s = result.scores
        print(
            f"validation ({s.frames} frames, free-running): LMD {s.lmd:.2f} px at 512² "
            f"(mean-landmark baseline {s.lmd_baseline:.2f} px), mouth-opening correlation "
            f"{s.corr:.2f}"
        )
    return 0


register_train_part("stage1", _train_stage1)
