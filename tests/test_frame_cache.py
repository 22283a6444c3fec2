"""The preview's frame cache and render-ahead planning (core/frame_cache.py), without Qt."""

from __future__ import annotations

import numpy as np
import pytest

from talkstudio.core import frame_cache
from talkstudio.core.edit import EditError, Edits
from talkstudio.core.frame_cache import CachedFrame, FrameCache, round_alphas

ONE = (1.0, 1.0, 1.0)


def _unedited(_frame: int):
    return ONE


def _entry(frame: int, size: int, alphas=ONE) -> CachedFrame:
    rgb = np.full((size, size, 3), frame % 256, np.uint8)
    return CachedFrame(frame, size, alphas, rgb, 10.0)


def _fill(cache: FrameCache, frames, size: int) -> None:
    for f in frames:
        cache.put(_entry(f, size))


def _plan(cache: FrameCache, alphas_at=_unedited, **kw):
    args = dict(playhead=0, num_frames=100, size=64, playing=False, full_ms=1000.0, proxy_ms=100.0)
    args.update(kw)
    return frame_cache.plan_next(frame_cache.PlanInput(**args), cache, alphas_at)


def test_proxy_size_and_alphas() -> None:
    assert (
        frame_cache.proxy_size(256) == 64
        and frame_cache.proxy_size(64) == 16
        and frame_cache.proxy_size(32) == 16
    )
    with pytest.raises(ValueError, match="positive"):
        frame_cache.proxy_size(0)
    assert round_alphas([1.23456, 2, 0.5]) == (1.2346, 2.0, 0.5, 0.0, -1.0, 1.0, 1.0)
    assert round_alphas([1, 1, 1, 0.123456, 0.5, 0.25, 0]) == (1, 1, 1, 0.1235, 0.5, 0.25, 0)
    with pytest.raises(EditError, match="3 values"):
        round_alphas([1, 2])
    with pytest.raises(EditError, match="brows"):
        round_alphas([1, 1, 1, 3, 1, 1, 1])


def test_an_edit_of_any_channel_drops_the_frames_it_changes() -> None:
    """Cache keys are whole frame edits: a brow key, an inserted blink or a head-motion key
    invalidates the frames whose edit it changes and no other."""
    n = 40
    cache = FrameCache()
    edits = Edits()

    def edit_at(frame: int):
        return round_alphas(edits.frame_edits(n)[frame])

    for f in range(n):
        cache.put(CachedFrame(f, 16, edit_at(f), np.zeros((16, 16, 3), np.uint8), 1.0))
    edits.blink.set(20, 1.0)  # closes frames 18..23 only
    assert cache.invalidate(edit_at) == 6
    assert {e.frame for e in cache} == set(range(n)) - set(range(18, 24))
    edits.brows.set(30, 0.5)  # held over the whole clip
    assert cache.invalidate(edit_at) == n - 6 and len(cache) == 0


def test_get_checks_the_alphas_and_ranges_are_runs() -> None:
    cache = FrameCache()
    _fill(cache, [0, 1, 2, 5, 6], 64)
    cache.put(_entry(3, 16))
    assert cache.get(1, 64, ONE) is not None
    assert cache.get(1, 64, (2.0, 1.0, 1.0)) is None  # rendered with other α
    assert cache.get(3, 64, ONE) is None and cache.get(3, 16, ONE) is not None
    assert cache.ranges(64, _unedited) == [(0, 3), (5, 7)]
    assert cache.ranges(16, _unedited) == [(3, 4)]


def test_invalidate_drops_only_frames_whose_alphas_changed() -> None:
    cache = FrameCache()
    _fill(cache, range(10), 64)
    before = cache.nbytes

    def edited(frame: int):  # a keyframe changed the mouth from frame 4 on
        return (1.0, 1.0, 2.0) if frame >= 4 else ONE

    assert cache.invalidate(edited) == 6
    assert len(cache) == 4 and cache.nbytes == before * 4 // 10
    assert cache.ranges(64, edited) == [(0, 4)]
    assert cache.invalidate(edited) == 0


def test_budget_drops_the_frames_farthest_from_the_playhead() -> None:
    one = 64 * 64 * 3
    cache = FrameCache(budget_bytes=5 * one)
    for f in range(20):
        cache.put(_entry(f, 64), playhead=10)
    assert cache.nbytes <= 5 * one and len(cache) == 5
    # the newest entry always stays; the others are the nearest to frame 10
    kept = sorted(e.frame for e in cache)
    assert 19 in kept and all(abs(f - 10) <= 9 for f in kept)
    assert cache.evicted == 15
    with pytest.raises(ValueError, match="uint8"):
        cache.put(CachedFrame(0, 64, ONE, np.zeros((64, 64, 3), np.float32), 1.0))
    with pytest.raises(ValueError, match="positive byte budget"):
        FrameCache(0)


def test_best_at_or_before_prefers_the_exact_frame_then_holds() -> None:
    cache = FrameCache()
    cache.put(_entry(10, 64))
    cache.put(_entry(12, 16))
    e = cache.best_at_or_before(12, (64, 16), _unedited, oldest=0)
    assert (e.frame, e.size) == (12, 16)  # the proxy of the frame itself
    cache.put(_entry(12, 64))
    e = cache.best_at_or_before(12, (64, 16), _unedited, oldest=0)
    assert (e.frame, e.size) == (12, 64)
    e = cache.best_at_or_before(15, (64, 16), _unedited, oldest=0)
    assert e.frame == 12  # held
    assert cache.best_at_or_before(40, (64, 16), _unedited, oldest=40 - 25) is None


def test_idle_plan_renders_proxies_ahead_then_refines() -> None:
    cache = FrameCache()
    job = _plan(cache, playhead=30, horizon=10)
    assert (job.frame, job.size) == (30, 16)
    _fill(cache, range(30, 40), 16)
    job = _plan(cache, playhead=30, horizon=10)
    assert (job.frame, job.size) == (30, 64)  # refined when idle
    _fill(cache, range(30, 40), 64)
    assert _plan(cache, playhead=30, horizon=10) is None
    # near the end: nothing past the clip unless looping
    assert _plan(FrameCache(), playhead=99, horizon=10).frame == 99
    job = _plan(FrameCache(), playhead=99, horizon=10, loop=True)
    assert job.frame == 99
    c = FrameCache()
    c.put(_entry(99, 16))
    assert _plan(c, playhead=99, horizon=10, loop=True).frame == 0


def test_playing_without_cache_leapfrogs_proxies_past_the_render_time() -> None:
    cache = FrameCache()
    # a proxy costs 200 ms = 5 frames at 25 fps: render the frame the playhead reaches then
    job = _plan(cache, playhead=20, playing=True, proxy_ms=200.0)
    assert (job.frame, job.size) == (20 + 5 + 1, 16)
    cache.put(_entry(26, 16))
    assert _plan(cache, playhead=20, playing=True, proxy_ms=200.0).frame == 27


def test_playing_extends_a_run_of_full_frames_while_it_is_ahead() -> None:
    cache = FrameCache()
    _fill(cache, range(20, 40), 64)
    job = _plan(cache, playhead=20, playing=True, full_ms=400.0)  # 11 frames of lead needed
    assert (job.frame, job.size) == (40, 64)
    # the run is shorter than a full render takes: proxies beyond it instead
    job = _plan(cache, playhead=35, playing=True, full_ms=400.0, proxy_ms=100.0)
    assert job.size == 16 and job.frame >= 40


def test_a_range_is_rendered_at_full_size_first_and_edits_reopen_it() -> None:
    cache = FrameCache()
    job = _plan(cache, playhead=0, range=(50, 60))
    assert (job.frame, job.size) == (50, 64)
    _fill(cache, range(50, 60), 64)
    assert _plan(cache, playhead=0, range=(50, 60), horizon=0) is None
    # playing inside the range: from the playhead on first
    c = FrameCache()
    assert _plan(c, playhead=55, range=(50, 60), playing=True).frame == 55

    def edited(frame: int):
        return (1.0, 1.0, 1.5) if frame >= 57 else ONE

    cache.invalidate(edited)
    job = _plan(cache, alphas_at=edited, playhead=0, range=(50, 60), horizon=0)
    assert (job.frame, job.size) == (57, 64)
