"""Training of the torso UNet: a resumable generator job (core.progress).

    job = train_torso("subjects/anna", TorsoConfig.from_preset("preview"), "cpu")
    result = run_job(job, print)

Weights go to ``Subject.model_dir("torso")`` (or ``out_dir``) as safetensors + config.json,
with the optimizer state beside them, every ``checkpoint_every`` steps, at the end, and when
the job is cancelled (closed); a later call with the same architecture continues from there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_config, load_into, load_model, save_model, save_train_state
from ..checkpoint import load_train_state as _load_train_state
from ..errors import CheckpointError
from ..perceptual import PerceptualLoss, load_perceptual, perceptual_notice
from ..progress import Eta, Job, Progress
from ..subject import Subject
from .config import TorsoConfig
from .data import Batch, PairSampler, load_batch
from .unet import TorsoUNet

KIND = "torso"
STAGE = "train torso"


@dataclass
class TorsoTrainResult:
    """What a finished (or already complete) training run left behind."""

    model_dir: Path
    """Folder of model.safetensors + config.json."""
    steps: int
    """Optimizer steps the saved model has had."""
    seconds: float
    """Wall-clock seconds of this call's training steps."""
    final_loss: float
    """Mean loss over the last steps of this call (nan when no step ran)."""


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" → CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def torso_loss(
    output: torch.Tensor,  # [B, 3, H, W]
    target: torch.Tensor,  # [B, 3, H, W]
    config: TorsoConfig,
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


def learning_rate(config: TorsoConfig, step: int) -> float:
    """Constant for the first half, then linear decay to lr × lr_final_fraction."""
    half = config.steps / 2
    if config.steps <= 1 or step < half:
        return config.lr
    t = min(1.0, (step - half) / max(half, 1.0))
    return config.lr * (1.0 - t * (1.0 - config.lr_final_fraction))


def preview_strip(net: TorsoUNet, batch: Batch) -> np.ndarray:
    """RGB uint8 [S, 3S, 3]: input head | output | ground truth, of the first frame of ``batch``."""
    with torch.no_grad():
        out = net(batch.background[:1], batch.head_rgb[:1], batch.head_opacity[:1])[0]
    tiles = [batch.head_rgb[0], out.clamp(0, 1), batch.target[0]]
    strip = torch.cat([t.detach().float().cpu() for t in tiles], dim=2)  # [3, S, 3S]
    return (strip.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)


def _resume(folder: Path, config: TorsoConfig, net: TorsoUNet, opt: torch.optim.Optimizer) -> int:
    """Load a previous run's weights and optimizer from ``folder``; return its step (0: none)."""
    if not (folder / "config.json").is_file():
        return 0
    raw = load_config(folder, KIND)
    saved = TorsoConfig.from_dict(raw.get("config", {}))
    if saved.architecture() != config.architecture():
        diff = ", ".join(
            f"{k} {saved.architecture()[k]!r} (now {v!r})"
            for k, v in config.architecture().items()
            if saved.architecture().get(k) != v
        )
        raise CheckpointError(
            f"{folder} holds a torso model trained with another network: {diff}. Train with "
            f"the same preset to continue it, or delete {folder} to train from scratch."
        )
    try:
        state, raw = load_model(folder, KIND)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (to start over, delete {folder})") from exc
    load_into(net, state, str(folder / "model.safetensors"))
    step = int(raw.get("meta", {}).get("step", 0))
    info = _load_train_state(folder, opt)
    if info is None or int(info.get("step", -1)) != step:
        opt.state.clear()  # weights and optimizer disagree: keep the weights, restart moments
    return step


def _save(folder: Path, net: TorsoUNet, opt: torch.optim.Optimizer, step: int, name: str) -> None:
    meta = {"step": step, "subject": name}
    save_model(folder, KIND, net.state_dict(), net.config.to_dict(), meta)
    save_train_state(folder, opt, {"step": step, "seed": net.config.seed})


def train_torso(
    subject_dir: str | Path,
    config: TorsoConfig | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = True,
) -> Job[TorsoTrainResult]:
    """Train (or continue training) the torso UNet of a subject; yields Progress per step."""
    config = config or TorsoConfig()
    config.check()
    dev = resolve_device(device)
    subject = Subject.open(subject_dir)
    folder = Path(out_dir) if out_dir is not None else subject.model_dir(KIND)
    torch.manual_seed(config.seed)
    net = TorsoUNet(config).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = _resume(folder, config, net, opt) if resume else 0
    if start >= config.steps:
        yield Progress(STAGE, config.steps, config.steps, f"already trained for {start} steps")
        return TorsoTrainResult(folder, start, 0.0, float("nan"))

    meta = subject.meta
    sampler = PairSampler(subject, meta.train_range, config)
    perceptual = load_perceptual(dev) if config.vgg_weight > 0 else None
    n = len(sampler.indices)
    for k in sampler.preload():
        if k % 25 == 0 or k == n:
            yield Progress("load frames", k, n, "reading training frames")
    shown = list(meta.val_range)[:1] or [0]
    preview = load_batch(subject, shown, config.image_size).to(dev)
    note = perceptual_notice() if config.vgg_weight > 0 else "VGG perceptual loss off (weight 0)"
    yield Progress(STAGE, start, config.steps, f"{n} training frames; {note}")

    eta, t0, step = Eta(), time.perf_counter(), start
    recent: list[float] = []
    net.train()
    try:
        for step in range(start + 1, config.steps + 1):
            for group in opt.param_groups:
                group["lr"] = learning_rate(config, step - 1)
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            batch = sampler.sample(config.batch_size, gen).to(dev)
            output = net(batch.background, batch.head_rgb, batch.head_opacity)
            loss, parts = torso_loss(output, batch.target, config, perceptual)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            recent = [*recent[-19:], parts["loss"]]
            if step % config.checkpoint_every == 0 or step == config.steps:
                _save(folder, net, opt, step, meta.name)
            left = eta.remaining(step - start, config.steps - start)
            msg = f"loss {parts['loss']:.4f}" + (f", {left:.0f} s left" if left else "")
            image = preview_strip(net, preview) if step % config.preview_every == 0 else None
            yield Progress(STAGE, step, config.steps, msg, parts, image)
    except GeneratorExit:
        if step > start and step % config.checkpoint_every and step != config.steps:
            _save(folder, net, opt, step, meta.name)  # cancelled: keep what was learnt
        raise
    seconds = time.perf_counter() - t0
    return TorsoTrainResult(folder, config.steps, seconds, float(np.mean(recent)))
