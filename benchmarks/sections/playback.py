"""Benchmark section ``playback``: what the studio's preview shows while playing.

Measured in the real main window (offscreen Qt platform, the engine in its own thread, CPU) on
256² previews, over 5 s of play from a third of the clip (:mod:`talkstudio.app.playback`):

- **frames shown per second, no cache**: the playback cache is emptied and playback starts at
  once: how many different pictures the preview got per second (low-resolution proxies
  rendered ahead of the playhead, the full frames that follow), how many of them at full size,
  and how far the frame shown was behind the playhead at worst (frames; 25 = 1 s);
- **frames shown per second, cached range**: "Render preview of range" on the 5 s first (the
  time it took is noted), then the same play: at 25 fps every frame should be there.

Subject: as the ``studio`` section (``$TALKSTUDIO_STUDIO_SUBJECT``, else the built-in demo, else
a synthetic subject trained here). Torch threads: ``$TALKSTUDIO_BENCH_THREADS`` (default 1: on a
loaded machine more threads make the small proxy renders slower). A quick run plays 1 s at 64².
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.bench import Context, Measure
from benchmarks.common import set_threads, studio_subject
from benchmarks.qt import wait_until

SIZE = 256
PLAY_S = 5.0


def _play(window, start: int, seconds: float) -> tuple[int, int, int, float]:
    """Play ``seconds`` from ``start``: (pictures shown, of them at full size, the worst lag
    behind the playhead in frames, seconds played)."""
    from PySide6.QtCore import QCoreApplication

    shown: list[tuple[int, int]] = []
    lag = [0]

    def displayed(head: int, frame: int, size: int) -> None:
        lag[0] = max(lag[0], head - frame)
        if not shown or shown[-1] != (frame, size):
            shown.append((frame, size))

    window.playback_cache.displayed.connect(displayed)
    window.state.set_frame(start)
    window.playback.play()
    t0 = time.perf_counter()
    wait_until(lambda: time.perf_counter() - t0 >= seconds, seconds + 60)
    window.playback.pause()
    played = time.perf_counter() - t0
    window.playback_cache.displayed.disconnect(displayed)
    QCoreApplication.processEvents()
    full = sum(1 for _, s in shown if s == window.client.size)
    return len(shown), full, lag[0], played


def run(ctx: Context) -> list[Measure]:
    from PySide6.QtCore import QSettings

    from talkstudio.app.main_window import MainWindow
    from talkstudio.app.studio import create_application

    threads = set_threads(1)
    size, seconds = ctx.pick(SIZE, 64), ctx.pick(PLAY_S, 1.0)
    subject, which = studio_subject(ctx.results)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = create_application(["bench"])
    measures: list[Measure] = []
    with tempfile.TemporaryDirectory(prefix="talkstudio-bench-") as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, device="cpu", use_gl=False)
        window.ask_unsaved = lambda: "discard"
        window.set_preview_size(size)
        window.show()
        shown: list = []
        window.controller.shown.connect(shown.append)
        window.open_target(subject)
        wait_until(lambda: any(r.kind == "full" for r in shown), 600)
        cache = window.playback_cache
        n = window.state.num_frames
        frames = round(seconds * window.playback.fps)
        start = min(n // 3, max(n - frames - 1, 0))
        load = os.getloadavg()[0]
        note = f"{which}; {size}² previews, CPU, {threads} torch thread(s), load {load:.1f}"

        def play(case: str, detail: str) -> None:
            count, full, lag, played = _play(window, start, seconds)
            shown_fps = Measure(
                f"frames shown per second while playing, {case}",
                "fps",
                [count / played],
                f"{note}; {full} of {count} at full size{detail}",
            )
            worst = Measure(f"worst lag behind the playhead, {case}", "frames", [float(lag)], note)
            measures.extend([shown_fps, worst])

        cache.clear()
        play("no cache", ", the rest proxies")

        cache.clear()
        window.state.set_frame(start)
        t0 = time.perf_counter()
        cache.render_range(start, min(start + frames + 2, n))
        wait_until(lambda: cache.range_cached(start, min(start + frames + 2, n)), 3600)
        cached_s = time.perf_counter() - t0
        play("cached range", f"; rendering the range took {cached_s:.0f} s")
        window.shutdown()
        window.close()
    del app
    return measures
