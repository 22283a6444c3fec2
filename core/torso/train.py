"""Training of the torso UNet: a resumable generator job (core.progress).

    job = train_torso("subjects/anna", TorsoConfig.from_preset("preview"), "cpu")
    result = run_job(job, print)

Weights go to ``Subject.model_dir("torso")`` (or ``out_dir``) as safetensors + config.json,
with the optimizer state beside them, every ``checkpoint_every`` steps, at the end, and when
the job is cancelled (closed); a later call with the same architecture continues from there.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..perceptual import PerceptualLoss, load_perceptual, perceptual_notice
from ..presets import TRAIN_STAGE
from ..progress import Job, Progress
from ..training import TrainLoop, TrainResult, network_check, open_run, restore, save_checkpoint
from ..training import half_decay_lr as learning_rate
from ..training import resolve_device as resolve_device  # used by compose.py
from .config import TorsoConfig
from .data import Batch, PairSampler, load_batch
from .unet import TorsoUNet

KIND = "torso"
STAGE = TRAIN_STAGE["torso"]


class TorsoTrainResult(TrainResult):
    """What a finished (or already complete) torso training run left behind."""


class PixelLossConfig(Protocol):
    """What :func:`torso_loss` reads of a config (the torso's and the refiner's)."""

    @property
    def smooth_l1_beta(self) -> float: ...

    @property
    def vgg_weight(self) -> float: ...


def torso_loss(
    output: torch.Tensor,  # [B, 3, H, W]
    target: torch.Tensor,  # [B, 3, H, W]
    config: PixelLossConfig,
    perceptual: PerceptualLoss | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L_s2^unet = L_SmoothL1 + L_VGG (paper Sec. IV-C, torso generation); VGG only with weights."""
    pix = F.smooth_l1_loss(output, target, beta=config.smooth_l1_beta)
    parts = {"smooth_l1": float(pix.detach())}
    total = pix
    if perceptual is not None and config.vgg_weight > 0:
        vgg = perceptual(output, target)
        parts["vgg"] = float(vgg.detach())
        total = total + config.vgg_weight * vgg
    parts["loss"] = float(total.detach())
    return total, parts


def preview_strip(net: TorsoUNet, batch: Batch) -> np.ndarray:
    """RGB uint8 [S, 3S, 3]: input head | output | ground truth, of the first frame of ``batch``."""
    with torch.no_grad():
        out = net(batch.background[:1], batch.head_rgb[:1], batch.head_opacity[:1])[0]
    return tile_strip([batch.head_rgb[0], out.clamp(0, 1), batch.target[0]])


def tile_strip(tiles: list[torch.Tensor]) -> np.ndarray:
    """Images [3, S, S] in [0, 1] side by side as RGB uint8 [S, n·S, 3] (training previews)."""
    strip = torch.cat([t.detach().float().cpu().clamp(0, 1) for t in tiles], dim=2)  # [3, S, nS]
    return (strip.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)


def _save(folder: Path, net: TorsoUNet, opt: torch.optim.Optimizer, name: str, step: int) -> None:
    config = net.config.to_dict()
    save_checkpoint(
        folder, KIND, net, config, opt, step, {"subject": name}, {"seed": net.config.seed}
    )


def train_torso(
    subject_dir: str | Path,
    config: TorsoConfig | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = True,
) -> Job[TorsoTrainResult]:
    """Train (or continue training) the torso UNet of a subject; yields Progress per step."""
    config = config or TorsoConfig()
    subject, folder, dev = open_run(subject_dir, KIND, config, device, out_dir)
    net = TorsoUNet(config).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    check = network_check(folder, "torso", config, TorsoConfig.from_dict)
    start = restore(folder, KIND, net, opt, check) if resume else 0
    if start >= config.steps:
        yield Progress(STAGE, config.steps, config.steps, f"already trained for {start} steps")
        return TorsoTrainResult(folder, start, 0.0, float("nan"))

    meta = subject.meta
    sampler = PairSampler(subject, subject.steady_train_frames(), config)
    perceptual = load_perceptual(dev) if config.vgg_weight > 0 else None
    n = len(sampler.indices)
    for k in sampler.preload():
        if k % 25 == 0 or k == n:
            yield Progress("load frames", k, n, "reading training frames")
    shown = list(meta.val_range)[:1] or [0]
    preview = load_batch(subject, shown, config.image_size).to(dev)
    note = perceptual_notice() if config.vgg_weight > 0 else "VGG perceptual loss off (weight 0)"
    yield Progress(STAGE, start, config.steps, f"{n} training frames; {note}")

    save = partial(_save, folder, net, opt, meta.name)
    loop = TrainLoop(start, config.steps, config.checkpoint_every, save)
    net.train()
    with loop:  # a cancel (closing the job) saves the step reached
        for step in loop:
            for group in opt.param_groups:
                group["lr"] = learning_rate(config, step - 1)
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            batch = sampler.sample(config.batch_size, gen).to(dev)
            output = net(batch.background, batch.head_rgb, batch.head_opacity)
            loss, parts = torso_loss(output, batch.target, config, perceptual)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            msg = loop.done(step, parts["loss"])  # saves every checkpoint_every and at the end
            due = config.preview_every and step % config.preview_every == 0
            image = preview_strip(net, preview) if due else None
            yield Progress(STAGE, step, config.steps, msg, parts, image)
    return TorsoTrainResult(folder, config.steps, loop.seconds, loop.final_loss)
