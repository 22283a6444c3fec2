"""Render every studio widget to a PNG, for a look at them without the application.

Run under an X server for the OpenGL viewport, e.g.::

    QT_QPA_PLATFORM=xcb xvfb-run -a python -m scripts.widget_gallery build/widget_gallery

Without one (``QT_QPA_PLATFORM=offscreen``) the 3D viewport is left out. The widgets are shown
with 20 s of a synthetic subject's speech and its talking, blinking landmark track
(``core.synthetic``, seed 0; nothing is rendered), keyframes on all three lanes, a frame of
``../shared/data/May_5s.mp4`` in the preview when it exists, and made-up loss curves.
"""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def talking_clip(seconds: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic subject's speech [S] at 16 kHz and its landmark track [T, 68, 3]."""
    from talkstudio.core.synthetic import SynthConfig, synthesize

    seq = synthesize(SynthConfig(seed=0, seconds=seconds, size=64))
    return seq.audio, seq.landmarks().astype(np.float32)


def preview_image(size: int = 256) -> np.ndarray:
    """A real frame from ../shared/data when present, else a gradient test card [size, size, 3]."""
    video = REPO.parent / "shared" / "data" / "May_5s.mp4"
    if video.is_file():
        from talkstudio.core.media import iter_video_frames

        for frame in iter_video_frames(video, max_frames=1):
            rgb = frame.rgb
            h, w = rgb.shape[:2]
            side = min(h, w)
            crop = rgb[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
            idx = np.linspace(0, side - 1, size).astype(int)
            return np.ascontiguousarray(crop[idx][:, idx])
    yy, xx = np.mgrid[0:size, 0:size] / size
    return (np.stack([xx, yy, 0.5 + 0.5 * np.sin(8 * xx)], -1) * 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from talkstudio.app.qt_env import clean_qt_environment

    clean_qt_environment()
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtWidgets import QApplication, QGridLayout, QWidget

    # pyqtgraph.opengl caches its shader programs globally: every GL view must share objects.
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    gl_ok = app.platformName() not in ("offscreen", "minimal")

    from talkstudio.core.progress import Progress
    from talkstudio.widgets.alpha_panel import AlphaPanel
    from talkstudio.widgets.loss_plot import LossHistory, LossPlot
    from talkstudio.widgets.preview import Preview
    from talkstudio.widgets.state import EditState, PlaybackState
    from talkstudio.widgets.timeline import Timeline
    from talkstudio.widgets.transport import Transport

    audio, track = talking_clip()
    state = EditState()
    state.set_audio(audio)
    state.set_track(track)
    playback = PlaybackState(state)
    for name, keys in {
        "left_eye": [(40, 1.0), (60, 0.0), (80, 1.0)],
        "right_eye": [(300, 1.0), (330, 1.6)],
        "mouth": [(100, 1.0), (150, 2.0), (260, 2.0), (320, 0.6), (420, 1.0)],
    }.items():
        for frame, value in keys:
            state.set_keyframe(name, frame, value)
    state.set_frame(210)
    state.set_keyframe("mouth", 210, 1.6)

    shots: list[tuple[str, QWidget, tuple[int, int]]] = []
    timeline = Timeline(state)
    timeline.select("mouth", 150)
    shots.append(("timeline", timeline, (1100, 230)))
    zoomed = Timeline(state)
    shots.append(("timeline_zoomed", zoomed, (1100, 230)))
    shots.append(("alpha_panel", AlphaPanel(state), (760, 120)))
    preview = Preview()
    preview.show_frame(preview_image(), 84.0, "fast")
    shots.append(("preview", preview, (420, 320)))
    shots.append(("transport", Transport(state, playback), (760, 40)))
    history = LossHistory()
    rng = np.random.default_rng(1)
    for step in range(0, 3000, 5):
        decay = np.exp(-step / 700)
        history.add(
            Progress(
                "train head",
                step,
                3000,
                losses={
                    "rgb": 0.02 + 0.3 * decay * rng.uniform(0.8, 1.2),
                    "opacity": 0.005 + 0.1 * decay**2 * rng.uniform(0.7, 1.3),
                    "eye": 0.01 + 0.05 * decay * rng.uniform(0.5, 1.5),
                },
            )
        )
    loss = LossPlot(history)
    loss.redraw()
    shots.append(("loss_plot", loss, (480, 280)))
    if gl_ok:
        from talkstudio.widgets.landmarks3d import Landmarks3D

        shots.append(("landmarks3d", Landmarks3D(state), (420, 420)))

    for _name, widget, (w, h) in shots:
        widget.resize(w, h)
        widget.show()
    app.processEvents()
    zoomed.set_visible_range(8.0, 9.2)
    app.processEvents()
    for name, widget, _ in shots:
        widget.grab().save(str(args.out / f"{name}.png"))
        print("wrote", args.out / f"{name}.png")

    if gl_ok:
        view = shots[-1][1]
        state.set_keyframe("mouth", state.frame, 2.0)
        app.processEvents()
        view.grab().save(str(args.out / "landmarks3d_mouth2.png"))
        view.setCameraPosition(elevation=20, azimuth=-40)
        app.processEvents()
        view.grab().save(str(args.out / "landmarks3d_orbit.png"))
        print("wrote landmarks3d_mouth2.png, landmarks3d_orbit.png")

    studio = QWidget()
    grid = QGridLayout(studio)
    grid.addWidget(Preview(), 0, 0)
    grid.itemAtPosition(0, 0).widget().show_frame(preview_image(), 1430.0, "full")
    if gl_ok:
        from talkstudio.widgets.landmarks3d import Landmarks3D

        grid.addWidget(Landmarks3D(state), 0, 1)
    grid.addWidget(AlphaPanel(state), 1, 0, 1, 2)
    grid.addWidget(Transport(state, playback), 2, 0, 1, 2)
    grid.addWidget(Timeline(state), 3, 0, 1, 2)
    studio.resize(1100, 900)
    studio.show()
    app.processEvents()
    studio.grab().save(str(args.out / "together.png"))
    print("wrote", args.out / "together.png")
    # Tear the widgets down while the application is alive, not in the interpreter's final
    # garbage collection, where Qt objects can go in an order Qt does not expect.
    for widget in app.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    app.processEvents()
    gc.collect()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    raise SystemExit(main())
