"""Training of the refiner: a resumable generator job (core.progress, core.training).

    job = train_refiner("subjects/anna", RefinerConfig.from_preset("preview"), "cpu")
    result = run_job(job, print)

The subject's trained head renders its training frames once at L = S / scale (the cache of
core/refiner/inputs.py); then each step takes crops at the subject's resolution S, a share of
them centred on the mouth and the eyes. Weights go to ``Subject.model_dir("refiner")`` with the
optimizer beside them every ``checkpoint_every`` steps, at the end and when the job is closed.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import atomic
from ..checkpoint import load_config
from ..errors import CheckpointError
from ..head.model import HeadModel
from ..perceptual import PerceptualLoss, load_perceptual, perceptual_notice
from ..presets import TRAIN_STAGE
from ..progress import Job, Progress
from ..subject import Subject
from ..torso.compose import Compositor
from ..torso.train import tile_strip, torso_loss
from ..training import (
    TrainLoop,
    TrainResult,
    half_decay_lr,
    network_check,
    open_run,
    restore,
    save_checkpoint,
)
from .config import RefinerConfig
from .data import (
    CropBatch,
    CropSampler,
    choose_plate,
    full_batch,
    subject_plate,
    torso_plates,
)
from .inputs import build_cache, pick_frames
from .net import Refined, RefinerNet, upsample

KIND = "refiner"
PLATE_FILE = "plate.png"
STAGE = TRAIN_STAGE["refiner"]
GRAD_CLIP = 1.0
"""Largest gradient norm of a step: without it a run longer than the preview's can blow up
(its loss went from 0.03 to 0.6 at full learning rate on a 61-s subject)."""


class RefinerTrainResult(TrainResult):
    """What a finished (or already complete) refiner training run left behind."""


def head_side(subject: Subject) -> int:
    """Side of the frames the subject's head was trained on (its renders for the refiner)."""
    raw = json.loads((subject.model_dir("head") / "config.json").read_text("utf-8"))
    return int(raw.get("config", {}).get("image_size", subject.meta.size))


def nothing_to_refine(subject: Subject, trained: int | None = None) -> str | None:
    """Why a refiner would add nothing to ``subject`` (its head already renders at the subject's
    full size, as the ``paper`` preset's does or a small subject's), or None. ``trained``: the
    head's side when already read (:func:`head_side`). The training wizard skips the refiner
    then; ``train refiner`` says so."""
    side = subject.meta.size
    trained = head_side(subject) if trained is None else trained
    if trained < side:
        return None
    return (
        f"the head renders at the subject's full {side}² (trained at {trained}²), so a refiner "
        f"has nothing to add; it needs a head trained at half or a quarter of {side}²"
    )


def resolve_scale(subject: Subject, config: RefinerConfig) -> RefinerConfig:
    """``config`` with its scale set: as given, or the subject's side over the head's training
    size. A subject without a trained head, or sizes that do not divide, raise CheckpointError."""
    if not subject.has_model("head"):
        raise CheckpointError(
            f"subject {subject.root} has no trained head: the refiner learns from the head's "
            f"renders, so run `talkstudio train head {subject.root}` first"
        )
    side = subject.meta.size
    scale = config.scale
    if scale == 0:
        head_size = head_side(subject)
        why = nothing_to_refine(subject, head_size)
        if why is not None:
            raise CheckpointError(f"subject {subject.root}: {why}")
        scale = side // head_size if head_size else 0
        if scale not in (2, 4) or side % head_size:
            raise CheckpointError(
                f"the head of {subject.root} trained at {head_size}² and the frames are {side}²: "
                "the refiner needs a ratio of 2 or 4; set its scale (2 or 4) explicitly"
            )
    if side % scale:
        raise CheckpointError(f"the subject's side {side} is not a multiple of scale {scale}")
    if config.plate == "torso" and not subject.has_model("torso"):
        raise CheckpointError(
            f"subject {subject.root} has no trained torso: this refiner composes over the "
            f'torso\'s completion of each frame (plate "torso"), so run '
            f"`talkstudio train torso {subject.root}` first"
        )
    return config.replace(scale=scale)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal [B, C, H, W-1] and vertical [B, C, H-1, W] finite differences."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def refiner_loss(
    out: Refined,
    batch: CropBatch,
    config: RefinerConfig,
    perceptual: PerceptualLoss | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The torso's smooth-L1 (+ vgg_weight · VGG when its weights exist), plus edge_weight · L1
    of the image gradients and mask_weight · BCE(m, person)."""
    total, parts = torso_loss(out.frame, batch.target, config, perceptual)
    gx, gy = image_gradients(out.frame)
    tx, ty = image_gradients(batch.target)
    edge = 0.5 * ((gx - tx).abs().mean() + (gy - ty).abs().mean())
    mask = F.binary_cross_entropy(out.mask.clamp(1e-5, 1 - 1e-5), batch.person)
    total = total + config.edge_weight * edge + config.mask_weight * mask
    parts |= {"edge": float(edge.detach()), "mask": float(mask.detach())}
    parts["loss"] = float(total.detach())
    return total, parts


def preview_strip(net: RefinerNet, batch: CropBatch) -> np.ndarray:
    """RGB uint8 [S, 3S, 3]: upsampled head over the plate | refined | real, first frame."""
    ref = None if batch.reference is None else batch.reference[:1]
    with torch.no_grad():
        out = net(batch.inputs[:1], batch.plate[:1], ref).frame[0].clamp(0, 1)
    up = upsample(batch.inputs[:1, :4], net.config.scale)[0]
    base = up[:3] + (1.0 - up[3:].clamp(0, 1)) * batch.plate[0]
    return tile_strip([base, out, batch.target[0]])


def save_plate(folder: Path, plate: torch.Tensor) -> None:
    """``plate`` [3, S, S] in [0, 1] as ``folder/plate.png`` (8-bit, atomically): part of the
    model, read back by :meth:`Refiner.load <talkstudio.core.refiner.infer.Refiner.load>`."""
    import cv2

    rgb = (plate.permute(1, 2, 0).clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode the refiner's plate for {folder}")
    atomic.write_bytes(folder / PLATE_FILE, buf.tobytes())


def _save(folder: Path, net: RefinerNet, opt: torch.optim.Optimizer, meta: dict, step: int) -> None:
    save_checkpoint(
        folder, KIND, net, net.config.to_dict(), opt, step, meta, {"seed": net.config.seed}
    )


def _head_cache(
    subject: Subject, frames: list[int], low: int, dev: torch.device
) -> Job[torch.Tensor]:
    """The head's renders of ``frames`` at ``low``² (core/refiner/inputs.py :func:`build_cache`)."""
    head = HeadModel.load(subject.model_dir("head"), device=dev)
    return (yield from build_cache(subject, head, frames, low))


def _torso(subject: Subject, dev: torch.device) -> Compositor | None:
    """The subject's trained torso, or None."""
    if not subject.has_model("torso"):
        return None
    return Compositor.load(subject.model_dir("torso"), device=dev)


def _saved_plate(folder: Path) -> str | None:
    """The plate of the refiner checkpoint in ``folder`` (None: none there, or unreadable: the
    run then chooses afresh, and :func:`restore` says what is wrong with the checkpoint)."""
    try:
        plate = load_config(folder, KIND).get("config", {}).get("plate")
    except CheckpointError:
        return None
    return plate if plate in ("mean", "background", "torso") else None


def train_refiner(
    subject_dir: str | Path,
    config: RefinerConfig | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = True,
) -> Job[RefinerTrainResult]:
    """Train (or continue training) the refiner of a subject; yields Progress per frame rendered
    into the input cache, then per step."""
    config = config or RefinerConfig()
    subject, folder, dev = open_run(subject_dir, KIND, config, device, out_dir)
    config = resolve_scale(subject, config)
    low = subject.meta.size // config.scale
    frames = pick_frames(subject.steady_train_frames(), config.cache_frames)
    inputs: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    choice = ""
    if config.plate == "auto":  # the plate a previous run chose, or the better composite now
        saved = _saved_plate(folder) if resume else None
        if saved is None:
            inputs = yield from _head_cache(subject, frames, low, dev)
            mean = subject_plate(subject, "mean", frames)
            saved, choice = choose_plate(
                subject, frames, inputs, mean, _torso(subject, dev), config.scale
            )
        config = config.replace(plate=saved)
    net = RefinerNet(config).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    check = network_check(folder, "refiner", config, RefinerConfig.from_dict)
    start = restore(folder, KIND, net, opt, check) if resume else 0
    if start >= config.steps:
        yield Progress(STAGE, config.steps, config.steps, f"already trained for {start} steps")
        return RefinerTrainResult(folder, start, 0.0, float("nan"))

    if inputs is None:
        inputs = yield from _head_cache(subject, frames, low, dev)
    plate = mean if config.plate == "mean" and mean is not None else None
    plate = subject_plate(subject, config.plate, frames) if plate is None else plate  # [3, S, S]
    save_plate(folder, plate)
    if config.plate == "torso":  # one plate per frame, [N, 3, S, S] uint8
        yield Progress(
            STAGE, start, config.steps, f"completing {len(frames)} frames with the torso"
        )
        compositor = _torso(subject, dev)
        assert compositor is not None  # resolve_scale demands the torso for this plate
        plate = torso_plates(compositor, plate.to(dev), inputs.to(dev), config.scale).cpu()
    if choice:
        yield Progress(STAGE, start, config.steps, choice)
    sampler = CropSampler(subject, frames, inputs, plate, config, config.scale)
    preview = full_batch(
        subject, frames[:1], inputs[:1], plate, config.scale, sampler.references
    ).to(dev)  # the sampler's first frame, with its reference
    perceptual = load_perceptual(dev) if config.vgg_weight > 0 else None
    note = perceptual_notice() if config.vgg_weight > 0 else "VGG perceptual loss off (weight 0)"
    yield Progress(
        STAGE, start, config.steps, f"{len(frames)} frames at {low}² → {subject.meta.size}²; {note}"
    )

    meta: dict[str, object] = {"subject": subject.meta.name, "input_size": low}
    if config.mouth_reference:  # the frames a reference may come from at inference
        meta["reference_frames"] = [int(i) for i in frames]
    loop = TrainLoop(
        start, config.steps, config.checkpoint_every, partial(_save, folder, net, opt, meta)
    )
    net.train()
    with loop:  # a cancel (closing the job) saves the step reached
        for step in loop:
            for group in opt.param_groups:
                group["lr"] = half_decay_lr(config, step - 1)
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            batch = sampler.sample(config.batch_size, gen).to(dev)
            out = net(batch.inputs, batch.plate, batch.reference)
            loss, parts = refiner_loss(out, batch, config, perceptual)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
            opt.step()
            msg = loop.done(step, parts["loss"])
            due = config.preview_every and step % config.preview_every == 0
            image = preview_strip(net, preview) if due else None
            yield Progress(STAGE, step, config.steps, msg, parts, image)
    return RefinerTrainResult(folder, config.steps, loop.seconds, loop.final_loss)
