"""Benchmark section ``studio``: the studio's responsiveness through the real GUI path.

Measured in the real main window (offscreen Qt platform, the engine in its own thread, CPU), on
256² previews:

- **slider release → first updated preview**: the α3 slider is pressed, moved to a new value
  and released (``setSliderDown``/``setValue``, the signals a mouse drag sends); from the
  release to the first preview that shows the new value (the fast render, or the full one when
  it comes first) — milliseconds, median of ``max(reps, 20)``;
- **slider release → full refined frame**: from the same release to the full frame with the new
  value on the preview;
- **longest GUI-thread stall during an export**: a 10 ms QTimer in the GUI thread records its
  ticks while the export dialog writes the first second (25 frames) of the clip at 256²; the
  longest gap between two ticks, and the 99th percentile of the gaps (one export);
- **longest GUI-thread stall during training**: the same timer while the training wizard trains
  a copy of the subject (frames only) with the preview preset, 30 steps per part;
- **first paint after launch**: a fresh ``python`` process that creates the application and the
  main window exactly as ``talkstudio studio`` does; from ``Popen`` until the window reports its
  first expose (milliseconds, median of 5 launches).

Subject: ``$TALKSTUDIO_STUDIO_SUBJECT`` when set; else the built-in demo subject when it ships;
else a synthetic subject (8 s, 256²) trained here with shortened preview runs (head 400 steps at
128², torso 300 steps, base width 16; no stage 1: the clip replays the subject's own speech),
kept in ``bench_results/studio_subject``. Torch threads: ``$TALKSTUDIO_BENCH_THREADS`` (default
2) in the engine thread. A quick run uses 64² previews, 2 slider releases, a 3-frame export,
2 training steps per part at 64² and one launch.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench import Context, Measure
from benchmarks.common import set_threads, studio_subject
from benchmarks.qt import wait_until

SIZE = 256
MIN_REPS = 20
EXPORT_FRAMES = 25
"""Frames exported while the GUI thread's timer is watched (1 s of video)."""


def _app():
    from talkstudio.app.studio import create_application

    return create_application(["bench"])


def _wait(app, condition, timeout_s: float = 600.0) -> None:
    wait_until(condition, timeout_s, "the studio did not answer in time")


def _open_window(subject: Path, settings_dir: Path, size: int):
    from PySide6.QtCore import QSettings

    from talkstudio.app.main_window import MainWindow

    settings = QSettings(str(settings_dir / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, device="cpu", use_gl=False)
    window.ask_unsaved = lambda: "discard"
    window.set_preview_size(size)
    window.show()
    shown: list = []
    window.controller.shown.connect(lambda r: shown.append((time.perf_counter(), r)))
    window.open_target(subject)
    return window, shown


def _slider_release(
    app, window, shown: list, reps: int
) -> tuple[list[float], list[float], list[float]]:
    """ms from the release to the first preview of the new value, to its full frame, and the
    part of the first that was not the engine's own render time (the GUI path's overhead)."""
    slider = window.alpha_panel.rows["mouth"].slider
    first, full, overhead = [], [], []
    values = [40, 160, 70, 190, 20, 130, 100, 180]
    for k in range(reps + 1):  # the first one warms up the frame's caches
        target = values[k % len(values)] / 100 + 0.01 * (k // len(values))
        slider.setSliderDown(True)
        slider.setValue(round(target * 100))
        shown.clear()
        t0 = time.perf_counter()
        slider.setSliderDown(False)  # the release
        value = round(slider.value() / 100, 4)

        def has(kind: str | None, v: float = value) -> bool:
            return any(r.alphas[2] == v and (kind is None or r.kind == kind) for _, r in shown)

        _wait(app, lambda: has("full"))
        t_first, r_first = next((t, r) for t, r in shown if r.alphas[2] == value)
        t_full = next(t for t, r in shown if r.alphas[2] == value and r.kind == "full")
        if k:
            first.append((t_first - t0) * 1000)
            full.append((t_full - t0) * 1000)
            overhead.append(first[-1] - r_first.ms)
    return first, full, overhead


def _export_stall(app, window, out: Path, size: int, frames: int) -> tuple[list[float], float, int]:
    """Gaps (ms) between 10 ms GUI-thread timer ticks while exporting ``frames`` at ``size``²."""

    window.show_export()
    dialog = window.export_dialog
    dialog.path_edit.setText(str(out))
    dialog.size_spin.setValue(size)
    dialog.start_spin.setValue(0)
    dialog.end_spin.setValue(min(frames, window.state.num_frames) - 1)
    started = []
    gaps, seconds = _timer_gaps(
        app, lambda: started.append(dialog.start_export()), lambda: dialog.job is None
    )
    job = started[0]
    if job is None or job.outcome != "finished":
        raise RuntimeError(f"the export did not finish: {dialog.eta_label.text()}")
    return gaps, seconds, dialog.progress.maximum()


def _timer_gaps(app, start, done) -> tuple[list[float], float]:
    """Call ``start()``, then run the event loop until ``done()`` with a 10 ms QTimer in the
    GUI thread; the gaps (ms) between its ticks and the seconds it took."""
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    start()
    _wait(app, done, timeout_s=3600)
    seconds = time.perf_counter() - t0
    timer.stop()
    return [(b - a) * 1000 for a, b in itertools.pairwise(ticks)], seconds


TRAIN_STEPS = {"stage1": {"steps": 30}, "head": {"steps": 30}, "torso": {"steps": 30}}
"""The training whose GUI stalls are measured: the preview preset, 30 steps per part."""
QUICK_TRAIN_STEPS = {
    "stage1": {"steps": 2, "val_every": 1},
    "head": {"steps": 2, "image_size": 64, "patch_size": 16, "bake_frames": 2},
    "torso": {"steps": 2, "image_size": 64, "base_width": 8},
}
"""A quick run's training: 2 steps per part, small images."""


def _training_stall(
    app, subject: Path, folder: Path, overrides: dict[str, dict[str, object]]
) -> tuple[list[float], float]:
    """Gaps (ms) between 10 ms GUI-thread timer ticks while the wizard trains a copy of
    ``subject`` (its frames, no models) with the preview preset for a few steps per part."""
    import shutil

    from talkstudio.app.wizard import TrainingWizard

    copy = folder / "training"
    shutil.copytree(subject, copy, ignore=shutil.ignore_patterns("models"))
    wizard = TrainingWizard(overrides=overrides)
    wizard.show()
    wizard.continue_subject(copy)
    train = wizard.train_page
    gaps, seconds = _timer_gaps(app, wizard.next, lambda: train.job is None)  # next() trains
    if not train.isComplete():
        raise RuntimeError(f"the training did not finish: {train.status.text()}")
    wizard.reject()
    return gaps, seconds


FIRST_PAINT = """
import sys, time
from talkstudio.app.studio import create_application
app = create_application()
from PySide6.QtCore import QEvent, QObject, QSettings
from talkstudio.app.main_window import MainWindow
class Exposed(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Expose and obj.isExposed():
            print("exposed", time.time(), "torch" in sys.modules, flush=True)
            app.quit()
        return False
window = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.windowHandle() or window.winId()
window.windowHandle().installEventFilter(Exposed(app))
window.show()
app.exec()
window.shutdown()
"""


def _first_paint(settings_dir: Path, launches: int = 5) -> tuple[list[float], bool]:
    out, torch_loaded = [], False
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    for _ in range(launches):
        t0 = time.time()
        res = subprocess.run(
            [sys.executable, "-c", FIRST_PAINT, str(settings_dir / "paint.ini")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        line = next((x for x in res.stdout.splitlines() if x.startswith("exposed")), None)
        if line is None:
            raise RuntimeError(f"the studio did not paint: {res.stderr[-2000:]}")
        _, stamp, torch_flag = line.split()
        out.append((float(stamp) - t0) * 1000)
        torch_loaded |= torch_flag == "True"
    return out, torch_loaded


def _gap_p99(gaps: list[float]) -> float:
    return statistics.quantiles(gaps, n=100)[98] if len(gaps) > 100 else max(gaps)


def run(ctx: Context) -> list[Measure]:
    import tempfile

    set_threads(2)
    reps = ctx.pick(max(ctx.reps, MIN_REPS), 2)
    size, export_frames = ctx.pick(SIZE, 64), ctx.pick(EXPORT_FRAMES, 3)
    training = ctx.pick(TRAIN_STEPS, QUICK_TRAIN_STEPS)
    subject, which = studio_subject(ctx.results)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = _app()
    measures: list[Measure] = []
    with tempfile.TemporaryDirectory(prefix="talkstudio-bench-") as tmp:
        folder = Path(tmp)
        window, shown = _open_window(subject, folder, size)
        _wait(app, lambda: any(r.kind == "full" for _, r in shown))
        frames = window.state.num_frames
        window.state.set_frame(frames // 3)
        _wait(app, lambda: any(r.frame == frames // 3 and r.kind == "full" for _, r in shown))
        first, full, overhead = _slider_release(app, window, shown, reps)
        note = f"{which}; {size}² previews, engine on CPU"
        measures += [
            Measure("slider release -> first updated preview", "ms", first, note),
            Measure("slider release -> full refined frame", "ms", full, note),
            Measure(
                "  of which not engine render time", "ms", overhead, "signals, queues, painting"
            ),
        ]
        gaps, seconds, count = _export_stall(
            app, window, folder / "export.mp4", size, export_frames
        )
        p99 = _gap_p99(gaps)
        export_note = f"{count} frames at {size}² in {seconds:.1f} s; 10 ms GUI timer"
        measures += [
            Measure("longest GUI stall during export", "ms", [max(gaps)], export_note),
            Measure("GUI timer gap p99 during export", "ms", [p99], export_note),
            Measure("export time per frame", "ms", [seconds * 1000 / count], export_note),
        ]
        window.shutdown()
        window.close()
        gaps, seconds = _training_stall(app, subject, folder, training)
        p99 = _gap_p99(gaps)
        steps = training["head"]["steps"]
        train_note = f"preview preset, {steps} steps per part, {seconds:.0f} s; 10 ms GUI timer"
        measures += [
            Measure("longest GUI stall during training", "ms", [max(gaps)], train_note),
            Measure("GUI timer gap p99 during training", "ms", [p99], train_note),
        ]
        paint, torch_loaded = _first_paint(folder, ctx.pick(5, 1))
        measures.append(
            Measure(
                "launch -> first paint of the main window",
                "ms",
                paint,
                f"new process, offscreen; torch imported before the paint: {torch_loaded}",
            )
        )
    return measures
