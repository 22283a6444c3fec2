"""``talkstudio preprocess VIDEO --out SUBJECT [--size 512] [--focal PIXELS]``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..cli import register

if TYPE_CHECKING:
    from talkstudio.core.progress import Progress


class _Printer:
    """Prints a line when a stage starts, every tenth of a stage, and each message change."""

    def __init__(self) -> None:
        self.stage = ""
        self.tenth = -1
        self.message = ""

    def __call__(self, p: Progress) -> None:
        stage, step, total, message = p.stage, p.step, p.total, p.message
        tenth = int(10 * step / total) if total else 0
        if stage != self.stage or tenth != self.tenth or message != self.message:
            count = f" {step}/{total}" if total > 1 else ""
            print(f"[{stage}]{count} {message}".rstrip(), flush=True)
        self.stage, self.tenth, self.message = stage, tenth, message


def _preprocess(args: argparse.Namespace) -> int:
    import json

    from talkstudio.core.preprocess import preprocess
    from talkstudio.core.preprocess.writeout import REPORT_NAME, SHEET_NAME
    from talkstudio.core.progress import run_job

    out = run_job(preprocess(args.video, args.out, size=args.size, focal=args.focal), _Printer())
    report = json.loads((out / REPORT_NAME).read_text("utf-8"))
    rep = report["reprojection_px"]
    print(
        f"subject written to {out}: {report['frames']} frames, "
        f"{report['frames_tracked']} tracked, focal {report['focal_px']:.0f} px "
        f"({report['focal_decided_by']}), reprojection {rep['mean']:.2f} px mean / "
        f"{rep['max']:.2f} px max, {report['timing_s']['total']:.1f} s"
    )
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"report: {out / REPORT_NAME}\ncontact sheet: {out / SHEET_NAME}")
    return 0


register("preprocess", _preprocess)
