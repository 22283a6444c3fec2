"""The ``talkstudio`` command line.

Subcommands import their heavy dependencies only when they run, so ``talkstudio --help`` is fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]
_HANDLERS: dict[str, Handler] = {}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a command unwinds as on Ctrl-C: atomic writes
    (an export's MP4, checkpoints) remove their temporaries on the way out."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of threads (1 or more)")
    return value


def _ray_option(parser: argparse.ArgumentParser, what: str, then: str) -> None:
    """``--ray ADDRESS``: ``what`` on a Ray cluster, and ``then``."""
    parser.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help=f"{what}: auto (the cluster of `ray start --head` or $RAY_ADDRESS), local (a new "
        f"one on this machine only) or HOST:PORT; {then}. Needs Ray: "
        'pip install "ray==2.60.*"',
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkstudio",
        description="Talkstudio: train a talking head from video, drive it with speech, "
        "edit eyes and mouth, export MP4. Without a subcommand the studio opens.",
    )
    threads_help = (
        "CPU threads for torch (default: torch's choice, one per core). Use 1 when other "
        "jobs share the cores: oversubscribed, two threads run many times slower than one"
    )
    # --threads goes before the subcommand (a global option) or after it; the subcommands'
    # copy leaves the namespace alone unless given, so it never resets the global value
    parser.add_argument("--threads", type=_positive_int, metavar="N", help=threads_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--threads", type=_positive_int, metavar="N", default=argparse.SUPPRESS, help=threads_help
    )

    p = sub.add_parser("studio", parents=[common], help="open the desktop studio (the default)")
    p.add_argument("target", nargs="?", help="a subject folder or .talkproj project to open")

    p = sub.add_parser(
        "preprocess", parents=[common], help="turn a video of one speaker into a subject folder"
    )
    p.add_argument("video")
    p.add_argument("--out", required=True, help="subject folder to create")
    p.add_argument("--size", type=int, default=512, help="side of the square crop in pixels")
    p.add_argument("--focal", type=float, help="focal length in pixels at --size (else estimated)")

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a part of a subject: stage1, head, torso or refiner (the 512² head path)",
    )
    p.add_argument("part", choices=["stage1", "head", "torso", "refiner"])
    p.add_argument("subject")
    p.add_argument("--preset", choices=["preview", "paper"], default="preview")
    p.add_argument("--steps", type=int, help="override the preset's number of steps")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="stage1: train from random weights instead of fine-tuning the shipped speaker prior",
    )
    _ray_option(
        p,
        "train in a Ray actor",
        "progress and checkpoints come back into the subject, and a lost worker resumes from the "
        "last checkpoint",
    )

    p = sub.add_parser(
        "render", parents=[common], help="drive a subject with speech and export an MP4"
    )
    p.add_argument("--subject", required=True)
    p.add_argument("--audio", required=True)
    p.add_argument("--project", help="a .talkproj with keyframed edits")
    p.add_argument("--alpha-left-eye", type=float)
    p.add_argument("--alpha-right-eye", type=float)
    p.add_argument("--alpha-mouth", type=float)
    p.add_argument(
        "--size",
        type=int,
        default=256,
        help="side of the rendered square in pixels (default 256); with --framing source it is "
        "pasted back into the source video's frames",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--framing",
        choices=("source", "crop"),
        help="source: the source video's own frame size and framing, the render pasted back "
        "(default for subjects made from a video); crop: the square crop as rendered "
        "(default for synthetic subjects, and when the source video is missing)",
    )
    p.add_argument(
        "--height",
        type=int,
        metavar="ROWS",
        help="with --framing source: scale the video to ROWS rows, the aspect kept "
        "(default: the source video's own size)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="render in N processes on this machine, each with its share of --threads "
        "(default 1: in this process)",
    )
    _ray_option(p, "render as tasks on a Ray cluster", "every worker reaches the subject's folder")

    p = sub.add_parser(
        "eval", parents=[common], help="evaluate a trained subject on its validation frames"
    )
    p.add_argument("subject")
    p.add_argument("--json", help="also write the report as JSON")
    p.add_argument(
        "--frames",
        type=int,
        metavar="N",
        help="score only N validation frames, evenly spaced (default: all)",
    )

    p = sub.add_parser("demo", parents=[common], help="open or render the built-in demo subject")
    p.add_argument("--render", metavar="OUT.mp4", help="render the demo to an MP4 instead")

    p = sub.add_parser(
        "synth", parents=[common], help="write a synthetic subject (video + ground-truth folder)"
    )
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--size", type=int, default=256)
    return parser


_TRAIN_PARTS: dict[str, Handler] = {}


def register(name: str, handler: Handler) -> None:
    """Install the handler of subcommand ``name``."""
    _HANDLERS[name] = handler


def register_train_part(part: str, handler: Handler) -> None:
    """Install the handler of ``talkstudio train PART``."""
    _TRAIN_PARTS[part] = handler


def _train(args: argparse.Namespace) -> int:
    return _TRAIN_PARTS[args.part](args)


_HANDLERS["train"] = _train


def main(argv: Sequence[str] | None = None) -> int:
    from . import commands  # noqa: F401  (registers the built subcommands)

    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "studio"
    if args.command is None:  # `talkstudio [--threads N]`: the studio, with the global options
        threads = args.threads
        args = parser.parse_args(["studio"])
        args.threads = threads
    from talkstudio.core.errors import TalkstudioError

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    # The studio quits on SIGTERM as Qt does; any other command unwinds as on Ctrl-C.
    opens_studio = command == "studio" or getattr(args, "render", "") is None
    on_term = None
    if not opens_studio and threading.current_thread() is threading.main_thread():
        on_term = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _HANDLERS[command](args)
    except TalkstudioError as exc:
        print(f"talkstudio {command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"talkstudio {command}: {what}; nothing half-written was kept", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


if __name__ == "__main__":
    # `python -m talkstudio.app.cli`: run the package's module, where the handlers register
    from talkstudio.app.cli import main as _main

    sys.exit(_main())
