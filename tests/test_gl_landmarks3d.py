"""The 3D landmark viewport (OpenGL): follows the playhead and α, and draws the face upright.

Run under an X server: ``QT_QPA_PLATFORM=xcb xvfb-run -a python -m pytest tests/test_gl_*.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import face_track
from PySide6.QtCore import QCoreApplication, Qt

from talkstudio.core.landmarks import LEFT_EYE, MOUTH, RIGHT_EYE, eye_opening, mouth_opening
from talkstudio.widgets.palette import ALPHA_COLORS
from talkstudio.widgets.state import EditState

# pyqtgraph.opengl caches shader programs for the whole process, so every GL view (one per test
# here) must share GL objects; Qt requires this before the QApplication exists.
if QCoreApplication.instance() is None:
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)

pytestmark = pytest.mark.gl


@pytest.fixture
def gl_ok(qapp) -> None:
    from PySide6.QtGui import QOffscreenSurface, QOpenGLContext

    if qapp.platformName() in ("offscreen", "minimal"):
        pytest.skip(
            f"the {qapp.platformName()} platform has no OpenGL windows; run under an X server: "
            "QT_QPA_PLATFORM=xcb xvfb-run -a python -m pytest tests/test_gl_*.py"
        )
    ctx = QOpenGLContext()
    surface = QOffscreenSurface()
    surface.create()
    if not ctx.create() or not ctx.makeCurrent(surface):
        pytest.skip("no OpenGL context can be made on this display")
    ctx.doneCurrent()


@pytest.fixture
def setup(qtbot, gl_ok):
    from talkstudio.widgets.landmarks3d import Landmarks3D

    state = EditState()
    state.set_track(face_track(60))
    view = Landmarks3D(state)
    qtbot.addWidget(view)
    view.resize(320, 320)
    with qtbot.waitExposed(view):
        view.show()
    return state, view


def _head(points: np.ndarray) -> np.ndarray:
    """Display axes (x, z, -y) back to the head frame."""
    return np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1)


def test_scrub_changes_the_points(qtbot, setup) -> None:
    from talkstudio.widgets.landmarks3d import to_display

    state, view = setup
    before = view.displayed_points().copy()
    np.testing.assert_allclose(before, to_display(state.track[0]), atol=1e-6)
    with qtbot.waitSignal(state.frameChanged, timeout=1000):
        state.set_frame(3)  # the face track's mouth moves from frame to frame
    after = view.displayed_points()
    np.testing.assert_allclose(after, to_display(state.track[3]), atol=1e-6)
    moved = np.linalg.norm(after - before, axis=1)
    assert moved[list(MOUTH)].max() > 0.01
    assert moved[list(range(17, 36))].max() < 1e-6  # brows and nose stay


def test_alpha_mouth_two_opens_the_drawn_mouth(setup) -> None:
    state, view = setup
    state.set_frame(10)
    base = _head(view.displayed_points())
    state.set_value("mouth", 2.0)
    opened = _head(view.displayed_points())
    assert mouth_opening(opened) == pytest.approx(2 * mouth_opening(base), rel=0.05)
    np.testing.assert_allclose(opened[list(LEFT_EYE + RIGHT_EYE)], base[list(LEFT_EYE + RIGHT_EYE)])
    state.set_value("left_eye", 0.0)
    closed = _head(view.displayed_points())
    assert eye_opening(closed, left=True) < 0.01 < eye_opening(closed, left=False)
    state.undo_stack.undo()
    state.undo_stack.undo()
    np.testing.assert_allclose(_head(view.displayed_points()), base, atol=1e-6)


def _centroid(img, rgb: tuple[int, int, int]) -> np.ndarray:
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    bgr = arr[:, : img.width(), :3].astype(int)
    target = np.array(rgb[::-1])
    ys, xs = np.nonzero(np.abs(bgr - target).sum(axis=2) < 40)
    assert len(xs) > 10, f"colour {rgb} is not drawn"
    return np.array([xs.mean(), ys.mean()])


def test_face_is_drawn_upright_and_unmirrored(setup) -> None:
    from PySide6.QtGui import QImage

    _, view = setup
    img = view.grabFramebuffer().convertToFormat(QImage.Format.Format_RGB32)
    left_eye = _centroid(img, ALPHA_COLORS["left_eye"])
    right_eye = _centroid(img, ALPHA_COLORS["right_eye"])
    mouth = _centroid(img, ALPHA_COLORS["mouth"])
    assert mouth[1] > left_eye[1] + 30 and mouth[1] > right_eye[1] + 30  # mouth below the eyes
    # The subject's left eye is on the image's right, as the camera sees it.
    assert left_eye[0] > mouth[0] > right_eye[0]
    # The face fills a good part of the view, centred.
    assert right_eye[0] < 0.42 * img.width() and left_eye[0] > 0.58 * img.width()
