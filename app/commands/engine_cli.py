"""``talkstudio render`` and ``talkstudio eval``: the engine from the command line."""

from __future__ import annotations

import argparse
import sys
import time

from ..cli import register


def _render(args: argparse.Namespace) -> int:
    from talkstudio.core.edit import Edits
    from talkstudio.core.engine import Engine
    from talkstudio.core.framing import scaled_size
    from talkstudio.core.progress import run_job
    from talkstudio.core.project import Project

    from ..progress_bar import ProgressBar

    edits = Project.load(args.project).edits if args.project else Edits()
    for name, value in (
        ("left_eye", args.alpha_left_eye),
        ("right_eye", args.alpha_right_eye),
        ("mouth", args.alpha_mouth),
    ):
        if value is not None:  # a constant value overrides the project's keyframes
            edits.track(name).keys.clear()
            edits.track(name).set(0, value)
    if args.ray is not None and args.workers > 1:
        print(
            "--workers and --ray exclude each other: Ray decides where tasks run", file=sys.stderr
        )
        return 2
    t0 = time.perf_counter()
    engine = Engine.open(args.subject)
    engine.drive(args.audio)
    t_drive = time.perf_counter() - t0
    framing = engine.framing(args.framing)
    if framing.notice:
        print(f"note: {framing.notice}", file=sys.stderr)
    job = engine.export(
        args.out,
        edits,
        size=args.size,
        workers=args.workers,
        ray=args.ray,
        framing=framing.kind,
        height=args.height,
    )
    path = run_job(job, ProgressBar())
    total = time.perf_counter() - t0
    n = engine.num_frames
    rows = args.height if framing.kind == "source" else None
    width, height = scaled_size(*framing.size(args.size), rows)
    shape = f"{width}x{height} (the source's framing, rendered at {args.size}²)"
    print(
        f"wrote {path}: {n} frames at "
        f"{shape if framing.kind == 'source' else f'{args.size}²'} with sound; stage 1 + setup "
        f"{t_drive:.1f} s, total {total:.1f} s ({(total - t_drive) / max(n, 1) * 1000:.0f} "
        "ms/frame)"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from talkstudio.core.atomic import write_json
    from talkstudio.core.evaluate import evaluate_subject, format_report
    from talkstudio.core.progress import run_job

    from ..progress_bar import ProgressBar

    if args.frames is not None and args.frames < 1:
        print(f"--frames must be at least 1, got {args.frames}", file=sys.stderr)
        return 2
    report = run_job(evaluate_subject(args.subject, frames=args.frames), ProgressBar())
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from talkstudio.core.demo import ensure_demo_job
    from talkstudio.core.progress import run_job

    from ..cli import _HANDLERS
    from ..progress_bar import ProgressBar

    subject = run_job(ensure_demo_job(), ProgressBar())
    if args.render is None:
        args.target = str(subject)
        return _HANDLERS["studio"](args)
    from talkstudio.core.engine import Engine

    engine = Engine.open(subject)
    engine.drive(engine.subject.load_audio())
    path = run_job(engine.export(args.render, size=256), ProgressBar())
    print(f"wrote {path}: the demo subject speaking its own audio, {engine.num_frames} frames")
    return 0


register("render", _render)
register("demo", _demo)
register("eval", _eval)
