"""``talkstudio studio [target]``: the desktop studio (also what ``talkstudio`` alone runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import register


def _studio(args: argparse.Namespace) -> int:
    from talkstudio.core.errors import TalkstudioError

    target = getattr(args, "target", None)
    if target and not Path(target).exists():
        raise TalkstudioError(
            f"{target} does not exist; give a subject folder or a .talkproj project"
        )
    from ..studio import run

    return run(target)


register("studio", _studio)
