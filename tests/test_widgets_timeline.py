"""The timeline as a view of EditState: markers, selection, mouse drags, seek, zoom, waveform."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pytest
from conftest import face_track, show_widget
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from talkstudio.widgets.state import EditState
from talkstudio.widgets.timeline import LANE_Y, Timeline
from talkstudio.widgets.waveform import EnvelopePyramid

FPS = 25


@pytest.fixture
def setup(qtbot) -> tuple[EditState, Timeline]:
    state = EditState()
    t = np.arange(16000 * 8) / 16000  # 8 s: 200 frames
    state.set_audio((0.3 * np.sin(2 * np.pi * 150 * t) * (t % 1 < 0.5)).astype(np.float32))
    state.set_track(face_track(200))
    return state, show_widget(qtbot, Timeline(state), (900, 240))


def _mouse(widget, kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QMouseEvent(kind, pos, global_pos, button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def drag(widget, start: QPointF, end: QPointF, steps: int = 8) -> None:
    """Press at ``start``, move in steps to ``end`` with the left button held, release.

    The moves come as far apart as a real mouse's: pyqtgraph's scene drops every move that
    follows the last one it took by less than 1/``mouseRateLimit`` s, so moves sent back to
    back right after another drag's never reach it, and the press and release read as a click.
    """
    rate = pg.getConfigOption("mouseRateLimit")
    gap_ms = math.ceil(1000 / rate) + 1 if rate > 0 else 0
    left = Qt.MouseButton.LeftButton
    _mouse(widget, QEvent.Type.MouseButtonPress, start, left)
    for k in range(1, steps + 1):
        QTest.qWait(gap_ms)
        _mouse(widget, QEvent.Type.MouseMove, start + (end - start) * (k / steps), left)
    _mouse(widget, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def click(widget, pos: QPointF) -> None:
    _mouse(widget, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton)
    _mouse(widget, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton)


def test_keyframe_appears_on_its_lane_at_its_time(setup) -> None:
    state, timeline = setup
    assert len(timeline.marker_x("mouth")) == 0
    state.set_keyframe("mouth", 50, 1.7)
    state.set_keyframe("left_eye", 120, 0.3)
    np.testing.assert_allclose(timeline.marker_x("mouth"), [50 / FPS])
    np.testing.assert_allclose(timeline.marker_x("left_eye"), [120 / FPS])
    assert len(timeline.marker_x("right_eye")) == 0
    _, ys = timeline.lanes["mouth"].getData()
    np.testing.assert_allclose(ys, [LANE_Y["mouth"]])
    # On screen: the mouth diamond is where frame 50 is on the ruler, below the left-eye lane.
    p_mouth = timeline.widget_pos(50 / FPS, LANE_Y["mouth"])
    p_eye = timeline.widget_pos(120 / FPS, LANE_Y["left_eye"])
    x0, x1 = timeline.widget_pos(0, 0).x(), timeline.widget_pos(timeline.duration, 0).x()
    assert p_mouth.x() == pytest.approx(x0 + (x1 - x0) * 50 / 200, abs=1.0)
    assert p_mouth.y() > p_eye.y()
    # Undo removes the diamond again.
    state.undo_stack.undo()
    state.undo_stack.undo()
    assert len(timeline.marker_x("mouth")) == 0


def test_move_api_is_undoable(setup) -> None:
    state, timeline = setup
    state.set_keyframe("right_eye", 40, 0.5)
    timeline.select("right_eye", 40)
    timeline.move_selected(75)
    assert state.keyframes("right_eye") == [(75, 0.5)]
    np.testing.assert_allclose(timeline.marker_x("right_eye"), [75 / FPS])
    assert timeline.selected == ("right_eye", 75)
    state.undo_stack.undo()
    assert state.keyframes("right_eye") == [(40, 0.5)]
    np.testing.assert_allclose(timeline.marker_x("right_eye"), [40 / FPS])


def test_mouse_drag_moves_a_marker_and_undo_restores(qtbot, setup) -> None:
    state, timeline = setup
    state.set_keyframe("mouth", 60, 1.9)
    state.set_keyframe("mouth", 150, 0.4)
    viewport = timeline.plot.viewport()
    start = timeline.widget_pos(60 / FPS, LANE_Y["mouth"])
    end = timeline.widget_pos(100 / FPS, LANE_Y["mouth"])
    view_before = timeline.visible_range()
    drag(viewport, start, end)
    assert state.keyframes("mouth") == [(100, 1.9), (150, 0.4)]
    assert timeline.visible_range() == pytest.approx(view_before)  # the drag did not pan
    assert state.undo_stack.count() == 3
    state.undo_stack.undo()
    assert state.keyframes("mouth") == [(60, 1.9), (150, 0.4)]
    np.testing.assert_allclose(sorted(timeline.marker_x("mouth")), [60 / FPS, 150 / FPS])


def test_drag_on_empty_space_pans_in_time_only(setup) -> None:
    state, timeline = setup
    timeline.set_visible_range(2.0, 4.0)
    (_, (y0, y1)) = timeline.view.viewRange()
    viewport = timeline.plot.viewport()
    drag(viewport, timeline.widget_pos(3.0, 0.5), timeline.widget_pos(2.5, -2.0))
    x0, x1 = timeline.visible_range()
    assert x0 == pytest.approx(2.5, abs=0.02) and x1 == pytest.approx(4.5, abs=0.02)
    assert timeline.view.viewRange()[1] == pytest.approx([y0, y1])
    assert state.frame == 0  # panning is not seeking


def test_click_selects_delete_key_deletes_undo_redo(qtbot, setup) -> None:
    state, timeline = setup
    state.set_keyframe("left_eye", 30, 0.0)
    state.set_keyframe("left_eye", 90, 1.0)
    viewport = timeline.plot.viewport()
    click(viewport, timeline.widget_pos(90 / FPS, LANE_Y["left_eye"]))
    assert timeline.selected == ("left_eye", 90)
    assert state.frame == 0  # clicking a diamond selects, it does not seek
    qtbot.keyClick(timeline.plot, Qt.Key.Key_Delete)  # the view has the keyboard: it bubbles up
    assert state.keyframes("left_eye") == [(30, 0.0)]
    assert timeline.selected is None
    state.undo_stack.undo()
    assert state.keyframes("left_eye") == [(30, 0.0), (90, 1.0)]
    np.testing.assert_allclose(sorted(timeline.marker_x("left_eye")), [30 / FPS, 90 / FPS])
    state.undo_stack.redo()
    np.testing.assert_allclose(timeline.marker_x("left_eye"), [30 / FPS])


def test_click_seeks_and_playhead_follows_the_state(qtbot, setup) -> None:
    state, timeline = setup
    viewport = timeline.plot.viewport()
    with qtbot.waitSignal(state.frameChanged, timeout=1000) as seek:
        click(viewport, timeline.widget_pos(4.02, 0.3))
    assert seek.args == [100]
    assert timeline.playhead.value() == pytest.approx(100 / FPS)
    state.set_frame(37)
    assert timeline.playhead.value() == pytest.approx(37 / FPS)
    timeline.playhead.setValue(5.3)  # as a drag of the line does
    assert state.frame == round(5.3 * FPS)
    assert timeline.playhead.value() == pytest.approx(state.frame / FPS)  # snapped to a frame


def test_double_click_on_a_lane_keys_the_current_value(qtbot, setup) -> None:
    state, timeline = setup
    state.set_keyframe("mouth", 0, 0.0)
    state.set_keyframe("mouth", 100, 2.0)
    viewport = timeline.plot.viewport()
    pos = timeline.widget_pos(50.2 / FPS, LANE_Y["mouth"] + 0.1)
    click(viewport, pos)
    _mouse(viewport, QEvent.Type.MouseButtonDblClick, pos, Qt.MouseButton.LeftButton)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton)
    assert (50, pytest.approx(1.0)) in state.keyframes("mouth")


def test_wheel_zooms_time_only(qtbot, setup) -> None:
    from PySide6.QtGui import QWheelEvent

    _, timeline = setup
    (_, yr) = timeline.view.viewRange()
    x0, x1 = timeline.visible_range()
    viewport = timeline.plot.viewport()
    pos = timeline.widget_pos(4.0, 0.0)
    ev = QWheelEvent(
        pos,
        QPointF(viewport.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 480),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, ev)
    n0, n1 = timeline.visible_range()
    assert n1 - n0 < 0.7 * (x1 - x0)
    assert n0 < 4.0 < n1
    assert timeline.view.viewRange()[1] == pytest.approx(yr)


def test_waveform_drawn_with_at_most_two_points_per_pixel(qtbot) -> None:
    state = EditState()
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.1, 0.1, 16000 * 600).astype(np.float32)  # ten minutes
    audio[16000 * 300 + 123] = 0.9  # one click in the middle
    timeline = show_widget(qtbot, Timeline(state), (800, 200))
    with qtbot.waitSignal(timeline.waveformReady, timeout=20000):  # built off the GUI thread
        state.set_audio(audio)
        assert timeline.wave.getData()[0] is None or len(timeline.wave.getData()[0]) == 0
    x, y = timeline.wave.getData()
    assert 0 < len(x) <= 2 * timeline.view.width()
    assert np.max(y) == pytest.approx(
        0.95, rel=1e-3
    )  # the click survives decimation (gain 0.95/peak)
    assert abs(x[np.argmax(y)] - 300.0) < 600 / timeline.view.width()
    timeline.resize(1200, 200)
    timeline.set_visible_range(300.0, 300.08)  # two frames: under two samples a pixel
    x, y = timeline.wave.getData()
    assert 1280 <= len(x) <= 1282  # the samples themselves, one more on each side
    first = round(x[0] * 16000)
    np.testing.assert_allclose(y, audio[first : first + len(y)] * 0.95 / 0.9, rtol=1e-5)


def test_envelope_matches_brute_force_min_max() -> None:
    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.2, 16000 * 30).astype(np.float32)
    pyr = EnvelopePyramid(audio, 16000)
    env = pyr.envelope(3.0, 13.0, 500)
    assert env.pairs and len(env.x) <= 1000
    lo, hi = env.y[0::2], env.y[1::2]
    assert np.all(lo <= hi)
    span = audio[3 * 16000 : 13 * 16000]
    assert lo.min() == pytest.approx(span.min()) and hi.max() == pytest.approx(span.max())
    # Each pixel's extremes are the extremes of the samples around its centre.
    for k in (0, 137, 499):
        c = int(env.x[2 * k] * 16000)
        near = audio[c - 400 : c + 400]
        assert near.min() <= lo[k] and hi[k] <= near.max()


def test_a_stale_envelope_is_dropped(qtbot) -> None:
    state = EditState()
    timeline = show_widget(qtbot, Timeline(state), (800, 200))
    long_audio = np.full(16000 * 120, 0.5, np.float32)  # built in a thread
    short_audio = np.zeros(16000 * 4, np.float32)
    short_audio[::2] = 0.1
    short_audio[1::2] = -0.1
    state.set_audio(long_audio)
    with qtbot.waitSignal(timeline.waveformReady, timeout=5000):
        state.set_audio(short_audio)  # built at once; the long one arrives later and is ignored
    qtbot.wait(500)
    _, y = timeline.wave.getData()
    np.testing.assert_allclose(sorted(set(np.round(y, 3))), [-0.95, 0.95])
    assert timeline.duration == pytest.approx(4.0)


def test_views_of_an_empty_state_then_a_track_without_audio(qtbot) -> None:
    from talkstudio.widgets.alpha_panel import AlphaPanel

    state = EditState()
    timeline = Timeline(state)
    panel = AlphaPanel(state)
    for w in (timeline, panel):
        qtbot.addWidget(w)
        w.show()
    x, _ = timeline.wave.getData()
    assert x is None or len(x) == 0
    state.set_frame(10)
    assert state.frame == 0
    state.set_track(face_track(30))  # no audio: the clip is the track's 30 frames
    assert timeline.duration == pytest.approx(30 / FPS)
    assert timeline.visible_range() == pytest.approx((0.0, 30 / FPS), abs=1e-6)
    state.set_keyframe("mouth", 29, 0.5)
    np.testing.assert_allclose(timeline.marker_x("mouth"), [29 / FPS])
    assert panel.rows["mouth"].spin.value() == pytest.approx(0.5)  # held before the only key


def _lane_color_near(timeline: Timeline, name: str, x: float, y: float) -> bool:
    """Whether the lane's colour is drawn within 3 pixels of view point (x, y) on screen."""
    from talkstudio.widgets.palette import ALPHA_COLORS

    image = timeline.plot.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    p = timeline.widget_pos(x, y)
    want = np.array(ALPHA_COLORS[name], float)
    for dx in range(-3, 4):
        for dy in range(-3, 4):
            c = image.pixelColor(round((p.x() + dx) * ratio), round((p.y() + dy) * ratio))
            if np.abs(np.array([c.red(), c.green(), c.blue()], float) - want).max() < 40:
                return True
    return False


def test_each_lane_draws_its_interpolated_value_curve(qtbot, setup) -> None:
    from talkstudio.widgets.timeline import CURVE_HALF_HEIGHT

    state, timeline = setup
    y = LANE_Y["mouth"]
    # No keys: α = 1 everywhere, on the lane's line.
    assert timeline.curve_y("mouth", 3.0) == pytest.approx(y)
    state.set_keyframe("mouth", 50, 0.0)
    state.set_keyframe("mouth", 150, 2.0)
    # Held before the first key, linear between keys, held after the last.
    assert timeline.curve_y("mouth", 0.5) == pytest.approx(y - CURVE_HALF_HEIGHT)
    assert timeline.curve_y("mouth", 100 / FPS) == pytest.approx(y)
    assert timeline.curve_y("mouth", 75 / FPS) == pytest.approx(y - CURVE_HALF_HEIGHT / 2)
    assert timeline.curve_y("mouth", 7.9) == pytest.approx(y + CURVE_HALF_HEIGHT)
    assert timeline.curve_y("left_eye", 3.0) == pytest.approx(LANE_Y["left_eye"])
    # The curve is on screen: the mouth's colour where the value is low, between two keys.
    qtbot.waitUntil(lambda: _lane_color_near(timeline, "mouth", 1.0, y - CURVE_HALF_HEIGHT))
    assert not _lane_color_near(timeline, "mouth", 1.0, y + CURVE_HALF_HEIGHT)
    state.undo_stack.undo()  # the key at 150 goes: the value holds at 0 after frame 50
    assert timeline.curve_y("mouth", 7.9) == pytest.approx(y - CURVE_HALF_HEIGHT)


def test_keys_past_the_audio_end_are_counted_at_the_lane_end(qtbot, setup) -> None:
    from talkstudio.core.edit import Edits

    state, timeline = setup
    state.set_edits(Edits.from_json({"mouth": [[100, 1.5], [250, 0.5], [260, 0.4]]}))
    marker = timeline.beyond["mouth"]
    assert marker.isVisible() and marker.count == 2
    assert "2 keys after the end" in marker.toPlainText()
    assert marker.pos().x() == pytest.approx(timeline.duration)
    assert not timeline.beyond["left_eye"].isVisible()
    # The curve ends at the clip's end, on the way from the key at 100 to the one at 250.
    value_at_end = 1.5 + (199 - 100) / 150 * (0.5 - 1.5)
    assert timeline.curve_y("mouth", timeline.duration) == pytest.approx(
        timeline.curves["mouth"].y_of(value_at_end).item()
    )
    # A longer clip reaches them: no marker.
    state.set_track(face_track(300))
    assert not marker.isVisible() and marker.count == 0


def test_scrollbar_pans_a_zoomed_view_and_fit_shows_all(qtbot, setup) -> None:
    _, timeline = setup
    assert not timeline.scrollbar.isEnabled()  # the whole clip is in view
    timeline.set_visible_range(2.0, 4.0)
    bar = timeline.scrollbar
    assert bar.isEnabled()
    assert bar.pageStep() == 50 and bar.value() == 50 and bar.maximum() == 150
    bar.setValue(100)  # as a drag of the handle does
    x0, x1 = timeline.visible_range()
    assert x0 == pytest.approx(4.0) and x1 == pytest.approx(6.0)
    qtbot.mouseClick(timeline.fit_button, Qt.MouseButton.LeftButton)
    assert timeline.visible_range() == pytest.approx((0.0, 8.0))
    assert not bar.isEnabled()


def test_zoomed_view_follows_the_playhead_unless_told_not_to(qtbot, setup) -> None:
    state, timeline = setup
    timeline.set_visible_range(0.0, 2.0)
    state.set_frame(120)  # 4.8 s: outside the view
    x0, x1 = timeline.visible_range()
    assert x0 <= 4.8 <= x1 and x1 - x0 == pytest.approx(2.0)
    assert timeline.scrollbar.value() == round(x0 * FPS)
    qtbot.mouseClick(timeline.follow_button, Qt.MouseButton.LeftButton)
    assert not timeline.follow_button.isChecked()
    state.set_frame(10)
    assert timeline.visible_range() == pytest.approx((x0, x1))


def test_brows_head_motion_and_blink_have_lanes(qtbot, setup) -> None:
    from talkstudio.widgets.timeline import CURVE_HALF_HEIGHT, LANES

    state, timeline = setup
    assert LANES[3:] == ("brows", "head_motion", "blink")
    assert sorted(LANE_Y.values(), reverse=True) == [LANE_Y[n] for n in LANES]
    # A brow curve sits on its line at 0 (unedited) and swings up to +1.
    assert timeline.curve_y("brows", 2.0) == pytest.approx(LANE_Y["brows"])
    state.set_keyframe("brows", 20, 1.0)
    assert timeline.curve_y("brows", 2.0) == pytest.approx(LANE_Y["brows"] + CURVE_HALF_HEIGHT)
    state.set_keyframe("head_motion", 0, 0.0)  # a still head: the lane's lowest line
    assert timeline.curve_y("head_motion", 5.0) == pytest.approx(
        LANE_Y["head_motion"] - CURVE_HALF_HEIGHT
    )
    assert timeline.marker_x("head_motion").tolist() == [0.0]
    # A double click on the blink lane inserts a blink there (one undo step).
    viewport = timeline.plot.viewport()
    pos = timeline.widget_pos(80.2 / FPS, LANE_Y["blink"])
    click(viewport, pos)
    _mouse(viewport, QEvent.Type.MouseButtonDblClick, pos, Qt.MouseButton.LeftButton)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton)
    assert state.keyframes("blink") == [(80, 1.0)]
    assert timeline.marker_x("blink").tolist() == [pytest.approx(80 / FPS)]
    assert state.undo_stack.text(state.undo_stack.count() - 1) == "Insert blink at frame 80"


def test_vertical_drag_of_a_key_sets_its_value_on_the_curve(qtbot, setup) -> None:
    from talkstudio.widgets.timeline import CURVE_HALF_HEIGHT

    state, timeline = setup
    timeline.resize(900, 700)  # lanes tall enough to aim at half a curve's height
    qtbot.waitUntil(lambda: timeline.plot.height() > 600)
    state.set_keyframe("mouth", 60, 1.0)
    state.set_keyframe("mouth", 140, 1.0)
    steps = state.undo_stack.count()
    viewport = timeline.plot.viewport()
    y = LANE_Y["mouth"]
    start = timeline.widget_pos(60 / FPS, y)
    drag(viewport, start, timeline.widget_pos(60 / FPS, y + CURVE_HALF_HEIGHT / 2), steps=2)
    assert state.keyframes("mouth") == [(60, pytest.approx(1.5, abs=0.03)), (140, 1.0)]
    assert state.undo_stack.count() == steps + 1  # the whole drag is one step
    assert timeline.curve_y("mouth", 60 / FPS) == pytest.approx(y + CURVE_HALF_HEIGHT / 2, abs=0.02)
    # A drag below the lane's range stops at the channel's lowest value.
    drag(
        viewport,
        timeline.widget_pos(140 / FPS, y),
        timeline.widget_pos(140 / FPS, y - 1.0),
        steps=2,
    )
    assert state.keyframes("mouth")[1] == (140, 0.0)
    state.undo_stack.undo()
    assert state.keyframes("mouth")[1] == (140, 1.0)
    # A sideways drag still moves the key in time.
    drag(viewport, timeline.widget_pos(140 / FPS, y), timeline.widget_pos(170 / FPS, y))
    assert [f for f, _ in state.keyframes("mouth")] == [60, 170]
