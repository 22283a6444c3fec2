"""The ``.talkproj`` project file: which subject, which speech, the keyframed edits (every
channel of :class:`~talkstudio.core.edit.Edits` and the blink rate), export settings. JSON, versioned, written atomically; paths are stored relative to the project file
when they can be. The built-in demo subject is stored as ``"talkstudio:demo"`` (the demo, wherever
this installation builds it), never as its cache folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import atomic
from .demo import DEMO_REFERENCE, demo_target, is_demo_subject
from .edit import EditError, Edits
from .errors import TalkstudioError

PROJECT_FORMAT = "talkstudio.project"
PROJECT_VERSION = 2
"""2 added the brows, blink and head-motion channels and the blink rate to ``keyframes``;
version-1 projects open with those channels unedited."""
SUFFIX = ".talkproj"


class ProjectError(TalkstudioError):
    """A project file is missing, damaged or from a newer Talkstudio."""


@dataclass
class ExportSettings:
    """How the project exports."""

    size: int = 256
    """Side of the rendered square in pixels (the output's side with the crop framing)."""
    start_frame: int = 0
    """First frame exported."""
    end_frame: int | None = None
    """One past the last frame exported; None: to the end of the audio."""
    path: str = ""
    """Last export target (relative to the project file when possible)."""
    still_head: bool = False
    """Hold the head still instead of replaying the subject's own motion."""
    framing: str = ""
    """"source" (the source video's frames, the render pasted back), "crop" (the square), or ""
    for the subject's default (see core/framing.py)."""
    height: int | None = None
    """Rows of a source-framed export (the aspect kept); None: the source video's own."""


@dataclass
class Project:
    """An editing session on one subject driven by one speech clip."""

    subject: Path
    audio: Path | None = None
    edits: Edits = field(default_factory=Edits)
    export: ExportSettings = field(default_factory=ExportSettings)
    demo: bool = False
    """The subject is the built-in demo: ``subject`` is where this installation builds it, which
    may not exist yet (opening builds it)."""

    @property
    def uses_demo(self) -> bool:
        """Whether the subject is the built-in demo (saved as ``"talkstudio:demo"``)."""
        return self.demo or is_demo_subject(self.subject)

    def to_json(self, base: Path) -> dict[str, Any]:
        return {
            "format": PROJECT_FORMAT,
            "version": PROJECT_VERSION,
            "subject": DEMO_REFERENCE if self.uses_demo else _relative(self.subject, base),
            "audio": _relative(self.audio, base) if self.audio else None,
            "keyframes": self.edits.to_json(),
            "export": asdict(self.export),
        }

    def save(self, path: str | Path) -> Path:
        """Write the project to ``path`` (``.talkproj`` added when missing) atomically."""
        path = Path(path)
        if path.suffix != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        atomic.write_json(path, self.to_json(path.resolve().parent))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Project:
        path = Path(path)
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise ProjectError(f"project file {path} does not exist") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"{path} is not a valid project file ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{path} is not a Talkstudio project file")
        if not isinstance(raw.get("version"), int) or raw["version"] > PROJECT_VERSION:
            raise ProjectError(
                f"{path} was saved by a newer Talkstudio (project version {raw.get('version')}); "
                "update Talkstudio to open it"
            )
        base = path.resolve().parent
        try:
            edits = Edits.from_json(raw.get("keyframes", {}))
            export = ExportSettings(**raw.get("export", {}))
        except (EditError, TypeError) as exc:
            raise ProjectError(f"{path}: {exc}") from exc
        audio = raw.get("audio")
        demo = raw.get("subject") == DEMO_REFERENCE
        if demo:
            try:
                subject = demo_target()
            except TalkstudioError as exc:
                raise ProjectError(f"{path} uses the built-in demo subject, but {exc}") from exc
        else:
            subject = _absolute(raw["subject"], base)
        return cls(
            subject=subject,
            audio=_absolute(audio, base) if audio else None,
            edits=edits,
            export=export,
            demo=demo,
        )


def _relative(path: Path, base: Path) -> str:
    path = Path(path).resolve()
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return str(path)


def _absolute(value: str, base: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (base / p).resolve()
