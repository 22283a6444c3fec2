"""First launch: one build of the demo subject however often it is asked for, with its progress
on the welcome page; a project on the demo names it symbolically and reopens after the demo's
cache folder was deleted (it is built again)."""

from __future__ import annotations

import json
import shutil

from _app_helpers import MULTIMEDIA_NOISE, OPEN_TIMEOUT_MS, make_window
from PySide6.QtCore import Qt, QTimer

from talkstudio.core.demo import DEMO_REFERENCE, demo_target

pytestmark = MULTIMEDIA_NOISE

BUILD_TIMEOUT_MS = 600_000
"""Regenerating the demo's media (300 frames) and opening it, on a busy two-core machine."""


def _wait_for_full_frame(qtbot, window, timeout: int) -> None:
    with qtbot.waitSignal(
        window.controller.shown, timeout=timeout, check_params_cb=lambda r: r.kind == "full"
    ):
        pass


def test_one_demo_build_and_a_demo_project_survives_a_rebuild(
    qtbot, tmp_path, monkeypatch, demo_subject
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TALKSTUDIO_CACHE", str(cache))
    cache.mkdir()
    target = demo_target()
    assert target.name == demo_subject.name  # same shipped files, same folder name
    shutil.copytree(demo_subject, target)  # as an earlier first launch left it

    # A session on the demo, saved as a project: it names "the demo", not the cache folder.
    window = make_window(qtbot, tmp_path)
    with qtbot.waitSignal(window.controller.shown, timeout=OPEN_TIMEOUT_MS):
        window.open_demo()
    qtbot.waitUntil(lambda: window.session.info is not None, timeout=OPEN_TIMEOUT_MS)
    assert window.demo.builds == 1  # it found the demo built
    # the landmarks the studio shows open closed parts like the render (docs/edit.md)
    assert window.session.info.typical is not None
    window.state.set_keyframe("mouth", 0, 1.6)
    project = tmp_path / "projects" / "talk.talkproj"
    project.parent.mkdir()
    assert window.save_project_to(project)
    assert json.loads(project.read_text("utf-8"))["subject"] == DEMO_REFERENCE
    window.welcome.set_recent(window.session.recent_files())
    labels = [window.welcome.recent.item(i).text() for i in range(window.welcome.recent.count())]
    assert any(label.startswith("Demo") for label in labels), labels
    assert not any(target.name in label for label in labels), labels
    assert window.close_session()

    # A cache clean-up removes the demo; the user starts it again and clicks around meanwhile.
    shutil.rmtree(target)
    staging: set[str] = set()
    watch = QTimer()
    watch.timeout.connect(lambda: staging.update(p.name for p in cache.glob(".demo-*")))
    watch.start(50)
    window.open_demo()  # what the studio does at start without a target
    assert window.demo.state == "building" and window.demo.builds == 2
    button = window.welcome.demo_button
    assert not button.isEnabled() and button.text().startswith("Making the demo subject")
    assert window.actions_.open_demo.text().startswith("Making the &demo subject")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # disabled: nothing happens
    window.actions_.open_demo.trigger()
    window.actions_.open_demo.trigger()
    window.open_demo()
    panel = window.welcome.demo_panel
    assert panel.isVisible()
    qtbot.waitUntil(lambda: "frame" in window.welcome.demo_status.text(), timeout=120_000)
    qtbot.waitUntil(lambda: "left" in window.welcome.demo_status.text(), timeout=120_000)
    assert window.welcome.demo_bar.maximum() > 0
    assert window.open_project(project)  # the project, while the demo is still being made

    _wait_for_full_frame(qtbot, window, BUILD_TIMEOUT_MS)
    watch.stop()
    assert window.demo.builds == 2, "the clicks started another build"
    assert len(staging) == 1, staging  # one staging folder ever: one build
    assert sorted(p.name for p in cache.iterdir()) == [target.name]  # nothing else left
    assert window.session.project_path == project
    assert window.session.subject_path == target
    assert window.state.value("mouth", 0) == 1.6  # the project's edits came with it
    assert not panel.isVisible() and button.isEnabled()
    assert button.text().startswith("Open the demo subject")
    assert window.actions_.open_demo.text() == "Open the &demo subject"


def test_stopping_the_demo_build_leaves_nothing(qtbot, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TALKSTUDIO_CACHE", str(cache))
    window = make_window(qtbot, tmp_path)
    window.open_demo()
    qtbot.waitUntil(lambda: window.demo.last is not None, timeout=120_000)
    assert window.welcome.demo_panel.isVisible()
    with qtbot.waitSignal(window.demo.stateChanged, timeout=60_000):
        qtbot.mouseClick(window.welcome.demo_stop, Qt.MouseButton.LeftButton)
    assert window.demo.state == "idle" and not window.demo.building
    assert not window.welcome.demo_panel.isVisible()
    assert window.welcome.demo_button.isEnabled()
    assert window.session.info is None  # nothing opens after a stop
    assert list(cache.iterdir()) == []  # no half-made demo, no staging folder
    assert "stopped" in window.statusBar().currentMessage()
