"""Stage-1 evaluation exactly as docs/design.md "Evaluation" defines it.

- LMD in track space: mean 2-D distance in pixels at 512² between predicted and tracked mouth
  points (iBUG 48–67), both projected with the frame's pose and K (scaled to 512²), each frame's
  20 points centred on their own mean.
- Mouth-opening correlation: Pearson correlation over the frames of the inner-lip gap / mouth
  width (``core.landmarks.mouth_opening``) of prediction and track; a constant prediction (the
  baseline) has none, reported as 0. ``opening_ratio`` = std of the predicted opening / std of
  the tracked one (1 = as lively as the person, 0 = frozen).
- Frames: the validation split; stage 1 runs free on the validation audio (no teacher forcing).
- Baseline: the subject's mean landmarks (an untrained model predicts exactly these).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..geometry import project_head_points, scale_intrinsics
from ..landmarks import MOUTH, NUM_LANDMARKS, STAGE1_POINTS, mouth_opening
from ..subject import Subject
from ..timing import SAMPLES_PER_FRAME

EVAL_SIZE = 512
_MOUTH_IN_37 = [STAGE1_POINTS.index(i) for i in MOUTH]  # positions of 48..67 among the 37


def to68(points37: np.ndarray) -> np.ndarray:
    """Place the 37 stage-1 points [..., 37, 3] into a 68-point array (others zero)."""
    out = np.zeros((*points37.shape[:-2], NUM_LANDMARKS, 3), dtype=np.float64)
    out[..., list(STAGE1_POINTS), :] = points37
    return out


def lmd_track_space(
    pred37: np.ndarray, true37: np.ndarray, pose: np.ndarray, K: np.ndarray, size: int
) -> float:
    """LMD (pixels at 512²) of head-frame points [T, 37, 3] seen with ``pose`` [T, 4, 4], ``K``."""
    k512 = scale_intrinsics(K, size, EVAL_SIZE)
    a = project_head_points(k512, pose, pred37[:, _MOUTH_IN_37].astype(np.float64))  # [T, 20, 2]
    b = project_head_points(k512, pose, true37[:, _MOUTH_IN_37].astype(np.float64))
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return float(np.linalg.norm(a - b, axis=-1).mean())


def opening_correlation(pred37: np.ndarray, true37: np.ndarray) -> tuple[float, float]:
    """(Pearson correlation, std ratio) of the mouth opening of prediction and track."""
    p = mouth_opening(to68(pred37))
    t = mouth_opening(to68(true37))
    sp, st = float(p.std()), float(t.std())
    ratio = sp / st if st > 1e-12 else 0.0
    if sp < 1e-9 or st < 1e-9 or len(p) < 2:
        return 0.0, ratio
    return float(np.corrcoef(p, t)[0, 1]), ratio


@dataclass
class Stage1Scores:
    """Validation scores of a model and of the mean-landmark baseline."""

    lmd: float
    """LMD of the model, pixels at 512²."""
    lmd_baseline: float
    """LMD of the subject's mean landmarks."""
    corr: float
    """Mouth-opening correlation of the model."""
    opening_ratio: float
    """Std of the predicted mouth opening over that of the track."""
    frames: int
    """Validation frames scored."""

    @property
    def lmd_ratio(self) -> float:
        return self.lmd / self.lmd_baseline if self.lmd_baseline > 0 else float("inf")

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()} | {"lmd_ratio": self.lmd_ratio}


def score(subject: Subject, pred37: np.ndarray, frames: range) -> Stage1Scores:
    """Scores of predicted points [len(frames), 37, 3] against the subject's track on ``frames``."""
    tracks = subject.tracks
    idx = np.asarray(frames)
    true37 = np.asarray(tracks.lm_world, dtype=np.float64)[idx][:, list(STAGE1_POINTS)]
    pose = np.asarray(tracks.pose, dtype=np.float64)[idx]
    K, size = subject.meta.K, subject.meta.size
    train = np.asarray(tracks.lm_world, dtype=np.float64)[: subject.meta.train_frames]
    mean37 = np.broadcast_to(train.mean(axis=0)[list(STAGE1_POINTS)], true37.shape)
    corr, ratio = opening_correlation(pred37, true37)
    return Stage1Scores(
        lmd=lmd_track_space(pred37, true37, pose, K, size),
        lmd_baseline=lmd_track_space(mean37, true37, pose, K, size),
        corr=corr,
        opening_ratio=ratio,
        frames=len(idx),
    )


def validation_audio(subject: Subject, offset: float = 0.0) -> np.ndarray:
    """The audio of the validation frames (the driving clip of the whole-pipeline pass), moved
    by ``offset`` frames back in line with the picture (:mod:`.sync`)."""
    from .sync import shift_audio

    audio = shift_audio(subject.load_audio(), offset)
    start, stop = subject.meta.train_frames, subject.meta.num_frames
    seg = np.zeros((stop - start) * SAMPLES_PER_FRAME, dtype=np.float32)
    part = audio[start * SAMPLES_PER_FRAME : stop * SAMPLES_PER_FRAME]
    seg[: len(part)] = part
    return seg


def evaluate(model: object, subject: Subject, own_level: bool = False) -> Stage1Scores:
    """Free-running validation scores of ``model`` (a Stage1Model) on ``subject``.

    The validation audio is scaled by the recording's loudness gain (:func:`~.data.subject_gain`),
    as in training; ``own_level`` instead treats it as a separate driving clip with its own gain.
    """
    from .data import subject_gain
    from .infer import front_end_for, track_of
    from .model import Stage1Model

    assert isinstance(model, Stage1Model)
    frames = subject.meta.val_range
    gain = None if own_level else subject_gain(subject)
    audio = validation_audio(subject, model.sync_offset)
    pred = track_of(model, front_end_for(model)(audio, gain), audio)[: len(frames)]  # as predict()
    return score(subject, pred, frames)
