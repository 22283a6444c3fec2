"""``talkstudio synth``: write a synthetic subject (an MP4 as a camera would record it, plus a
subject folder with ground-truth tracks)."""

from __future__ import annotations

import argparse

from ..cli import register


def _synth(args: argparse.Namespace) -> int:
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    cfg = SynthConfig(seed=args.seed, seconds=args.seconds, size=args.size)
    result = write_synthetic(args.out, cfg)
    print(f"wrote {result.video_path} and subject {result.subject_dir}")
    return 0


register("synth", _synth)
