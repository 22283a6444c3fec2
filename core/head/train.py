"""Training of the head NeRF: a resumable generator job (core.progress).

    job = train_head("subjects/anna", HeadConfig.from_preset("preview"), "cpu")
    result = run_job(job, print)

Each step renders one random patch of one training frame (random pixel stride, usually centred
on the head; a share at stride 1 on an eye or on the mouth, drawn more often from frames with a
shut eye or an open mouth) and minimises Eq. 9. Rays outside the face mask join gradually during
the first ``face_mask_fraction`` of training. The occupancy grid starts as the visual hull of the
head masks, is refreshed every ``occupancy_interval`` steps under a random training frame's
landmarks, and at the end holds the maximum density over ``bake_frames`` training frames.
Weights, grid and optimizer state are saved to ``Subject.model_dir("head")`` (or ``out_dir``)
every ``checkpoint_every`` steps, at the end and when the job is closed; a later call continues.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..fidelity import evenly_spaced
from ..landmarks import MOUTH, mouth_opening
from ..perceptual import PerceptualLoss, load_perceptual, perceptual_notice
from ..presets import TRAIN_STAGE
from ..progress import Job, Progress
from ..training import TrainLoop, TrainResult, network_check, open_run, restore, save_checkpoint
from .config import HeadConfig
from .data import (
    EYES,
    FrameSet,
    Patch,
    open_mouths,
    pick_frame,
    sample_patch,
    sample_region_patch,
)
from .model import KIND, HeadModel
from .rays import camera_rays
from .renderer import render_rays

STAGE = TRAIN_STAGE["head"]


class HeadTrainResult(TrainResult):
    """What a finished (or already complete) head training run left behind."""


def head_loss(
    rgb: torch.Tensor,  # [R, 3] premultiplied head colour
    opacity: torch.Tensor,  # [R]
    patch: Patch,
    eye_ratio: torch.Tensor,  # [2] r of the frame (left, right)
    config: HeadConfig,
    perceptual: PerceptualLoss | None,
    depth_var: torch.Tensor | None = None,  # [R]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 9: lambda_1 (SmoothL1 + lambda_3 VGG) + lambda_2 L_alpha + e^(1-r) L_eye.

    With ``config.mouth_weight`` > 0, adds that weight times the smooth-L1 loss over the patch's
    pixels inside the outer lips. With ``config.lambda_depth_var`` > 0 and ``depth_var`` given,
    adds that weight times the mean variance of the termination distance over the patch's head
    rays. Neither is part of Eq. 9.
    """
    pred = rgb + (1.0 - opacity[:, None]) * patch.backdrop
    pix = F.smooth_l1_loss(pred, patch.target, beta=config.smooth_l1_beta)
    parts = {"smooth_l1": float(pix.detach())}
    if perceptual is not None and config.lambda_vgg > 0:
        p = patch.size
        to_img = lambda x: x.reshape(1, p, p, 3).permute(0, 3, 1, 2)  # noqa: E731
        vgg = perceptual(to_img(pred), to_img(patch.target))
        parts["vgg"] = float(vgg.detach())
        pix = pix + config.lambda_vgg * vgg
    alpha = F.binary_cross_entropy(opacity.clamp(1e-5, 1 - 1e-5), patch.head)
    parts["alpha"] = float(alpha.detach())
    total = config.lambda_pix * pix + config.lambda_alpha * alpha
    eye = pred.new_zeros(())
    for e in range(2):
        m = patch.eyes[:, e]
        if bool(m.any()) and config.eye_weight > 0:
            weight = math.exp(1.0 - float(eye_ratio[e]))
            eye = eye + weight * F.smooth_l1_loss(
                pred[m], patch.target[m], beta=config.smooth_l1_beta
            )
    parts["eye"] = float(eye.detach())
    total = total + config.eye_weight * eye
    if config.mouth_weight > 0 and bool(patch.mouth.any()):
        m = patch.mouth
        mouth = F.smooth_l1_loss(pred[m], patch.target[m], beta=config.smooth_l1_beta)
        parts["mouth"] = float(mouth.detach())
        total = total + config.mouth_weight * mouth
    if depth_var is not None and config.lambda_depth_var > 0:
        head = patch.head > 0
        if bool(head.any()):
            dv = depth_var[head].mean()
            parts["depth_var"] = float(dv.detach())
            total = total + config.lambda_depth_var * dv
    parts["loss"] = float(total.detach())
    return total, parts


def make_optimizer(model: HeadModel, config: HeadConfig) -> torch.optim.Adam:
    """Adam: lr_grid for the hash grid and Gaussian parameters, lr_mlp for the MLPs. On the CPU
    the fused implementation: one pass over the 1.3 M parameters of the `preview` head instead
    of a dozen (1.6 against 5.4 ms a step on one thread; the same update to float rounding)."""
    fast: list[torch.nn.Parameter] = []
    slow: list[torch.nn.Parameter] = []
    for name, p in model.field.named_parameters():
        is_fast = name.startswith("grid.") or name in ("encoding.quaternion", "encoding.log_scale")
        (fast if is_fast else slow).append(p)
    return torch.optim.Adam(
        [
            {"params": fast, "lr": config.lr_grid, "base_lr": config.lr_grid},
            {"params": slow, "lr": config.lr_mlp, "base_lr": config.lr_mlp},
        ],
        betas=(0.9, 0.99),
        eps=1e-15,
        fused=model.device.type == "cpu",
    )


def bake_selection(frames: FrameSet, count: int) -> list[int]:
    """Frames spanning the training conditions: mouth-opening quantiles and the most closed eyes."""
    n = len(frames)
    if n <= count:
        return list(range(n))
    lms = frames.landmarks.numpy()
    mouth = np.argsort(mouth_opening(lms))
    eyes = np.argsort(frames.eye_ratio.numpy().min(axis=1))
    picks = list(mouth[np.linspace(0, n - 1, count - count // 4).round().astype(int)])
    picks += list(eyes[: count // 4])
    return sorted({int(i) for i in picks})


def carve_hull(model: HeadModel, frames: FrameSet, views: int = 48) -> None:
    """Start the occupancy grid as the visual hull of the training head masks."""
    pick = evenly_spaced(len(frames), views)
    masks = [frames.head_mask(int(j)).numpy() for j in pick]
    model.grid.carve(masks, frames.K, [frames.pose[int(j)] for j in pick])


def _save(folder: Path, model: HeadModel, opt: torch.optim.Optimizer, name: str, step: int) -> None:
    meta = model.checkpoint_meta() | {"subject": name}
    config = model.config.to_dict()
    save_checkpoint(folder, KIND, model, config, opt, step, meta, {"seed": model.config.seed})


@torch.no_grad()
def preview_strip(model: HeadModel, frames: FrameSet, j: int) -> np.ndarray:
    """RGB uint8 [S, 2S, 3]: render | truth of frame j."""
    img = model.render(frames.K, frames.pose[j], frames.landmarks[j], frames.backdrop(j))
    strip = torch.cat([img.rgb.clamp(0, 1).cpu(), frames.image(j)], dim=1)
    return (strip.numpy() * 255.0).round().astype(np.uint8)


def train_head(
    subject_dir: str | Path,
    config: HeadConfig | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = True,
) -> Job[HeadTrainResult]:
    """Train (or continue training) the head NeRF of a subject; yields Progress per step."""
    config = config or HeadConfig()
    subject, folder, dev = open_run(subject_dir, KIND, config, device, out_dir)
    train_frames = subject.steady_train_frames()
    config = config.replace(steps=config.steps_for(len(train_frames)))
    model = HeadModel(config, np.asarray(subject.meta.head_bbox, np.float32), dev)
    opt = make_optimizer(model, config)
    check = network_check(folder, "head", config, HeadConfig.from_dict)
    start = restore(folder, KIND, model, opt, check) if resume else 0
    if start >= config.steps:
        yield Progress(STAGE, config.steps, config.steps, f"already trained for {start} steps")
        return HeadTrainResult(folder, start, 0.0, float("nan"))

    meta = subject.meta
    yield Progress(STAGE, start, config.steps, "loading frames")
    frames = FrameSet.load(subject, train_frames, config.image_size)
    detail = frames  # where the eye and mouth patches come from
    region_size = min(config.region_image_size or config.image_size, meta.size)
    if region_size > config.image_size:
        yield Progress(STAGE, start, config.steps, f"loading frames at {region_size}²")
        detail = FrameSet.load(subject, frames.indices, region_size)
    shown = FrameSet.load(subject, list(meta.val_range)[:1] or [0], config.image_size)
    if start == 0:
        carve_hull(model, frames)
    mouth_open = open_mouths(frames, config.mouth_open_quantile)
    perceptual = load_perceptual(dev) if config.lambda_vgg > 0 else None
    note = perceptual_notice() if config.lambda_vgg > 0 else "VGG term off (lambda_vgg 0)"
    yield Progress(STAGE, start, config.steps, f"{len(frames)} training frames; {note}")

    march = config.march(training=True)
    # The field runs under float16 autocast on CUDA: scale the loss so small gradients survive.
    scaler = torch.amp.GradScaler("cuda", enabled=dev.type == "cuda")
    face_steps = config.face_mask_fraction * config.steps
    save = partial(_save, folder, model, opt, meta.name)
    loop = TrainLoop(start, config.steps, config.checkpoint_every, save)
    model.train()
    with loop:  # a cancel (closing the job) saves the step reached
        for step in loop:
            decay = config.lr_final_fraction ** ((step - 1) / max(config.steps, 1))
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * decay
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            j = int(torch.randint(0, len(frames), (1,), generator=gen))
            regions = config.eye_patch_fraction + config.mouth_patch_fraction
            u = float(torch.rand(1, generator=gen)) if regions > 0 else 1.0
            source = detail if u < regions else frames
            if u < config.eye_patch_fraction:
                side = int(torch.randint(0, 2, (1,), generator=gen))
                closed = frames.eye_ratio[:, side] < config.eye_closed_ratio
                j = pick_frame(closed, config.eye_closed_share, gen)
                patch = sample_region_patch(detail, j, EYES[side], config.patch_size, gen)
            elif u < regions:
                j = pick_frame(mouth_open, config.mouth_open_share, gen)
                patch = sample_region_patch(detail, j, MOUTH, config.patch_size, gen)
            else:
                patch = sample_patch(
                    frames, j, config.patch_size, config.patch_scale_max,
                    config.head_patch_fraction, gen,
                )  # fmt: skip
            active = None
            if step <= face_steps:
                fade = step / max(face_steps, 1.0)
                active = patch.face | (torch.rand(len(patch.face), generator=gen) < fade)
            origins, dirs = camera_rays(source.K, frames.pose[j], patch.uv)
            out = render_rays(
                model.field, model.grid,
                origins.to(dev), dirs.to(dev),
                frames.landmarks[j].to(dev), frames.rotation(j).to(dev),
                march, jitter=True,
                active=active.to(dev) if active is not None else None,
            )  # fmt: skip
            loss, parts = head_loss(
                out.rgb, out.opacity, _to(patch, dev), frames.eye_ratio[j], config, perceptual,
                out.depth_var,
            )  # fmt: skip
            opt.zero_grad(set_to_none=True)
            if loss.requires_grad:  # False when no ray of the patch met an occupied cell
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            metrics = {"samples": float(out.evaluated)}
            if step % config.occupancy_interval == 0:
                k = int(torch.randint(0, len(frames), (1,), generator=gen))
                fn = model.density_fn(frames.landmarks[k], frames.rotation(k))
                model.grid.update(fn, config.occupancy_threshold)
                metrics["occupancy"] = model.grid.occupancy
            if step == config.steps:
                yield Progress(STAGE, step, config.steps, "baking the occupancy grid")
                pick = bake_selection(frames, config.bake_frames)
                rots = torch.stack([frames.rotation(k) for k in pick])
                model.bake_grid(frames.landmarks[pick], rots, config.occupancy_threshold)
            msg = loop.done(step, parts["loss"])  # saves every checkpoint_every and at the end
            image = None
            every = config.preview_every
            if every and (step % every == 0 or step == config.steps):
                image = preview_strip(model, shown, 0)
            yield Progress(STAGE, step, config.steps, msg, parts, image, metrics)
    return HeadTrainResult(folder, config.steps, loop.seconds, loop.final_loss)


def _to(patch: Patch, dev: torch.device) -> Patch:
    if dev.type == "cpu":
        return patch
    tensors: dict[str, Any] = {
        k: v.to(dev) for k, v in vars(patch).items() if isinstance(v, torch.Tensor)
    }
    return dataclasses.replace(patch, **tensors)
