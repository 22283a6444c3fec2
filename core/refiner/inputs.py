"""The refiner's input: the head NeRF's low-resolution render of a frame, and its cache.

A frame's input is five channels at the render side L: the head's colour premultiplied by its
opacity (3), the opacity (1) and a depth feature (1), α · (½ + ½ · clamp((d − D) / R, −1, 1)):
the ray's expected depth d against the camera's distance D to the head's origin, in units of the
head box's half diagonal R. All three come from the renderer as it is; the head is not retrained.

Training renders the training frames once and keeps them in ``models/refiner/inputs-L.npz``
(uint8, with the head checkpoint's fingerprint; a retrained head makes it stale). The cache is
saved every ``SAVE_EVERY`` frames, atomically, so a cancelled render resumes where it stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..fidelity import evenly_spaced
from ..geometry import scale_intrinsics
from ..head.model import HeadModel
from ..head.renderer import HeadImage
from ..presets import REFINER_CACHE_STAGE
from ..progress import Job, Progress
from ..subject import Subject
from ..torso.compose import Compositor
from ..training import local_processes, process_map
from .net import upsample

SAVE_EVERY = 25
"""Frames rendered between two saves of the cache."""
STAGE = REFINER_CACHE_STAGE


def depth_feature(
    image: HeadImage, pose: np.ndarray, bbox: np.ndarray | torch.Tensor
) -> torch.Tensor:  # [L, L] in [0, 1]
    """α · (½ + ½ · clamp((d − D) / R, −1, 1)) of the module docstring."""
    box = torch.as_tensor(np.asarray(bbox, np.float32)).reshape(2, 3)
    radius = float((box[1] - box[0]).norm()) / 2.0
    dist = float(np.linalg.norm(np.asarray(pose)[:3, 3]))
    rel = ((image.depth - dist) / radius).clamp(-1.0, 1.0)
    return image.opacity * (0.5 + 0.5 * rel)


def image_inputs(
    image: HeadImage, pose: np.ndarray, bbox: np.ndarray | torch.Tensor
) -> torch.Tensor:  # [5, L, L]
    """The refiner's input channels of one rendered head (see the module docstring)."""
    feature = depth_feature(image, pose, bbox)
    return torch.cat(
        [image.head.permute(2, 0, 1), image.opacity[None], feature[None]], dim=0
    ).float()


def render_inputs(
    head: HeadModel, subject: Subject, frame: int, size: int, landmarks: np.ndarray | None = None
) -> torch.Tensor:  # [5, size, size] on the head's device
    """The head's render of ``frame`` at ``size``² as refiner input (``landmarks`` [68, 3]: the
    frame's tracked ones unless given)."""
    tracks = subject.tracks
    lms = tracks.lm_world[frame] if landmarks is None else landmarks
    K = scale_intrinsics(subject.meta.K, subject.meta.size, size)
    black = torch.zeros(size, size, 3, device=head.device)
    with torch.no_grad():
        image = head.render(K, tracks.pose[frame], lms, black)
    return image_inputs(image, tracks.pose[frame], head.field.bbox.cpu())


def torso_plate(
    compositor: Compositor,
    background: torch.Tensor,  # [3, S, S] in [0, 1]
    inputs: torch.Tensor,  # [B, 5, L, L] in [0, 1]
    scale: int,
) -> torch.Tensor:  # [B, 3, S, S] in [0, 1]
    """The plate of RefinerConfig.plate "torso": ``background`` completed by the torso UNet
    around the heads of ``inputs``, upsampled ×``scale`` (bilinear) to the background's size."""
    up = upsample(inputs[:, :4].float(), scale).clamp(0.0, 1.0)
    return compositor.plate(background, up[:, :3], up[:, 3:4])


def head_fingerprint(subject: Subject) -> str:
    """Changes whenever the subject's head model is retrained or replaced."""
    folder = subject.model_dir("head")
    h = hashlib.sha256((folder / "config.json").read_bytes())
    h.update(str((folder / "model.safetensors").stat().st_size).encode())
    return h.hexdigest()[:16]


def cache_path(subject: Subject, size: int) -> Path:
    return subject.model_dir("refiner") / f"inputs-{size}.npz"


def pick_frames(train: Sequence[int], count: int) -> list[int]:
    """``count`` frames spread evenly over ``train`` (all of them when count is 0 or more)."""
    frames = list(train)
    return [frames[i] for i in evenly_spaced(len(frames), count if count > 0 else None)]


def _read(path: Path, key: str) -> dict[int, np.ndarray]:
    """The frames already in the cache at ``path`` when its fingerprint is ``key``, else none."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return {}
            inputs = data["inputs"]  # read once: each data["inputs"] loads the whole array again
            return {int(i): inputs[k] for k, i in enumerate(data["frames"])}
    except (OSError, ValueError, KeyError):
        return {}  # damaged: render again


def _write(path: Path, key: str, done: dict[int, np.ndarray]) -> None:
    frames = sorted(done)
    atomic.write_npz(
        path,
        key=np.asarray(key),
        frames=np.asarray(frames, np.int64),
        inputs=np.stack([done[i] for i in frames]),
    )


def _as_cached(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0.0, 1.0).cpu() * 255.0).round().to(torch.uint8).numpy()


def _load_worker(subject_dir: str, size: int) -> tuple[HeadModel, Subject, int]:
    subject = Subject.open(Path(subject_dir))
    return HeadModel.load(subject.model_dir("head")), subject, size


def _render_in_worker(state: tuple[HeadModel, Subject, int], frame: int) -> np.ndarray:
    head, subject, size = state
    return _as_cached(render_inputs(head, subject, frame, size))


def _rendered(
    head: HeadModel, subject: Subject, frames: Sequence[int], size: int, workers: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame, uint8 [5, L, L] input) of each of ``frames`` in order, rendered here or in
    ``workers`` processes (:func:`~talkstudio.core.training.process_map`)."""
    args = (str(subject.root), size)
    state = (head, subject, size)
    done = process_map(_load_worker, args, _render_in_worker, frames, workers, state)
    with closing(done):
        yield from zip(frames, done)  # closing this stops the processes


def build_cache(
    subject: Subject, head: HeadModel, frames: Sequence[int], size: int
) -> Job[torch.Tensor]:
    """Render (or read back) the refiner inputs of ``frames``; returns uint8 [N, 5, L, L].

    Frames already cached for this head are not rendered again; progress is reported per frame.
    On the CPU the frames are rendered in two processes when torch has two threads or more
    (:func:`talkstudio.core.training.local_processes`) and enough frames are left to render
    (:func:`talkstudio.core.training.process_map`).
    """
    path = cache_path(subject, size)
    key = head_fingerprint(subject)
    wanted = set(frames)
    done = {i: x for i, x in _read(path, key).items() if i in wanted}
    todo = [i for i in frames if i not in done]
    yield Progress(STAGE, len(done), len(frames), f"{len(done)} of {len(frames)} frames cached")
    fresh = 0
    try:
        for i, x in _rendered(head, subject, todo, size, local_processes(head.device)):
            done[i] = x
            fresh += 1
            if fresh % SAVE_EVERY == 0:
                _write(path, key, done)
            yield Progress(STAGE, len(done), len(frames), f"frame {i} rendered at {size}²")
    finally:
        if fresh % SAVE_EVERY:  # the last frames, or what was rendered before a cancel
            _write(path, key, done)
    return torch.from_numpy(np.stack([done[i] for i in frames]))
