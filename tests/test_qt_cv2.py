"""Importing cv2 (OpenCV with its own Qt 5 plugins) before PySide6 must not break the GUI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = """
import os, cv2
assert "cv2" in os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""), "cv2 no longer sets it?"
from talkstudio.app.qt_env import clean_qt_environment
assert "QT_QPA_PLATFORM_PLUGIN_PATH" in clean_qt_environment()
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
app = QApplication([])
win = QMainWindow(); win.setCentralWidget(QLabel("Talkstudio")); win.resize(320, 200); win.show()
app.processEvents()
img = win.grab().toImage()
assert img.width() == 320 and img.height() == 200
print("platform", app.platformName())
"""


def _run(platform: str, wrapper: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM=platform)
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    return subprocess.run(
        [*wrapper, sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cv2_first_offscreen() -> None:
    res = _run("offscreen", [])
    assert res.returncode == 0, res.stderr
    assert "platform offscreen" in res.stdout
    assert "Could not load the Qt platform plugin" not in res.stderr


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_cv2_first_xcb() -> None:
    res = _run("xcb", ["xvfb-run", "-a"])
    assert res.returncode == 0, res.stderr
    assert "platform xcb" in res.stdout
    assert "Could not load the Qt platform plugin" not in res.stderr
