"""Every module of ``talkstudio.core`` imports with Qt and the GUI packages blocked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import talkstudio.core

CORE = Path(talkstudio.core.__path__[0])

SCRIPT = """
import sys, importlib, pkgutil
for name in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "talkstudio.app", "talkstudio.widgets"):
    sys.modules[name] = None  # any import of these now raises ImportError
import talkstudio.core
mods = [m.name for m in pkgutil.walk_packages(talkstudio.core.__path__, "talkstudio.core.")]
for m in mods:
    importlib.import_module(m)
print(len(mods))
"""


def test_core_imports_without_qt() -> None:
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    # every module file plus every subpackage, the root package itself excluded
    files = [p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts]
    expected = len(files) - 1
    assert int(res.stdout.strip().splitlines()[-1]) == expected


def test_blocking_really_blocks() -> None:
    """The mechanism above would catch a core module that imports Qt."""
    code = "import sys; sys.modules['PySide6'] = None\ntry:\n import PySide6.QtCore\nexcept ImportError:\n print('blocked')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "blocked"
