"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def show_widget(qtbot, widget, size: tuple[int, int] | None = None):
    """``widget`` resized to ``size``, shown and exposed; qtbot closes it after the test."""
    qtbot.addWidget(widget)
    if size is not None:
        widget.resize(*size)
    with qtbot.waitExposed(widget):
        widget.show()
    return widget


def spin_key(qtbot, panel, name: str, value: float):
    """Type ``value`` into the edits panel's ``name`` spin box (one committed edit); its row."""
    row = panel.rows[name]
    with qtbot.waitSignal(panel.editCommitted, timeout=1000):
        row.spin.setValue(value)
    return row


def render_command(subject: Path, audio: Path, out: Path, *options: str) -> list[str]:
    """The argv of ``talkstudio render`` at 64² in a fresh Python, with extra ``options``."""
    import sys

    return [
        *(sys.executable, "-m", "talkstudio.app.cli", "render", "--subject", str(subject)),
        *("--audio", str(audio), "--out", str(out), "--size", "64", *options),
    ]


def shared_data(name: str) -> Path:
    """Path of ``../shared/data/<name>``; skips the calling test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(
            f"{path} is absent: the real-footage data lives in ../shared/data beside the repo"
        )
    return path


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """Keep torch on the CI machine's two cores without oversubscription."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(2)


def write_subject(
    root: Path,
    name: str,
    images: list[np.ndarray],
    masks: np.ndarray,
    lm_world: np.ndarray,
    pose: np.ndarray,
    audio: np.ndarray | None,
    mean_shape: np.ndarray | None = None,
) -> Path:
    """Write a valid subject folder at ``root`` from its parts: one RGB image [S, S, 3] and one
    label mask [S, S] a frame (``masks`` [T, S, S] or one [S, S] for all), the tracks
    ``lm_world`` [T, 68, 3] and ``pose`` [T, 4, 4] (lm2d projected from them), and 16 kHz mono
    ``audio`` (None: a silent source). ``mean_shape`` defaults to that of the training frames."""
    import numpy as np

    from talkstudio.core import geometry, subject

    frames, size = len(images), images[0].shape[0]
    meta = subject.SubjectMeta(
        name=name,
        size=size,
        num_frames=frames,
        intrinsics=geometry.default_intrinsics(size).tolist(),
        head_bbox=[[-1.0, -1.2, -1.0], [1.0, 1.2, 1.0]],
        has_audio=audio is not None,
        frame_ext=".png",
    )
    subj = subject.create(root, meta)
    masks = np.broadcast_to(masks, (frames, size, size))
    for i, image in enumerate(images):
        subj.write_frame(i, image)
        subj.write_mask(i, masks[i])
    subj.write_background(np.zeros((size, size, 3), np.uint8))
    if mean_shape is None:
        mean_shape = lm_world[: meta.train_frames].mean(0)
    subj.write_tracks(
        subject.Tracks(
            lm2d=geometry.project_head_points(meta.K, pose, lm_world).astype(np.float32),
            lm_world=lm_world.astype(np.float32),
            pose=pose.astype(np.float32),
            eye_ratio=np.ones((frames, 2), np.float32),
            tracked=np.ones(frames, bool),
            mean_shape=mean_shape.astype(np.float32),
            eye_open_area=np.array([0.02, 0.02], np.float32),
        )
    )
    if audio is not None:
        subj.write_audio(audio)
    return root


def make_tiny_subject(root: Path, frames: int = 12, size: int = 32, audio: bool = True) -> Path:
    """Write a small valid subject folder (random content, consistent shapes) at ``root``."""
    import numpy as np

    from talkstudio.core import subject
    from talkstudio.core.timing import SAMPLES_PER_FRAME

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(frames)]
    mask = np.full((size, size), subject.MASK_PERSON | subject.MASK_HEAD, np.uint8)
    shape = rng.normal(0, 0.3, (68, 3)).astype(np.float32)
    pose = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    pose[:, 2, 3] = 6.0
    t = np.arange(frames * SAMPLES_PER_FRAME) / 16000
    sound = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32) if audio else None
    lm_world = np.repeat(shape[None], frames, 0)
    return write_subject(root, "tiny", images, mask, lm_world, pose, sound, mean_shape=shape)


@pytest.fixture
def tiny_subject(tmp_path: Path) -> Path:
    """A small valid subject folder (12 frames, 32²) in a temporary directory."""
    return make_tiny_subject(tmp_path / "subject")


def schematic_face(mouth_gap: float = 0.1, eye_gap: float = 0.1) -> np.ndarray:
    """A frontal iBUG-68 face [68, 3] in head units (x: subject's left, y: down, z: back).

    Outer eye corners 36 and 45 are 0.9 apart (the head frame's scale); ``mouth_gap`` is the
    inner-lip gap 62–66 and ``eye_gap`` the lid gap of both eyes, in head units.
    """
    import numpy as np

    p = np.zeros((68, 3))
    u = np.linspace(0.0, np.pi, 17)
    p[:17, 0] = -0.68 * np.cos(u)  # jaw from the right ear (image left) round the chin
    p[:17, 1] = -0.15 + 0.95 * np.sin(u) ** 1.3
    p[:17, 2] = 0.45 - 0.5 * np.sin(u)
    for first, cx in ((17, -0.33), (22, 0.33)):  # brows
        xs = cx + np.linspace(-0.2, 0.2, 5)
        p[first : first + 5, 0] = xs
        p[first : first + 5, 1] = -0.45 - 0.08 * np.cos((xs - cx) / 0.2 * np.pi / 2)
        p[first : first + 5, 2] = -0.05
    p[27:31, 1] = np.linspace(-0.32, 0.08, 4)  # nose bridge, coming forward
    p[27:31, 2] = np.linspace(-0.12, -0.3, 4)
    p[31:36, 0] = np.linspace(-0.14, 0.14, 5)
    p[31:36, 1] = 0.15 + 0.03 * np.abs(np.linspace(-2, 2, 5))
    p[31:36, 2] = -0.18

    def eye(first: int, cx: float) -> None:
        xs = cx + np.array([-0.12, -0.05, 0.05, 0.12, 0.05, -0.05])
        ys = -0.28 + np.array([0, -1, -1, 0, 1, 1]) * eye_gap / 2
        p[first : first + 6, 0], p[first : first + 6, 1] = xs, ys
        p[first : first + 6, 2] = -0.08

    eye(36, -0.33)  # right eye (image left); outer corner 36 at x = -0.45
    eye(42, 0.33)  # left eye; outer corner 45 at x = 0.45
    ox = np.array([-0.25, -0.15, -0.06, 0, 0.06, 0.15, 0.25, 0.15, 0.06, 0, -0.06, -0.15])
    oy = np.array([0, -0.06, -0.09, -0.07, -0.09, -0.06, 0, 0.08, 0.11, 0.12, 0.11, 0.08])
    p[48:60, 0], p[48:60, 1] = ox, 0.42 + oy + np.r_[np.zeros(7), np.full(5, mouth_gap / 2)]
    p[48:60, 1] -= np.r_[0, np.full(5, mouth_gap / 2), np.zeros(6)]
    ix = np.array([-0.19, -0.07, 0, 0.07, 0.19, 0.07, 0, -0.07])
    iy = np.array([0, -1, -1, -1, 0, 1, 1, 1]) * mouth_gap / 2
    p[60:68, 0], p[60:68, 1] = ix, 0.42 + iy
    p[48:68, 2] = -0.15 + 0.4 * p[48:68, 0] ** 2
    return p


def face_track(frames: int = 50, seed: int = 0) -> np.ndarray:
    """A talking schematic face [frames, 68, 3]: the mouth opens and closes, the eyes blink."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    gaps = 0.02 + 0.1 * np.abs(np.sin(2 * np.pi * t / 12 + rng.uniform(0, np.pi)))
    eyes = np.where(t % 40 == 20, 0.01, 0.1)
    return np.stack([schematic_face(g, e) for g, e in zip(gaps, eyes)]).astype(np.float32)


@pytest.fixture(scope="session")
def demo_subject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in demo subject (shipped weights, media regenerated from its seed), made once
    per test run in a temporary cache. Tests must not write into it."""
    from talkstudio.core.demo import ensure_demo_subject

    return ensure_demo_subject(tmp_path_factory.mktemp("demo_cache"))


@pytest.fixture(scope="session")
def video_subject(demo_subject: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo subject as if cropped from a small source video (tests/_video_subject.py)."""
    from _video_subject import make_video_subject

    return make_video_subject(demo_subject, tmp_path_factory.mktemp("video_subject"))


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of two CPUs for the tests of one module (skipped without Ray)."""
    ray = pytest.importorskip("ray", reason="Ray is the optional extra `ray` (in dev extras)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
