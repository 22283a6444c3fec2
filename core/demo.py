"""The built-in demo subject: a synthetic person whose trained weights ship with Talkstudio.

``resources/demo/`` holds ``demo.json`` (the synthetic generator's config) and one folder per
part (``stage1``, ``head``, ``torso``) with fp16 safetensors weights and their JSON configs. No
media ship: on first use the frames, masks, background and speech are regenerated from the seed
into the user's cache folder, the weights are copied beside them, and the result is an ordinary
subject folder. ``scripts/make_demo.py`` makes the shipped files.

Projects and the studio's recent files name the demo symbolically (:data:`DEMO_REFERENCE`,
"the demo"), never by its cache folder: the folder's name changes with the shipped files and a
cache clean-up may delete it, so the reference is resolved (and the demo rebuilt) when opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

from .errors import TalkstudioError
from .progress import Progress, run_job
from .subject import Subject, validate_subject

DEMO_FILES = ("model.safetensors", "config.json")
DEMO_PARTS = ("stage1", "head", "torso")
"""The parts whose weights ship with the demo (the optional refiner does not)."""
DEMO_REFERENCE = "talkstudio:demo"
"""How projects name the built-in demo subject: resolved to :func:`demo_target` when opened."""
_DEMO_NAME = re.compile(r"demo-[0-9a-f]{12}")


def demo_resources() -> Path:
    """Folder of the shipped demo files (inside the installed ``talkstudio.resources``)."""
    from importlib import resources

    return Path(str(resources.files("talkstudio.resources").joinpath("demo")))


def demo_config() -> dict[str, Any]:
    path = demo_resources() / "demo.json"
    if not path.is_file():
        raise TalkstudioError(
            f"the built-in demo subject is missing from this installation ({path}); "
            "reinstall Talkstudio or build it with `python -m scripts.make_demo`"
        )
    raw: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return raw


def _fingerprint(raw: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(raw, sort_keys=True).encode())
    for part in DEMO_PARTS:
        for name in DEMO_FILES:
            f = demo_resources() / part / name
            h.update(f.read_bytes() if name == "config.json" else str(f.stat().st_size).encode())
    return h.hexdigest()[:12]


def default_cache() -> Path:
    import platformdirs

    return Path(os.environ.get("TALKSTUDIO_CACHE") or platformdirs.user_cache_dir("talkstudio"))


def demo_target(cache: str | Path | None = None) -> Path:
    """The folder the demo subject of this installation is (or will be) built in."""
    root = Path(cache) if cache is not None else default_cache()
    return root / f"demo-{_fingerprint(demo_config())}"


def demo_built(cache: str | Path | None = None) -> bool:
    """Whether the demo subject looks built (its folder has a subject.json; cheap, for the UI;
    :func:`ensure_demo_job` validates it properly)."""
    try:
        return (demo_target(cache) / "subject.json").is_file()
    except (TalkstudioError, OSError):
        return False


def is_demo_subject(path: str | Path) -> bool:
    """Whether ``path`` is (or was: a clean-up may have deleted it, it can be made again) a demo
    subject folder in the cache, this installation's or an older one's. A copy elsewhere (a test's
    own cache, say) is an ordinary subject folder."""
    p = Path(path)
    if not _DEMO_NAME.fullmatch(p.name):
        return False
    try:
        return p.resolve().parent == default_cache().resolve()
    except OSError:
        return False


def ensure_demo_job(cache: str | Path | None = None) -> Generator[Progress, None, Path]:
    """Make (once) and return the demo subject folder; yields progress while regenerating."""
    from .synthetic import SynthConfig, write_synthetic_job

    raw = demo_config()
    root = Path(cache) if cache is not None else default_cache()
    target = root / f"demo-{_fingerprint(raw)}"
    if (target / "subject.json").is_file() and not validate_subject(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=root))
    try:
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in raw["synth"].items()
        }
        cfg = SynthConfig(**kwargs)
        result = yield from write_synthetic_job(staging, cfg, video=False)
        subject = Subject.open(result.subject_dir)
        for part in DEMO_PARTS:
            dest = subject.model_dir(part)
            dest.mkdir(parents=True, exist_ok=True)
            for name in DEMO_FILES:
                shutil.copyfile(demo_resources() / part / name, dest / name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(result.subject_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_demo_subject(cache: str | Path | None = None) -> Path:
    """:func:`ensure_demo_job` run to its end."""
    return run_job(ensure_demo_job(cache))
