"""Stage-1 training: a generator of progress records that returns the final scores.

Each step stacks ``batch`` random windows of min(window, T) training frames and minimises the
smooth-L1 loss of Eq. 2 between predicted and tracked normalised landmarks (AdamW). Early steps
are teacher-forced (inputs = the true previous frames plus a little noise); after
``rollout_start`` every step first runs ``rollout_passes`` gradient-free passes, each feeding
the previous pass's predictions back as inputs, and then learns from the last pass, so the
model is trained on the inputs it will see when it runs free (the authors' code fine-tunes
fully autoregressively; this is the parallel approximation of that).

Checkpoints (``Subject.model_dir("stage1")``, or ``out_dir``): safetensors + ``config.json`` and
the optimizer's train state, every ``checkpoint_every`` steps, at the end and when the job is
cancelled (closed); an existing checkpoint of the same architecture is resumed from its step.
The run bookkeeping (device, seed, resume, checkpoints, cancel) is core.training's, as for the
head and the torso.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..checkpoint import save_weights
from ..landmarks import INNER_LIP_PAIR, MOUTH_CORNERS, STAGE1_POINTS
from ..presets import TRAIN_STAGE
from ..progress import Job, Progress
from ..training import (
    TrainLoop,
    TrainResult,
    network_check,
    open_run,
    resolve_device,
    restore,
    save_checkpoint,
)
from .config import Stage1Config
from .data import LandmarkNorm, Stage1Data
from .features import AudioFrontEnd, log_mel_with_gain
from .infer import CHECKPOINT_KIND, PRIOR_FILE, torch_threads
from .linear_prior import LINEAR_FILE
from .metrics import Stage1Scores, evaluate
from .model import Stage1Model
from .prior import closed_mouth, initial_model
from .sync import NOT_MEASURED, subject_offset

STAGE = TRAIN_STAGE["stage1"]


MOUTH_VECTORS = tuple(
    (STAGE1_POINTS.index(a), STAGE1_POINTS.index(b)) for a, b in (INNER_LIP_PAIR, MOUTH_CORNERS)
)
"""The inner-lip gap (62 to 66) and the corner-to-corner line (48 to 54), as indices of the 37."""


def smooth_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 2: mean of 0.5 ΔL² where ΔL < 1, else ΔL − 0.5, with ΔL = |L̂ − L| (normalised)."""
    return F.smooth_l1_loss(pred, target, beta=1.0)


def frame_loss(pred: torch.Tensor, target: torch.Tensor, mouth_weight: float = 0.0) -> torch.Tensor:
    """Per-frame loss [B, T] of displacements [B, T, 37, 3]: Eq. 2 over the 37 points, plus
    ``mouth_weight`` times Eq. 2 over the mouth's two shape vectors (:data:`MOUTH_VECTORS`).

    Eq. 2 weighs every coordinate alike, so the jaw line's 17 points and the lips' outer contour
    outweigh the few differences that make a mouth open or round; the extra term puts weight on
    exactly those (docs/prior.md "Recipe"). ``mouth_weight`` 0 is Eq. 2 alone.
    """
    per = F.smooth_l1_loss(pred, target, beta=1.0, reduction="none").mean(dim=(2, 3))
    if mouth_weight > 0:
        a, b = ([p[i] for p in MOUTH_VECTORS] for i in (0, 1))
        vp, vt = pred[:, :, a] - pred[:, :, b], target[:, :, a] - target[:, :, b]
        shape = F.smooth_l1_loss(vp, vt, beta=1.0, reduction="none").mean(dim=(2, 3))
        per = per + mouth_weight * shape
    return per


@dataclass
class Stage1Result(TrainResult):
    """What a finished (or already complete) stage-1 run left behind, with its scores."""

    scores: Stage1Scores | None = None
    """Free-running validation scores of the saved model (None: no validation frames)."""


def _lr_factor(step: int, cfg: Stage1Config) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    t = min(1.0, (step - cfg.warmup) / span)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))


def _save(
    model: Stage1Model, opt: torch.optim.Optimizer, folder: Path, extra: dict, step: int
) -> None:
    meta = {"audio_in_dim": model.audio_in_dim, **extra}
    config = model.config.to_dict()
    save_checkpoint(folder, CHECKPOINT_KIND, model, config, opt, step, meta, {})


def _keep_start(prior: Stage1Model | None, folder: Path) -> None:
    """Save the prior fitted to the subject, where fine-tuning starts, beside the checkpoint
    (:data:`~.infer.PRIOR_FILE`: :func:`~.infer.predict` blends it in,
    ``Stage1Config.prior_blend``); for a model trained from scratch, remove one left by an
    earlier run."""
    path = folder / PRIOR_FILE
    linear = None if prior is None else prior.linear_prior
    if linear is None:  # the prior's linear part (linear_share) goes with it
        (folder / LINEAR_FILE).unlink(missing_ok=True)
    else:
        linear.save(folder)
    if prior is None:
        path.unlink(missing_ok=True)
    else:
        save_weights(path, prior.state_dict())


def _model_norm(model: Stage1Model) -> LandmarkNorm:
    """The landmark normalisation ``model`` works in (its mean and scale buffers)."""
    return LandmarkNorm(
        mean=model.mean_lm.detach().cpu().numpy().copy(),
        scale=model.lm_scale.detach().cpu().numpy().copy(),
    )


def train_stage1(
    subject_dir: str | os.PathLike[str],
    config: Stage1Config | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> Job[Stage1Result]:
    """Train (or continue training) stage 1 of a subject; yields :class:`Progress` per step.

    ``losses`` of each record hold ``loss`` (Eq. 2 on the step's batch); every ``val_every``
    steps ``metrics`` hold ``val_lmd``, ``val_lmd_baseline`` and ``val_corr`` (free-running,
    validation split). A subject without audio raises :class:`SubjectError`; a checkpoint
    trained with another architecture raises :class:`CheckpointError` naming the differences.
    """
    cfg = config or Stage1Config.from_preset("preview")
    with torch_threads(cfg.cpu_threads if resolve_device(device).type == "cpu" else 0):
        return (yield from _train(subject_dir, cfg, device, out_dir, resume))


def _train(
    subject_dir: str | os.PathLike[str],
    cfg: Stage1Config,
    device: str | torch.device,
    out_dir: str | os.PathLike[str] | None,
    resume: bool,
) -> Job[Stage1Result]:
    subject, folder, dev = open_run(subject_dir, CHECKPOINT_KIND, cfg, device, out_dir)
    sync = subject_offset(subject, cfg.prior_path or None) if cfg.sync_audio else NOT_MEASURED
    if cfg.sync_audio:
        yield Progress(STAGE, 0, cfg.steps, sync.message())
    offset = sync.offset
    yield Progress(STAGE, 0, cfg.steps, "computing audio features")
    start_model, cfg, note = initial_model(subject, cfg, offset)  # the prior fitted to the subject
    if note:
        yield Progress(STAGE, 0, cfg.steps, note)
    front_end = AudioFrontEnd(cfg)
    cfg = replace(cfg, audio_features=front_end.kind)
    if start_model is None:
        data = Stage1Data.from_subject(subject, front_end, None, cfg.voice_copies, cfg.seed, offset)
        model = Stage1Model(cfg, front_end.in_dim)
        stats = {**data.statistics(), "feat_std": front_end.feature_std(data.feats)}
        model.set_statistics(**stats)
    else:  # the prior's speaker-normalised space, on the subject's mean and length
        model = start_model
        data = Stage1Data.from_subject(
            subject, front_end, _model_norm(model), cfg.voice_copies, cfg.seed, offset
        )
    own = np.asarray(subject.tracks.lm_world)[: subject.meta.train_frames]
    model.closed_lm = closed_mouth(own[:, list(STAGE1_POINTS)])
    model.sync_offset = offset
    _keep_start(model if start_model is not None else None, folder)
    model.to(dev)
    lr = cfg.lr if start_model is None else cfg.finetune_lr
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    check = network_check(folder, "stage-1", cfg, Stage1Config.from_dict)
    start = restore(folder, CHECKPOINT_KIND, model, opt, check) if resume else 0
    norm = _model_norm(model)
    same = np.allclose(norm.mean, data.norm.mean) and np.allclose(norm.scale, data.norm.scale)
    if not same:  # resumed a run that started elsewhere (prior / scratch): its normalisation
        data = Stage1Data.from_subject(subject, front_end, norm, cfg.voice_copies, cfg.seed, offset)
    has_val = len(subject.meta.val_range) > 0
    scores: Stage1Scores | None = None
    if start >= cfg.steps:
        yield Progress(STAGE, cfg.steps, cfg.steps, f"already trained for {start} steps")
        scores = evaluate(model, subject) if has_val else None
        return Stage1Result(folder, start, 0.0, float("nan"), scores)

    rng = np.random.default_rng([cfg.seed, start])
    torch.manual_seed(cfg.seed * 100_003 + start)
    meta: dict[str, Any] = {  # how it started, and the latest validation scores
        "init": "scratch" if start_model is None else "prior",
        "range_factor": model.range_factor,
        "closed_lm": np.asarray(model.closed_lm).round(6).tolist(),
        "sync": sync.as_dict(),
    }
    rollout_from = int(cfg.rollout_start * cfg.steps)
    loop = TrainLoop(
        start, cfg.steps, cfg.checkpoint_every, lambda s: _save(model, opt, folder, meta, s)
    )
    with loop:  # a cancel (closing the job) saves the step reached
        for step in loop:
            model.train()
            feats, target, prev, weight = (
                x.to(dev) for x in data.sample(cfg.batch, cfg.window, rng)
            )
            if cfg.gain_jitter_db > 0 and cfg.audio_features in ("mel", "mel+phonetic"):
                db = torch.empty(feats.shape[0], 1, device=dev).uniform_(-1, 1)
                db = db * cfg.gain_jitter_db
                feats = log_mel_with_gain(feats, cfg.n_mels, db.expand(-1, feats.shape[1]))
            prev = prev + cfg.input_noise * torch.randn_like(prev) * model.disp_std
            if cfg.rollout_passes > 0 and step - 1 >= rollout_from:
                with torch.no_grad():
                    for _ in range(cfg.rollout_passes):
                        pred = model(feats, prev)
                        prev = torch.cat([prev[:, :1], pred[:, :-1]], dim=1)
            for group in opt.param_groups:
                group["lr"] = lr * _lr_factor(step - 1, cfg)
            per = frame_loss(model(feats, prev), target, cfg.mouth_weight)  # [B, W]
            loss = (per * weight).sum() / weight.sum().clamp_min(1.0)  # untracked runs out
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            metrics: dict[str, float] = {}
            if has_val and (step % cfg.val_every == 0 or step == cfg.steps):
                scores = evaluate(model, subject)
                meta["validation"] = scores.as_dict()
                metrics = {
                    "val_lmd": scores.lmd,
                    "val_lmd_baseline": scores.lmd_baseline,
                    "val_corr": scores.corr,
                }
            value = float(loss.detach())
            msg = loop.done(step, value)  # saves every checkpoint_every and at the end
            yield Progress(STAGE, step, cfg.steps, msg, {"loss": value}, metrics=metrics)
    return Stage1Result(folder, cfg.steps, loop.seconds, loop.final_loss, scores)
