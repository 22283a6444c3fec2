"""Atomic file writes: write to a temporary name in the same folder, flush, then rename.

A reader never sees a half-written file, and an exception or a full disk mid-write leaves the
previous version of the file untouched. The temporary is named ``.NAME.PID-XXXXXXXX.partSUFFIX``
after its writer's process, so that a later writer of the same file can tell the leftovers of a
killed process (:func:`sweep_stale_parts`) from a write in progress.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so that writers which pick a
    format by extension (PyAV, OpenCV) still work. On an exception the temporary is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}-",
        suffix=f".part{suffix or target.suffix}",
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); the result gets the permissions a plain
        # open() would give it (0666 less the umask), or keeps those of the file it replaces.
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def sweep_stale_parts(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries that writes of ``path`` left behind when their process was killed
    (SIGKILL, a crash, a power cut): those whose writer is gone, and those of older versions
    whose names carry no process id. A write in progress in a live process is left alone.
    Returns what was removed."""
    target = Path(path)
    name = re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)-)?[a-z0-9_]+\.part.*")
    removed = []
    for part in target.parent.glob(f".{glob.escape(target.name)}.*.part*"):
        match = name.fullmatch(part.name)
        if match is None:  # another file's temporary (``NAME.x``'s), not ours
            continue
        writer = match.group(1)
        if writer is not None and (int(writer) == os.getpid() or _alive(int(writer))):
            continue
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
            removed.append(part)
    return removed


def _read_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()
"""The process's umask, read once at import (reading it means setting it for an instant)."""


def _mode_for(target: Path) -> int:
    """Permission bits for a new or replaced ``target``."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file for writing that appears at ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as fh:
        fh.write(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def write_npz(path: str | os.PathLike[str], **arrays: Any) -> None:
    """Write NumPy arrays to an uncompressed ``.npz`` atomically (object arrays are refused)."""
    import numpy as np

    buf = io.BytesIO()
    checked = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {key!r} has dtype object; only numeric arrays are stored")
        checked[key] = arr
    np.savez(buf, **checked)
    write_bytes(path, buf.getvalue())
