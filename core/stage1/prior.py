"""The generic stage-1 prior: speaker-normalised landmarks, loading, and fitting to a subject.

Speaker-normalised landmark space (docs/prior.md): the 37 stage-1 points in the head frame (pose
removed by tracking), minus the speaker's own mean 37 points, divided by the speaker's
inter-ocular distance (outer eye corners, iBUG 36-45, of the mean 68-point shape)::

    disp = (L[:, STAGE1_POINTS] - mean) / length

The prior is an ordinary :class:`~.model.Stage1Model` trained in that space on many speakers
(``mean_lm`` = 0, ``lm_scale`` = 1). :func:`fit_to_subject` turns it into a subject's model by
setting ``mean_lm`` to the subject's mean and ``lm_scale`` to the subject's length times a range
factor (:func:`calibrate_range`): the network's weights stay the same, so the prior moves the
subject's own mouth with the subject's own opening range, and fine-tuning starts from there.

Silence: a run of at least :data:`SILENCE_MIN_S` seconds whose frames are
:data:`SILENCE_DB` below the clip's speech level (:func:`silent_frames`) is driven to the
subject's closed mouth (:func:`closed_mouth`), with a short ramp at either end.

The shipped prior lives in ``talkstudio/resources/prior/`` (fp16 safetensors + ``config.json``,
built by ``scripts/make_prior.py``); a missing or damaged file raises :class:`PriorError`, and
stage-1 training then falls back to training from scratch.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..landmarks import STAGE1_POINTS, mouth_opening
from ..subject import Subject
from ..timing import FPS, SAMPLES_PER_FRAME
from .config import Stage1Config
from .linear_prior import LinearPrior
from .model import Stage1Model

INTER_OCULAR = (36, 45)
"""Outer eye corners: their distance in the mean shape is a speaker's length unit."""
CLOSED_PERCENTILE = 10.0
"""The closed mouth is the mean shape of the frames at or below this opening percentile."""
SILENCE_DB = -30.0
"""A frame is silent when its RMS is this far below the clip's speech level (90th percentile)."""
SILENCE_FLOOR_RMS = 1e-4
"""Frames quieter than this are silent whatever the clip's level."""
SILENCE_MIN_S = 0.3
"""Only silent runs at least this long close the mouth (shorter ones are stops in speech)."""
SILENCE_RAMP = 2
"""Frames at each end of a silent run over which the mouth blends into the closed shape."""
RANGE_LIMITS = (0.5, 4.0)
"""Bounds of the range factor :func:`calibrate_range` may choose."""
MIN_RANGE_FRAMES = 50
"""Subjects with fewer training frames keep range factor 1 (too little to measure a range)."""


class PriorError(CheckpointError):
    """The stage-1 prior is missing or cannot be loaded."""


# -- speaker normalisation ----------------------------------------------------------------------


@dataclass
class SpeakerNorm:
    """One speaker's mean 37 points [37, 3] (head units) and length (inter-ocular distance)."""

    mean: np.ndarray
    length: float

    @classmethod
    def from_landmarks(cls, lm_world: np.ndarray) -> SpeakerNorm:
        """From a speaker's frames ``lm_world`` [T, 68, 3] (head frame)."""
        lm = np.asarray(lm_world, dtype=np.float64)
        if lm.ndim != 3 or lm.shape[1:] != (68, 3) or len(lm) == 0:
            raise ValueError(f"lm_world must be [T > 0, 68, 3], got {lm.shape}")
        mean68 = lm.mean(axis=0)
        a, b = INTER_OCULAR
        length = float(np.linalg.norm(mean68[a] - mean68[b]))
        if not np.isfinite(length) or length <= 1e-9:
            raise ValueError("the mean shape's eye corners coincide: the landmarks are degenerate")
        return cls(mean=mean68[list(STAGE1_POINTS)].astype(np.float32), length=length)

    def normalise(self, points37: np.ndarray) -> np.ndarray:
        """Head-frame points [..., 37, 3] → speaker-normalised displacements."""
        return ((np.asarray(points37, np.float64) - self.mean) / self.length).astype(np.float32)

    def denormalise(self, disp: np.ndarray) -> np.ndarray:
        """Speaker-normalised displacements [..., 37, 3] → this speaker's head-frame points."""
        return (self.mean + np.asarray(disp, np.float64) * self.length).astype(np.float32)


def closed_mouth(points37: np.ndarray) -> np.ndarray:
    """Mean shape [37, 3] of the frames ``points37`` [T, 37, 3] with the least-open mouth."""
    from .metrics import to68

    p = np.asarray(points37, np.float64)
    opening = mouth_opening(to68(p))
    shut = opening <= np.percentile(opening, CLOSED_PERCENTILE)
    return p[shut].mean(axis=0).astype(np.float32)


# -- silence ------------------------------------------------------------------------------------


def silent_frames(audio: np.ndarray, frames: int) -> np.ndarray:
    """Bool [frames]: frame ``i`` (samples ``[640 i, 640 (i + 1))``) lies in a silent run.

    A frame is quiet when its RMS is :data:`SILENCE_DB` below the clip's speech level (the 90th
    percentile of the frame RMS) or below :data:`SILENCE_FLOOR_RMS`; only runs of quiet frames at
    least :data:`SILENCE_MIN_S` long count (the rest are pauses inside speech).
    """
    from ..preprocess.tracking import runs

    a = np.zeros(frames * SAMPLES_PER_FRAME, dtype=np.float64)
    n = min(len(a), len(audio))
    a[:n] = np.asarray(audio[:n], dtype=np.float64)
    rms = np.sqrt(np.mean(a.reshape(frames, SAMPLES_PER_FRAME) ** 2, axis=1))
    level = float(np.percentile(rms, 90)) if frames else 0.0
    quiet = (rms < level * 10 ** (SILENCE_DB / 20)) | (rms < SILENCE_FLOOR_RMS)
    min_len = int(np.ceil(SILENCE_MIN_S * FPS - 1e-9))
    out = np.zeros(frames, dtype=bool)
    for a0, b0 in runs(quiet):
        if b0 - a0 >= min_len:
            out[a0:b0] = True
    return out


def close_silences(points: np.ndarray, silent: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """``points`` [T, 37, 3] with each silent run blended into ``closed`` [37, 3].

    Inside a run the weight of the closed shape ramps up over :data:`SILENCE_RAMP` frames from
    the run's start and down again before its end (a run at the clip's start or end has no ramp
    on that side), so the mouth closes within the pause and opens again for the next word.
    """
    from ..preprocess.tracking import runs

    out = np.array(points, dtype=np.float32, copy=True)
    t = len(out)
    for a, b in runs(np.asarray(silent[:t], bool)):
        idx = np.arange(a, b)
        up = np.ones(len(idx)) if a == 0 else np.minimum(1.0, (idx - a + 1) / (SILENCE_RAMP + 1))
        down = np.ones(len(idx)) if b == t else np.minimum(1.0, (b - idx) / (SILENCE_RAMP + 1))
        w = np.minimum(up, down)[:, None, None]
        out[a:b] = (1 - w) * out[a:b] + w * closed
    return out


# -- the shipped prior --------------------------------------------------------------------------


def prior_dir() -> Path:
    """Folder of the shipped prior (inside the installed ``talkstudio.resources``)."""
    from importlib import resources

    return Path(str(resources.files("talkstudio.resources").joinpath("prior")))


def load_prior(folder: str | os.PathLike[str] | None = None) -> Stage1Model:
    """The prior model from ``folder`` (default: the shipped one); :class:`PriorError` if it is
    missing, damaged or not a prior."""
    from .infer import load_stage1

    where = Path(folder) if folder is not None else prior_dir()
    if not (where / "config.json").is_file() or not (where / "model.safetensors").is_file():
        raise PriorError(
            f"the stage-1 prior is missing ({where} has no model.safetensors + config.json); "
            "reinstall Talkstudio or rebuild it with `python scripts/make_prior.py`"
        )
    try:
        model = load_stage1(where)
    except (CheckpointError, OSError, ValueError) as exc:
        raise PriorError(
            f"the stage-1 prior in {where} cannot be loaded ({exc}); reinstall Talkstudio or "
            "rebuild it with `python scripts/make_prior.py`"
        ) from exc
    if not getattr(model, "is_prior", False):
        raise PriorError(f"{where} holds a subject's stage-1 model, not the speaker prior")
    try:
        model.linear_prior = LinearPrior.load(where)
    except CheckpointError as exc:
        raise PriorError(
            f"the stage-1 prior's linear part in {where} cannot be loaded ({exc}); reinstall "
            "Talkstudio or rebuild it with `python scripts/make_prior.py`"
        ) from exc
    return model


def fit_to_subject(prior: Stage1Model, norm: SpeakerNorm, range_factor: float = 1.0) -> Stage1Model:
    """A copy of ``prior`` that outputs the subject's head-frame points (see module docstring)."""
    model = copy.deepcopy(prior)
    model.is_prior = False
    model.mean_lm.copy_(torch.from_numpy(np.asarray(norm.mean, np.float32)))
    model.lm_scale.fill_(float(norm.length * range_factor))
    return model


def calibrate_range(
    model: Stage1Model, feats: np.ndarray, points37: np.ndarray, norm: SpeakerNorm
) -> float:
    """Range factor that gives the prior's free-running mouth opening on the subject's own audio
    (front-end rows ``feats`` [T, in_dim]) the spread of the subject's tracked opening
    (``points37`` [T, 37, 3]); 1 for short subjects, clipped to :data:`RANGE_LIMITS`."""
    from .infer import generate
    from .metrics import to68

    if len(points37) < MIN_RANGE_FRAMES:
        return 1.0
    disp = generate(model, torch.from_numpy(np.asarray(feats, np.float32))[None])[0].numpy()
    pred = mouth_opening(to68(norm.denormalise(disp)))
    true = mouth_opening(to68(np.asarray(points37, np.float64)))
    sp, st = float(np.std(pred)), float(np.std(true))
    if sp < 1e-9 or st < 1e-9:
        return 1.0
    return float(np.clip(st / sp, *RANGE_LIMITS))


def prior_for_subject(
    subject: Subject, prior: Stage1Model | None = None, offset: float = 0.0
) -> Stage1Model:
    """The prior (default: the shipped one) fitted to ``subject`` without training: the
    subject's mean and length, the range factor measured on its training frames (its sound
    moved by ``offset`` frames, :mod:`.sync`), and its closed mouth for silences. Used as the
    start of fine-tuning and as the "prior only" model."""
    from .data import subject_audio, subject_gain
    from .infer import front_end_for

    prior = prior if prior is not None else load_prior()
    n = subject.meta.train_frames
    points = np.asarray(subject.tracks.lm_world, np.float64)[:n]
    norm = SpeakerNorm.from_landmarks(points)
    own = points[:, list(STAGE1_POINTS)]
    model = fit_to_subject(prior, norm)
    feats = front_end_for(model)(
        subject_audio(subject, offset)[: n * SAMPLES_PER_FRAME], subject_gain(subject)
    )
    factor = calibrate_range(model, feats, own, norm)
    model.lm_scale.fill_(float(norm.length * factor))
    model.range_factor = factor
    model.closed_lm = closed_mouth(own)
    return model


PRIOR_FIELDS = (
    "audio_features",
    "n_mels",
    "use_formants",
    "mel_clip_norm",
    "phone_lattice_scale",
    "ppg_scale",
    "audio_conv_layers",
    "audio_kernel",
    "window",
    "mouth_weight",
)
"""Settings that come with the prior when training starts from it (its audio front end and the
audio encoder's convolutions, its attention window and its loss's mouth weight); the other
architecture fields must match the prior's."""


def initial_model(
    subject: Subject, config: Stage1Config, offset: float = 0.0
) -> tuple[Stage1Model | None, Stage1Config, str]:
    """Where per-subject training starts: ``(model, config, note)``.

    ``config.init == "prior"``: the prior (``config.prior_path``, default the shipped one)
    fitted to ``subject`` (:func:`prior_for_subject`), and ``config`` with the prior's
    :data:`PRIOR_FIELDS` (the note names those that changed). The network's sizes and
    fusion must be the prior's; other sizes, ``"scratch"``, or a prior that is missing or cannot
    run here give ``(None, config, note)``, the note saying why (empty for "scratch").
    """
    from .config import ARCHITECTURE_FIELDS

    if config.init == "scratch":
        return None, config, ""
    try:
        prior = load_prior(config.prior_path or None)
    except PriorError as exc:
        return None, config, f"{exc}. Training from scratch instead."
    other = [
        f"{n} {getattr(config, n)!r} (the prior: {getattr(prior.config, n)!r})"
        for n in ARCHITECTURE_FIELDS
        if n not in PRIOR_FIELDS and getattr(config, n) != getattr(prior.config, n)
    ]
    if other:
        return (
            None,
            config,
            (
                "training from scratch: the speaker prior has another network than asked for "
                f"({'; '.join(other)})"
            ),
        )
    try:
        model = prior_for_subject(subject, prior, offset)
    except CheckpointError as exc:  # e.g. its front end cannot run on this machine
        return None, config, f"{exc}. Training from scratch instead."
    taken = [
        f"{n} {getattr(config, n)!r} -> {getattr(prior.config, n)!r}"
        for n in PRIOR_FIELDS
        if getattr(config, n) != getattr(prior.config, n)
    ]
    config = config.replace(**{n: getattr(prior.config, n) for n in PRIOR_FIELDS})
    model.config = config
    note = f"starting from the speaker prior ({prior.config.audio_features} front end, "
    note += f"opening range × {model.range_factor:.2f})"
    if taken:
        note += f"; the prior's settings: {', '.join(taken)}"
    return model, config, note
