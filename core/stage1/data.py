"""Stage-1 training data from a subject: audio features and normalised landmark windows.

Normalisation (docs/design.md "Stage 1", paper "landmark shifting"): the 37
points (iBUG 0–16, 48–67) of ``L_world`` (head frame) become displacements from the subject's
mean landmarks, divided per axis by the extent of the mean 68-point shape's bounding box, so the
face spans [-0.5, 0.5] on every axis: ``disp = (L[:, STAGE1_POINTS] - mean) / scale``. The mean
is over the training split (docs/design.md "Splits": the last 10 % validate and are never trained on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SubjectError
from ..landmarks import STAGE1_POINTS
from ..subject import Subject, steady_frames
from ..timing import SAMPLES_PER_FRAME
from . import augment
from .features import AudioFrontEnd, loudness_gain

MIN_TRAIN_FRAMES = 8


@dataclass
class LandmarkNorm:
    """Mean 37 points [37, 3] (head units) and the per-axis scale [3] of the normalised frame."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_landmarks(cls, lm_world: np.ndarray) -> LandmarkNorm:
        """From the training frames' ``lm_world`` [T, 68, 3]."""
        mean68 = lm_world.mean(axis=0)  # [68, 3]
        extent = mean68.max(axis=0) - mean68.min(axis=0)  # [3]
        scale = np.maximum(extent, 1e-3 * max(float(extent.max()), 1e-6))
        return cls(
            mean=mean68[list(STAGE1_POINTS)].astype(np.float32), scale=scale.astype(np.float32)
        )

    def normalise(self, points37: np.ndarray) -> np.ndarray:
        return ((points37 - self.mean) / self.scale).astype(np.float32)


def subject_audio(subject: Subject, offset: float = 0.0) -> np.ndarray:
    """The subject's audio cut or padded to exactly ``num_frames * 640`` samples, moved by
    ``offset`` frames back in line with its picture (:mod:`.sync`; positive: the sound was
    late)."""
    try:
        audio = subject.load_audio()
    except SubjectError as exc:
        raise SubjectError(f"cannot train stage 1 on {subject.root}: {exc}") from exc
    total = subject.meta.num_frames * SAMPLES_PER_FRAME
    out = np.zeros(total, dtype=np.float32)
    out[: min(total, len(audio))] = audio[:total]
    if offset:
        from .sync import shift_audio

        return shift_audio(out, offset)
    return out


def subject_gain(subject: Subject) -> float:
    """Loudness gain of the subject's recording, measured on its training audio.

    Every part of the recording (training windows, validation frames) is scaled by this one
    gain, as the person's voice had one level; a separate driving clip gets its own.
    """
    n = subject.meta.train_frames * SAMPLES_PER_FRAME
    return loudness_gain(subject_audio(subject)[:n])


@dataclass
class Stage1Data:
    """The training split of one subject, ready to cut into windows."""

    feats: np.ndarray  # [T, in_dim] front-end rows of the training audio
    disp: np.ndarray  # [T, 37, 3] normalised displacements
    norm: LandmarkNorm
    gain: float
    """Loudness gain of the training audio (:func:`subject_gain`), applied to its features."""
    weight: np.ndarray
    """[T] loss weight per frame: 0 inside untracked runs longer than 0.5 s, whose landmarks
    preprocessing held (core/subject.py ``steady_frames``), else 1."""

    segments: np.ndarray | None = None
    """[S + 1] boundaries of the clips laid end to end in the arrays above: the clean training
    audio first, then its voice copies (:mod:`.augment`); None: one clip. No window crosses a
    boundary."""

    @classmethod
    def from_subject(
        cls,
        subject: Subject,
        front_end: AudioFrontEnd,
        norm: LandmarkNorm | None = None,
        voice_copies: int = 0,
        seed: int = 0,
        offset: float = 0.0,
    ) -> Stage1Data:
        """The training split of ``subject``, normalised by ``norm`` (default: the bounding-box
        normalisation above; a model started from the speaker prior brings its own), with
        ``voice_copies`` perturbed copies of its audio and track beside the clean ones, its
        sound moved by ``offset`` frames (:func:`subject_audio`)."""
        n = subject.meta.train_frames
        if n < MIN_TRAIN_FRAMES:
            raise SubjectError(
                f"{subject.root} has {n} training frames; stage 1 needs at least "
                f"{MIN_TRAIN_FRAMES} (a second of video is 25). Preprocess a longer video."
            )
        audio = subject_audio(subject, offset)[: n * SAMPLES_PER_FRAME]
        lm = np.asarray(subject.tracks.lm_world, dtype=np.float64)[:n]  # [n, 68, 3]
        norm = norm if norm is not None else LandmarkNorm.from_landmarks(lm)
        disp = norm.normalise(lm[:, list(STAGE1_POINTS)])
        gain = loudness_gain(audio)
        weight = np.zeros(n, np.float32)
        weight[steady_frames(subject.tracks.tracked, range(n))] = 1.0
        feats = front_end(audio, gain)
        if voice_copies <= 0:
            return cls(feats=feats, disp=disp, norm=norm, gain=gain, weight=weight)
        rng = np.random.default_rng([seed, 11])
        parts = [(feats, disp, weight)]
        for a, d, w in augment.voice_copies(audio, disp, weight, voice_copies, rng):
            f = front_end(a, loudness_gain(a))  # each voice at its own level, as a driving clip
            m = min(len(f), len(d))
            parts.append((f[:m], d[:m], w[:m]))
        bounds = np.cumsum([0] + [len(p[1]) for p in parts])
        return cls(
            feats=np.concatenate([p[0] for p in parts]),
            disp=np.concatenate([p[1] for p in parts]),
            norm=norm,
            gain=gain,
            weight=np.concatenate([p[2] for p in parts]),
            segments=bounds,
        )

    @property
    def frames(self) -> int:
        return int(self.disp.shape[0])

    def statistics(self) -> dict[str, np.ndarray]:
        """The buffers :meth:`~.model.Stage1Model.set_statistics` takes."""
        disp_std = np.sqrt(np.mean(self.disp.astype(np.float64) ** 2, axis=(0, 1)))  # [3]
        disp_std = np.maximum(disp_std, 1e-3)
        feat_std = np.maximum(self.feats.std(axis=0), 1e-3)
        return {
            "mean_lm": self.norm.mean,
            "lm_scale": self.norm.scale,
            "disp_std": disp_std.astype(np.float32),
            "feat_mean": self.feats.mean(axis=0),
            "feat_std": feat_std.astype(np.float32),
        }

    def sample(
        self, batch: int, window: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``batch`` random windows of min(window, T) frames, stacked.

        Returns audio rows [B, W, in_dim], targets [B, W, 37, 3], the teacher-forcing inputs
        [B, W, 37, 3] (each frame's previous frame, the window's first frame starting from the
        true previous frame, or the mean, zeros, at the clip's start) and the frames' loss
        weights [B, W] (:attr:`weight`).
        """
        if self.segments is None:
            bounds = np.array([0, self.frames])
            w = min(window, self.frames)
            starts = rng.integers(0, self.frames - w + 1, size=batch if w < self.frames else 1)
        else:  # a clip in proportion to its windows, then a window inside it
            bounds = self.segments
            lengths = np.diff(bounds)
            w = min(window, int(lengths.min()))
            room = lengths - w + 1
            clip = rng.choice(len(room), size=batch, p=room / room.sum())
            starts = bounds[clip] + (rng.random(batch) * room[clip]).astype(np.int64)
        idx = starts[:, None] + np.arange(w)[None]  # [B, W]
        target = self.disp[idx]  # [B, W, 37, 3]
        prev = np.concatenate([np.zeros_like(target[:, :1]), target[:, :-1]], axis=1)
        has_prev = ~np.isin(starts, bounds)
        prev[has_prev, 0] = self.disp[starts[has_prev] - 1]
        return (
            torch.from_numpy(self.feats[idx]),
            torch.from_numpy(target),
            torch.from_numpy(prev),
            torch.from_numpy(self.weight[idx]),
        )
