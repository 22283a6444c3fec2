"""A whole synthetic clip: audio, per-frame expression and pose, and the scene that renders it.

:func:`synthesize` is deterministic in the config: the same config gives byte-identical arrays and
frames. A synthetic subject stores its config in ``subject.json`` (``source["config"]``), so
:func:`config_from_source` and :func:`synthesize` rebuild exactly what it was made from.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..geometry import scale_intrinsics
from ..subject import default_train_frames
from ..timing import SAMPLE_RATE, num_frames
from . import head
from .config import SynthConfig
from .head import HeadFrame
from .motion import eye_track, head_motion, mouth_track
from .render import SynthScene
from .speech import synthesize_speech

GENERATOR_VERSION = 1
"""Bumped whenever the same config would render differently."""


@dataclass
class SynthSequence:
    """Ground truth of a synthetic clip of T frames (subject head frame, head units)."""

    cfg: SynthConfig
    scene: SynthScene
    audio: np.ndarray  # [S] float32 mono 16 kHz
    params: np.ndarray  # [T, 3] mouth (jaw drop, head units), left eye, right eye opening
    pose: np.ndarray  # [T, 4, 4] head-to-camera
    body_shift: np.ndarray  # [T, 3] torso offset from its rest place (camera frame, head units)
    blinks: np.ndarray  # [B] frames where a blink starts

    @property
    def num_frames(self) -> int:
        return int(self.params.shape[0])

    @property
    def K(self) -> np.ndarray:
        """Intrinsics [3, 3] at ``cfg.size``."""
        return self.cfg.K

    @property
    def origin(self) -> np.ndarray:
        """The subject's head-frame origin in the internal head frame [3]."""
        return self.scene.frame.offset

    def landmarks(self, params: np.ndarray | None = None) -> np.ndarray:
        """Landmarks [T, 68, 3] (or for ``params`` [..., 3]) in the subject's head frame."""
        return self.scene.landmarks(self.params if params is None else params)

    def render(
        self,
        i: int,
        params: np.ndarray | None = None,
        size: int | None = None,
        noise: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``i`` as RGB uint8 [size, size, 3] and its label mask [size, size].

        ``params`` [3] replaces the frame's expression (e.g. ``seq.params[i] * (2, 1, 1)`` opens
        the mouth twice as far); ``noise`` adds the camera's sensor noise of that frame.
        """
        size = size or self.cfg.size
        K = scale_intrinsics(self.K, self.cfg.size, size)
        p = self.params[i] if params is None else np.asarray(params, dtype=np.float64)
        key = i if noise else None
        return self.scene.render(p, self.pose[i], K, size, self.body_shift[i], key)


def synthesize(cfg: SynthConfig) -> SynthSequence:
    """The clip's audio, expression, poses and scene for ``cfg`` (renders nothing yet)."""
    cfg.check()
    samples = round(cfg.seconds * SAMPLE_RATE)
    frames = num_frames(samples)
    speech = synthesize_speech(cfg, samples)
    mouth = mouth_track(speech, cfg.mouth_max)
    eyes, blinks = eye_track(cfg, frames)
    params = np.column_stack([mouth, eyes])  # [T, 3]
    train = default_train_frames(frames)
    origin = head.to_head(head.landmarks_cm(params[:train])).mean(axis=(0, 1))
    scene = SynthScene(cfg, HeadFrame(tuple(float(v) for v in origin)))  # type: ignore[arg-type]
    internal, body = head_motion(cfg, scene.body_pose(), mouth)
    pose = scene.frame.subject_pose(internal)
    return SynthSequence(cfg, scene, speech.audio, params, pose, body, blinks)


@functools.lru_cache(maxsize=4)
def _cached(cfg: SynthConfig) -> SynthSequence:
    return synthesize(cfg)


def render_params(
    params: np.ndarray,
    pose: np.ndarray,
    K: np.ndarray,
    size: int,
    cfg: SynthConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render the synthetic person of ``cfg`` with expression ``params`` [3] (see
    :mod:`.head`), head-to-camera ``pose`` [4, 4] in that subject's head frame and ``K`` [3, 3]
    at ``size``: RGB uint8 [size, size, 3] and label mask uint8 [size, size]. No sensor noise."""
    seq = _cached(cfg or SynthConfig())
    return seq.scene.render(params, pose, K, size)


def landmarks_for(params: np.ndarray, cfg: SynthConfig | None = None) -> np.ndarray:
    """The 68 landmarks [..., 68, 3] for ``params`` [..., 3] in the head frame of ``cfg``'s
    subject (None: the internal frame, centred on the rest shape)."""
    if cfg is None:
        return head.landmarks_for(params)
    return _cached(cfg).landmarks(params)


def config_to_source(cfg: SynthConfig) -> dict[str, Any]:
    """``cfg`` as JSON-ready values."""
    return asdict(cfg)


def config_from_source(source: dict[str, Any]) -> SynthConfig:
    """The config a synthetic subject was made from (``subject.json`` ``source``)."""
    raw = source.get("config", source)
    known = {f.name for f in fields(SynthConfig)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known
    }
    return SynthConfig(**values)
