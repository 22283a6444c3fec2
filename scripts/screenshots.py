"""Render the studio's main window, the training wizard and the export dialog to PNGs.

Run under an X server so that the 3D landmark view (OpenGL) is drawn::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        python -m scripts.screenshots OUTDIR [--subject SUBJECT] [--video VIDEO]

Writes ``welcome.png``, ``main_window.png``, ``wizard_video.png``, ``wizard_preprocess.png``,
``wizard_training.png`` and ``export_dialog.png`` at the first of ``--sizes`` (window sizes, default
1600x1000 and 1024x700), and ``main_window_WxH.png`` and ``wizard_training_WxH.png`` at each (the
wizard as large as fits that screen, at most 900 × 720). The main window shows a trained subject
(``--subject``, else the benchmark's: the demo subject when it ships, else the synthetic bench
subject) with keyframed edits; the wizard checks and preprocesses ``--video`` (default
``../shared/data/May_5s.mp4``; the video pages are skipped without it) and trains a copy of the
subject with tiny step counts so that its progress bars, losses and previews have content; the
export dialog is caught mid-export.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, studio_subject
from benchmarks.qt import wait_until

TINY_TRAINING = {
    "stage1": {"steps": 40, "val_every": 20, "checkpoint_every": 40},
    "head": {
        "image_size": 64,
        "patch_size": 16,
        "steps": 40,
        "preview_every": 10,
        "bake_frames": 4,
    },
    "torso": {"image_size": 64, "base_width": 8, "steps": 40, "preview_every": 10},
    "refiner": {
        "base_width": 8,
        "up_width": 8,
        "crop_size": 64,
        "steps": 40,
        "cache_frames": 8,
        "preview_every": 10,
    },
}


def wait(condition, timeout_s: float = 900.0) -> None:
    """Run the event loop until ``condition()`` holds."""
    wait_until(condition, timeout_s, "timed out waiting for the studio")


def wait_window(window, condition, timeout_s: float = 900.0) -> None:
    """Like :func:`wait`, but stop with the window's error message when it shows one."""
    window.last_error = ""
    wait(lambda: condition() or bool(window.last_error), timeout_s)
    if window.last_error:
        raise RuntimeError(window.last_error)


def settle(ms: int = 400) -> None:
    """Let pending paints and layouts happen."""
    deadline = time.monotonic() + ms / 1000
    wait(lambda: time.monotonic() >= deadline)


def save(widget, path: Path) -> None:
    widget.raise_()
    settle()
    image = widget.grab()
    if not image.save(str(path)):
        raise RuntimeError(f"could not write {path}")
    print(f"wrote {path} ({image.width()}×{image.height()})")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """ "1600x1000,1024x700" → [(1600, 1000), (1024, 700)]."""
    sizes = []
    for item in text.split(","):
        w, _, h = item.strip().partition("x")
        if not (w.isdigit() and h.isdigit()):
            raise argparse.ArgumentTypeError(f"{item!r} is not a size like 1600x1000")
        sizes.append((int(w), int(h)))
    return sizes


def wizard_size(screen: tuple[int, int]) -> tuple[int, int]:
    """The wizard on a screen of ``screen`` pixels: at most 900 × 720, room for the title bar."""
    return min(900, screen[0] - 40), min(720, screen[1] - 40)


def main_window_shots(window, subject: Path, out: Path, sizes: list[tuple[int, int]]) -> None:
    save(window, out / "welcome.png")
    shown: list = []
    window.controller.shown.connect(shown.append)
    window.open_target(subject)
    wait_window(window, lambda: any(r.kind == "full" for r in shown))
    state = window.state
    n = state.num_frames
    for name, frame, value in (
        ("mouth", n // 5, 1.0),
        ("mouth", n // 3, 1.7),
        ("mouth", n // 2, 0.6),
        ("left_eye", n // 4, 1.0),
        ("left_eye", n // 4 + 6, 0.1),
        ("right_eye", 2 * n // 3, 0.4),
    ):
        state.set_keyframe(name, frame, value)
    shown.clear()
    state.set_frame(n // 3)
    wait_window(window, lambda: any(r.kind == "full" and r.frame == n // 3 for r in shown))
    window.timeline.select("mouth", n // 3)
    for k, (w, h) in enumerate(sizes):
        window.resize(w, h)
        wait(lambda w=w, h=h: (window.width(), window.height()) == (w, h), 10)
        save(window, out / f"main_window_{w}x{h}.png")
        if k == 0:
            save(window, out / "main_window.png")


def export_shot(window, out: Path, folder: Path) -> None:
    window.show_export()
    dialog = window.export_dialog
    dialog.path_edit.setText(str(folder / "take.mp4"))
    dialog.size_spin.setValue(256)
    dialog.start_spin.setValue(0)
    dialog.end_spin.setValue(min(59, dialog.end_spin.maximum()))
    job = dialog.start_export()
    assert job is not None
    wait(lambda: dialog.progress.value() >= 6)
    save(dialog, out / "export_dialog.png")
    dialog.cancel_export()
    wait(lambda: dialog.job is None)


def wizard_shots(
    window,
    subject: Path,
    video: Path | None,
    out: Path,
    folder: Path,
    sizes: list[tuple[int, int]],
) -> None:
    from talkstudio.app.wizard import TrainingWizard

    wizard = TrainingWizard(window, overrides=dict(TINY_TRAINING))
    wizard.resize(*wizard_size(sizes[0]))
    if video is not None and video.is_file():
        wizard.overrides["preprocess"] = {"size": 128}
        wizard.restart()
        wizard.show()
        page = wizard.video_page
        page.out_edit.setText(str(folder / video.stem))
        page.set_video(video)
        wait(lambda: page.job is None)
        save(wizard, out / "wizard_video.png")
        wizard.next()
        pre = wizard.preprocess_page
        wait(lambda: pre.isComplete() or (pre.job is None and pre.done_path is None))
        save(wizard, out / "wizard_preprocess.png")
    from talkstudio.core.subject import Subject

    copy = folder / (Subject.open(subject).meta.name or subject.name)
    shutil.copytree(subject, copy, ignore=shutil.ignore_patterns("models"))
    wizard.continue_subject(copy)
    wizard.show()
    wizard.next()
    train = wizard.train_page
    wait(lambda: train.job is None, timeout_s=3600)
    save(wizard, out / "wizard_training.png")
    for size in sizes:
        w, h = wizard_size(size)
        wizard.resize(w, h)
        wait(lambda w=w, h=h: (wizard.width(), wizard.height()) == (w, h), 10)
        save(wizard, out / f"wizard_training_{size[0]}x{size[1]}.png")
    wizard.reject()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--subject", type=Path, help="a trained subject folder")
    ap.add_argument("--video", type=Path, default=REPO.parent / "shared" / "data" / "May_5s.mp4")
    ap.add_argument("--no-wizard", action="store_true", help="only the main window and export")
    ap.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("1600x1000,1024x700"),
        help="window sizes WxH,WxH (default 1600x1000,1024x700)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from talkstudio.app.studio import create_application

    app = create_application(["talkstudio-screenshots"])
    from PySide6.QtCore import QSettings

    from talkstudio.app.main_window import MainWindow

    subject = args.subject if args.subject is not None else studio_subject()[0]
    with tempfile.TemporaryDirectory(prefix="talkstudio-shots-") as tmp:
        folder = Path(tmp)
        settings = QSettings(str(folder / "shots.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, device="cpu")
        window.ask_unsaved = lambda: "discard"
        window.resize(*args.sizes[0])
        window.show()
        main_window_shots(window, subject, args.out, args.sizes)
        export_shot(window, args.out, folder)
        if not args.no_wizard:
            wizard_shots(window, subject, args.video, args.out, folder, args.sizes)
        window.shutdown()
        window.close()
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
