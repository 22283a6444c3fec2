"""Playback in the real main window on the demo subject (64² previews, CPU, offscreen): frames
are rendered ahead into the playback cache, a cached range plays within a second of the
playhead, without a cache low-resolution proxies keep the picture moving, and edits invalidate
the cached frames they change. What is asserted is what the preview showed against how far the
playhead went, so a slow machine makes the playhead go no faster than real time but asks no
more frames of it than it renders."""

from __future__ import annotations

import pytest
from _app_helpers import (
    MULTIMEDIA_NOISE,
    OPEN_TIMEOUT_MS,
    RENDER_TIMEOUT_MS,
    make_window,
    open_and_render,
)

from talkstudio.app.playback import PUMP_MS

pytestmark = MULTIMEDIA_NOISE

PLAY_FRAMES = 75
"""Playhead frames (3 s) watched per play."""


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: on the shared two-core machine two threads make the small proxy
    renders many times slower (the oversubscription the README warns about), not faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def window(qtbot, tmp_path, demo_subject):
    w = make_window(qtbot, tmp_path)
    return open_and_render(qtbot, w, demo_subject)


def _play(qtbot, window, start: int, frames: int) -> list[tuple[int, int, int]]:
    """Play from ``start`` until the playhead has gone ``frames`` frames; (playhead, frame
    shown, its size) for every frame the playback put on the preview. The seek and the play
    come in one turn of the event loop, as a click and Space do: no interactive render may be
    asked for while playing (the seek's would only delay the frames rendered ahead)."""
    log: list[tuple[int, int, int]] = []
    window.playback_cache.displayed.connect(lambda h, f, s: log.append((h, f, s)))
    sent = window.client.requests
    window.state.set_frame(start)
    window.playback.play()
    qtbot.waitUntil(lambda: window.state.frame >= start + frames, timeout=60_000)
    assert window.client.requests == sent
    window.playback.pause()
    return log


def test_without_a_cache_proxies_change_the_picture_every_half_second(qtbot, window) -> None:
    cache = window.playback_cache
    notes: list[str] = []
    cache.noteChanged.connect(notes.append)
    cache.cache.clear()
    log = _play(qtbot, window, 20, PLAY_FRAMES)
    shown = [f for _, f, _ in log]
    distinct = len(set(shown))
    # at least one new picture per 12.5 playhead frames (0.5 s at 25 fps)
    assert distinct >= PLAY_FRAMES / 12.5, (distinct, log[-5:], cache.proxy_ms)
    assert all(f <= h for h, f, _ in log)  # nothing from the future
    assert all(h - f <= 25 for h, f, _ in log)  # held for at most a second
    assert any(s == cache.proxy for _, _, s in log)  # low resolution first
    assert any("rendering ahead" in n for n in notes)  # and said so
    assert window.preview.note == ""  # paused: no note


def test_a_cached_range_plays_within_a_second_of_the_playhead(qtbot, window) -> None:
    state, marks = window.state, window.preview_range
    state.set_frame(10)
    marks.mark_in.trigger()
    state.set_frame(10 + PLAY_FRAMES + 4)
    marks.mark_out.trigger()
    assert window.timeline.marks == (10, 10 + PLAY_FRAMES + 5)
    with qtbot.waitSignal(window.playback_cache.rangeReady, timeout=OPEN_TIMEOUT_MS):
        marks.render.trigger()
    full, _ = window.playback_cache.ranges()
    assert any(s <= 10 and e >= 10 + PLAY_FRAMES + 5 for s, e in full)
    assert window.timeline.cached["full"] == full  # the bar shows it
    log = _play(qtbot, window, 10, PLAY_FRAMES)
    inside = [(h, f, s) for h, f, s in log if h < 10 + PLAY_FRAMES + 5]
    assert len(inside) >= PLAY_FRAMES / 2  # the frames went by and were shown
    assert max(h - f for h, f, _ in inside) <= 25
    assert all(s == window.client.size for _, _, s in inside)  # full size, not proxies


def test_an_edit_invalidates_the_frames_it_changes(qtbot, window) -> None:
    cache = window.playback_cache
    with qtbot.waitSignal(cache.rangeReady, timeout=OPEN_TIMEOUT_MS):
        cache.render_range(0, 20)
    window.state.set_keyframe("mouth", 10, 1.0)
    window.state.set_keyframe("mouth", 19, 2.0)  # α3 rises from frame 10 on
    full, _ = cache.ranges()
    assert full and full[0] == (0, 11)  # frames 0..10 keep α3 = 1 and stay cached
    assert all(e.frame <= 10 or e.size != window.client.size for e in cache.cache)
    with qtbot.waitSignal(cache.rangeReady, timeout=OPEN_TIMEOUT_MS):
        pass  # the range is rendered again with the new α
    assert cache.range_cached(0, 20)


def _renders_ahead(qtbot, window) -> int:
    """Wait until the paused window renders ahead (it does when left alone); the frames asked
    for ahead so far."""
    client = window.client
    asked = client.ahead_requests
    qtbot.waitUntil(lambda: client.ahead_requests > asked, timeout=RENDER_TIMEOUT_MS)
    return client.ahead_requests


def _shown_with(qtbot, window, mouth: float, kind: str | None = None):
    """Wait for the preview to show a render with α3 = ``mouth`` (of ``kind``, else any)."""
    return qtbot.waitSignal(
        window.controller.shown,
        timeout=RENDER_TIMEOUT_MS,
        check_params_cb=lambda r: r.alphas[2] == mouth and kind in (None, r.kind),
    )


def test_a_held_slider_pauses_rendering_ahead_until_it_is_released(qtbot, window) -> None:
    """Each frame rendered ahead would hold up the drag's next render: none is asked for while
    an α slider is held; released, rendering ahead goes on, the edited frames rendered anew."""
    cache, client = window.playback_cache, window.client
    cache.quiet_ms = 0.0  # nothing but the held slider holds rendering ahead back here
    _renders_ahead(qtbot, window)
    slider = window.alpha_panel.rows["mouth"].slider
    slider.setSliderDown(True)
    asked = client.ahead_requests  # one may still be rendering: it is not taken back
    for steps in (150, 60, 170):
        with _shown_with(qtbot, window, steps / 100):
            slider.setValue(steps)
        cache.pump()
        qtbot.wait(2 * PUMP_MS)  # the pump timer's turns come and go
        assert client.ahead_requests == asked
    assert not cache.cache.has(window.state.frame, cache.proxy, cache.alphas_at)  # edited
    with _shown_with(qtbot, window, 1.7, "full"):
        slider.setSliderDown(False)
    _renders_ahead(qtbot, window)
    frame = window.state.frame
    qtbot.waitUntil(
        lambda: cache.cache.has(frame, cache.proxy, cache.alphas_at), timeout=RENDER_TIMEOUT_MS
    )
    assert all(e.alphas == cache.alphas_at(e.frame) for e in cache.cache)
    assert cache.alphas_at(frame)[2] == 1.7


def test_an_interactive_render_goes_before_any_further_frame_ahead(qtbot, window) -> None:
    """A seek (a scrub's step) while rendering ahead is answered before any frame asked for
    ahead after it, and no frame is asked for ahead while interactive renders come in quick
    succession (:data:`~talkstudio.app.playback.QUIET_MS`); then rendering ahead resumes."""
    cache, client = window.playback_cache, window.client
    _renders_ahead(qtbot, window)
    cache.quiet_ms = 60_000.0  # "quick succession" however slow the machine
    log: list[tuple[int, bool]] = []
    client.rendered.connect(lambda r: log.append((r.seq, r.ahead)))
    for frame in (40, 43, 47):
        with qtbot.waitSignal(
            window.controller.shown,
            timeout=RENDER_TIMEOUT_MS,
            check_params_cb=lambda r, f=frame: r.frame == f and r.kind == "full",
        ):
            window.state.set_frame(frame)
        asked = client.ahead_requests
        cache.pump()
        qtbot.wait(2 * PUMP_MS)
        assert client.ahead_requests == asked
    seek = client.last_request
    assert seek is not None
    answered = [i for i, (seq, ahead) in enumerate(log) if not ahead and seq == seek.seq]
    assert answered and not any(ahead and seq > seek.seq for seq, ahead in log[: answered[0]])
    cache.quiet_ms = 0.0  # the user stopped: rendering ahead resumes from the new playhead
    _renders_ahead(qtbot, window)
    qtbot.waitUntil(lambda: any(e.frame >= 47 for e in cache.cache), timeout=RENDER_TIMEOUT_MS)
