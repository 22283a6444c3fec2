"""Stage-1 training: a generator of progress records that returns the final scores.

Each step stacks ``batch`` random windows of min(window, T) training frames and minimises the
smooth-L1 loss of Eq. 2 between predicted and tracked normalised landmarks (AdamW). Early steps
are teacher-forced (inputs = the true previous frames plus a little noise); after
``rollout_start`` every step first runs ``rollout_passes`` gradient-free passes, each feeding
the previous pass's predictions back as inputs, and then learns from the last pass, so the
model is trained on the inputs it will see when it runs free (the authors' code fine-tunes
fully autoregressively; this is the parallel approximation of that).

Checkpoints (``Subject.model_dir("stage1")``): safetensors + ``config.json`` and the optimizer's
train state, every ``save_every`` steps and at the end; an existing checkpoint of the same
architecture is resumed from its step.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import CheckpointError, TalkstudioError
from ..progress import Job, Progress
from ..subject import Subject
from ..training import restore, save_checkpoint
from .config import Stage1Config
from .data import Stage1Data
from .features import AudioFrontEnd, log_mel_with_gain
from .infer import CHECKPOINT_KIND, torch_threads
from .metrics import Stage1Scores, evaluate
from .model import Stage1Model

STAGE = "train stage1"


def smooth_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 2: mean of 0.5 ΔL² where ΔL < 1, else ΔL − 0.5, with ΔL = |L̂ − L| (normalised)."""
    return F.smooth_l1_loss(pred, target, beta=1.0)


@dataclass
class Stage1Result:
    """What a finished training run returns."""

    model_dir: Path
    steps: int
    scores: Stage1Scores | None
    seconds: float


def _lr_factor(step: int, cfg: Stage1Config) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    t = min(1.0, (step - cfg.warmup) / span)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))


def _resume(model: Stage1Model, cfg: Stage1Config, folder: Path, opt: torch.optim.Optimizer) -> int:
    """Load the checkpoint in ``folder`` into ``model``/``opt``; the step it had reached."""

    def check(saved: dict[str, Any]) -> None:
        diff = cfg.architecture_mismatch(Stage1Config.from_dict(saved))
        if diff:
            raise CheckpointError(
                f"{folder} holds a stage-1 model trained with another configuration "
                f"({'; '.join(diff)}). Delete that folder to train afresh with these settings."
            )

    return restore(folder, CHECKPOINT_KIND, model, opt, check)


def _save(
    model: Stage1Model, opt: torch.optim.Optimizer, folder: Path, step: int, extra: dict
) -> None:
    meta = {"audio_in_dim": model.audio_in_dim, **extra}
    config = model.config.to_dict()
    save_checkpoint(folder, CHECKPOINT_KIND, model, config, opt, step, meta, {})


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise TalkstudioError(f"unknown device {name!r}: use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TalkstudioError("CUDA is not available on this machine: train with --device cpu")
    return dev


def train_stage1(
    subject_dir: str | os.PathLike[str],
    config: Stage1Config | None = None,
    device: str = "cpu",
    resume: bool = True,
) -> Job[Stage1Result]:
    """Train stage 1 of the subject at ``subject_dir``; yields :class:`Progress` per step.

    ``losses`` of each record hold ``loss`` (Eq. 2 on the step's batch); every ``val_every``
    steps also ``val_lmd``, ``val_lmd_baseline`` and ``val_corr`` (free-running, validation
    split). A subject without audio raises :class:`SubjectError`; a checkpoint trained with
    another architecture raises :class:`CheckpointError` naming the differences.
    """
    cfg = config or Stage1Config.from_preset("preview")
    with torch_threads(cfg.cpu_threads if _device(device).type == "cpu" else 0):
        return (yield from _train(subject_dir, cfg, device, resume))


def _train(
    subject_dir: str | os.PathLike[str], cfg: Stage1Config, device: str, resume: bool
) -> Job[Stage1Result]:
    t0 = time.monotonic()
    subject = Subject.open(Path(subject_dir))
    yield Progress(STAGE, 0, cfg.steps, "computing audio features")
    front_end = AudioFrontEnd(cfg)
    cfg = replace(cfg, audio_features=front_end.kind)
    data = Stage1Data.from_subject(subject, front_end)
    dev = _device(device)
    torch.manual_seed(cfg.seed)
    model = Stage1Model(cfg, front_end.in_dim)
    model.set_statistics(**{**data.statistics(), "feat_std": front_end.feature_std(data.feats)})
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    folder = subject.model_dir("stage1")
    step = _resume(model, cfg, folder, opt) if resume and subject.has_model("stage1") else 0
    rng = np.random.default_rng([cfg.seed, step])
    torch.manual_seed(cfg.seed * 100_003 + step)
    has_val = len(subject.meta.val_range) > 0
    scores: Stage1Scores | None = None
    rollout_from = int(cfg.rollout_start * cfg.steps)

    while step < cfg.steps:
        model.train()
        feats, target, prev = (x.to(dev) for x in data.sample(cfg.batch, cfg.window, rng))
        if cfg.gain_jitter_db > 0 and cfg.audio_features in ("mel", "mel+phonetic"):
            db = torch.empty(feats.shape[0], 1, device=dev).uniform_(-1, 1) * cfg.gain_jitter_db
            feats = log_mel_with_gain(feats, cfg.n_mels, db.expand(-1, feats.shape[1]))
        prev = prev + cfg.input_noise * torch.randn_like(prev) * model.disp_std
        if cfg.rollout_passes > 0 and step >= rollout_from:
            with torch.no_grad():
                for _ in range(cfg.rollout_passes):
                    pred = model(feats, prev)
                    prev = torch.cat([prev[:, :1], pred[:, :-1]], dim=1)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * _lr_factor(step, cfg)
        loss = smooth_l1(model(feats, prev), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses = {"loss": float(loss.detach())}
        if has_val and (step % cfg.val_every == 0 or step == cfg.steps):
            scores = evaluate(model, subject)
            losses |= {
                "val_lmd": scores.lmd,
                "val_lmd_baseline": scores.lmd_baseline,
                "val_corr": scores.corr,
            }
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save(model, opt, folder, step, _score_meta(scores))
        yield Progress(STAGE, step, cfg.steps, f"step {step}/{cfg.steps}", losses)

    if has_val and scores is None:
        scores = evaluate(model, subject)
    if not subject.has_model("stage1"):
        _save(model, opt, folder, step, _score_meta(scores))
    return Stage1Result(folder, step, scores, time.monotonic() - t0)


def _score_meta(scores: Stage1Scores | None) -> dict:
    return {} if scores is None else {"validation": scores.as_dict()}
