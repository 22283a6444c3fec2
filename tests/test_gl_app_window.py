"""The main window with its OpenGL 3D landmark view, on the real engine and the built-in demo
subject at 64² (run under Xvfb):
scrubbing moves the frame, the preview and the 3D landmarks; an α drag moves the 3D mouth.

    QT_QPA_PLATFORM=xcb xvfb-run -a python -m pytest tests/test_gl_app_window.py
"""

from __future__ import annotations

import numpy as np
import pytest
from _app_helpers import (
    MULTIMEDIA_NOISE,
    RENDER_TIMEOUT_MS,
    click,
    make_window,
    open_and_render,
)
from PySide6.QtCore import QCoreApplication, Qt

from talkstudio.core.landmarks import MOUTH, mouth_opening

# pyqtgraph.opengl caches shader programs for the whole process: GL views share contexts.
if QCoreApplication.instance() is None:
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)

pytestmark = [pytest.mark.gl, MULTIMEDIA_NOISE]


@pytest.fixture
def window(qtbot, qapp, tmp_path, demo_subject):
    from talkstudio.app.window_layout import gl_available

    if not gl_available():
        pytest.skip(
            f"no OpenGL on the {qapp.platformName()} platform; run under an X server: "
            "QT_QPA_PLATFORM=xcb xvfb-run -a python -m pytest tests/test_gl_app_window.py"
        )
    w = make_window(qtbot, tmp_path, use_gl=True)
    return open_and_render(qtbot, w, demo_subject)


def _display_to_head(points: np.ndarray) -> np.ndarray:
    """The view draws head-frame (x, y, z) as (x, z, −y): undo it."""
    return np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1)


def test_scrub_moves_frame_preview_and_3d_landmarks(qtbot, window) -> None:
    from talkstudio.widgets.landmarks3d import Landmarks3D

    view = window.view3d
    assert isinstance(view, Landmarks3D)
    track = window.state.track
    np.testing.assert_allclose(_display_to_head(view.displayed_points()), track[0], atol=1e-6)
    before = window.preview.image().copy()
    target = window.state.num_frames - 3
    timeline = window.timeline
    with qtbot.waitSignal(
        window.controller.shown,
        timeout=RENDER_TIMEOUT_MS,
        check_params_cb=lambda r: r.kind == "full" and r.frame == target,
    ):
        click(timeline.plot.viewport(), timeline.widget_pos((target + 0.5) / 25, 0.3))
    assert window.state.frame == target
    shown = _display_to_head(view.displayed_points())
    np.testing.assert_allclose(shown, track[target], atol=1e-6)
    assert np.abs(track[target] - track[0]).max() > 1e-4  # the landmarks really moved
    assert window.preview.image() != before
    img = view.grabFramebuffer()
    assert img.width() > 100 and img.height() > 100


def test_alpha_drag_opens_the_3d_mouth(qtbot, window) -> None:
    view = window.view3d
    frame = int(np.argmax(mouth_opening(window.state.track)))  # the widest-open mouth
    with qtbot.waitSignal(window.controller.shown, timeout=RENDER_TIMEOUT_MS):
        window.state.set_frame(frame)
    closed = _display_to_head(view.displayed_points())
    slider = window.alpha_panel.rows["mouth"].slider
    slider.setSliderDown(True)
    slider.setValue(200)  # α3 = 2: twice the opening
    slider.setSliderDown(False)
    opened = _display_to_head(view.displayed_points())
    assert mouth_opening(opened) == pytest.approx(2 * mouth_opening(closed), rel=0.05)
    moved = np.abs(opened - closed).max(axis=1) > 1e-6
    assert moved[list(MOUTH)].any() and not moved[36:48].any()  # the eyes stay
