"""Starting the studio in a fresh process: cv2 imported first, no torch before the first paint,
the demo-or-welcome start, and the ``talkstudio studio`` command's errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHIPPED_DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.json"

SCRIPT = """
import sys, cv2
assert "cv2" in __import__("os").environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""), "cv2 changed?"
from talkstudio.app.studio import create_application
app = create_application()
from PySide6.QtCore import QSettings
from PySide6.QtTest import QTest
from talkstudio.app.main_window import MainWindow
from talkstudio.app.session import demo_status
window = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show()
assert QTest.qWaitForWindowExposed(window, 10000)
print("exposed", app.platformName(), "torch" in sys.modules, app.organizationName(),
      bool(app.styleSheet()))
QTest.qWait(50)  # the demo check runs right after the first paint
print("demo", demo_status()[0], window.welcome.demo_button.isEnabled(),
      window.welcome.demo_note.isVisible())
img = window.grab().toImage()
print("size", img.width(), img.height())
window.shutdown()
"""


def _env(platform: str) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM=platform)
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    return env


def test_window_opens_with_cv2_imported_first_and_no_torch(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "settings.ini")],
        env=_env("offscreen"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(" ", 1) for line in res.stdout.splitlines())
    assert lines["exposed"] == "offscreen False Talkstudio True"  # torch not loaded
    assert SHIPPED_DEMO.is_file()  # so the demo is offered: available, its button on, no note
    assert lines["demo"] == "True True False"
    w, h = map(int, lines["size"].split())
    assert w >= 640 and h >= 480
    assert "Could not load the Qt platform plugin" not in res.stderr


def test_studio_command_refuses_a_missing_target(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "talkstudio.app.cli", "studio", str(tmp_path / "nothing")],
        env=_env("offscreen"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1
    assert "talkstudio studio:" in res.stderr and "does not exist" in res.stderr
    assert "Traceback" not in res.stderr
