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

On the CPU a team of processes trains together (core.data_parallel, :func:`team_size`). Every
member draws the same patch (patch ``s`` is seeded by ``s``) and renders its share of the rays;
each share's loss is its part of the whole patch's (:func:`head_loss` with ``rays``), so the
shares' gradients add up to a single process's, and every member takes that optimizer step.
The run is the single process's run, faster (about 1.3× on 2 cores); a team of another size
can resume it. The occupancy grid is measured by the members in shares and combined. This
process leads: only it yields progress, renders previews and saves.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data_parallel import Team, local_processes
from ..fidelity import evenly_spaced
from ..landmarks import MOUTH, mouth_opening
from ..perceptual import PerceptualLoss, load_perceptual, perceptual_notice, vgg_weights_path
from ..presets import TRAIN_STAGE
from ..progress import Job, Progress
from ..subject import Subject
from ..training import (
    TrainLoop,
    TrainResult,
    network_check,
    open_run,
    restore,
    save_checkpoint,
    torch_threads,
)
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
    rgb: torch.Tensor,  # [R', 3] premultiplied head colour
    opacity: torch.Tensor,  # [R']
    patch: Patch,
    eye_ratio: torch.Tensor,  # [2] r of the frame (left, right)
    config: HeadConfig,
    perceptual: PerceptualLoss | None,
    depth_var: torch.Tensor | None = None,  # [R']
    rays: torch.Tensor | None = None,  # [R'] indices into the patch's R rays
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 9: lambda_1 (SmoothL1 + lambda_3 VGG) + lambda_2 L_alpha + e^(1-r) L_eye.

    With ``config.mouth_weight`` > 0, adds that weight times the smooth-L1 loss over the patch's
    pixels inside the outer lips. With ``config.lambda_depth_var`` > 0 and ``depth_var`` given,
    adds that weight times the mean variance of the termination distance over the patch's head
    rays. Neither is part of Eq. 9.

    ``rays``: the patch's rays that ``rgb``, ``opacity`` and ``depth_var`` hold (one member's
    share of a training team's patch, core.data_parallel; None: all). Every mean is then taken
    over the whole patch, so the shares' losses, parts and gradients add up to the whole
    patch's. The VGG term needs the whole patch.
    """
    n = len(patch.target)

    def mine(x: torch.Tensor) -> torch.Tensor:
        return x if rays is None else x[rays]

    target = mine(patch.target)
    pred = rgb + (1.0 - opacity[:, None]) * mine(patch.backdrop)

    def smooth_l1(where: torch.Tensor | None = None) -> torch.Tensor:  # mean over the patch's
        if where is None:
            count, p, t = n, pred, target
        else:
            count, m = int(where.sum()), mine(where)
            p, t = pred[m], target[m]
        err = F.smooth_l1_loss(p, t, beta=config.smooth_l1_beta, reduction="sum")
        return err / max(3 * count, 1)

    pix = smooth_l1()
    parts = {"smooth_l1": float(pix.detach())}
    if perceptual is not None and config.lambda_vgg > 0:
        if rays is not None:
            raise ValueError("the VGG term needs the whole patch, not a share of its rays")
        p = patch.size
        to_img = lambda x: x.reshape(1, p, p, 3).permute(0, 3, 1, 2)  # noqa: E731
        vgg = perceptual(to_img(pred), to_img(patch.target))
        parts["vgg"] = float(vgg.detach())
        pix = pix + config.lambda_vgg * vgg
    bce = F.binary_cross_entropy(opacity.clamp(1e-5, 1 - 1e-5), mine(patch.head), reduction="sum")
    alpha = bce / n
    parts["alpha"] = float(alpha.detach())
    total = config.lambda_pix * pix + config.lambda_alpha * alpha
    eye = pred.new_zeros(())
    for e in range(2):
        m = patch.eyes[:, e]
        if bool(m.any()) and config.eye_weight > 0:
            eye = eye + math.exp(1.0 - float(eye_ratio[e])) * smooth_l1(m)
    parts["eye"] = float(eye.detach())
    total = total + config.eye_weight * eye
    if config.mouth_weight > 0 and bool(patch.mouth.any()):
        mouth = smooth_l1(patch.mouth)
        parts["mouth"] = float(mouth.detach())
        total = total + config.mouth_weight * mouth
    if depth_var is not None and config.lambda_depth_var > 0:
        head = patch.head > 0
        if bool(head.any()):
            dv = depth_var[mine(head)].sum() / int(head.sum())
            parts["depth_var"] = float(dv.detach())
            total = total + config.lambda_depth_var * dv
    parts["loss"] = float(total.detach())
    return total, parts


def make_optimizer(model: HeadModel, config: HeadConfig) -> torch.optim.Adam:
    """Adam: lr_grid for the hash grid and Gaussian parameters, lr_mlp for the MLPs."""
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


@dataclass
class _Run:
    """What every process of a head training team holds (core.data_parallel): the model and
    its optimizer, the training frames and the step's settings."""

    config: HeadConfig
    model: HeadModel
    opt: torch.optim.Adam
    frames: FrameSet
    detail: FrameSet  # where the eye and mouth patches come from
    mouth_open: torch.Tensor
    perceptual: PerceptualLoss | None
    dev: torch.device
    scaler: torch.amp.GradScaler = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        # The field runs under float16 autocast on CUDA: scale the loss so small gradients
        # survive.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dev.type == "cuda")
        self.march = self.config.march(training=True)
        self.params = [p for p in self.model.parameters() if p.requires_grad]


def _open_model(
    subject_dir: str | Path,
    config: HeadConfig,
    device: str | torch.device,
    out_dir: str | Path | None,
    resume: bool,
) -> tuple[Subject, Path, torch.device, HeadConfig, list[int], HeadModel, torch.optim.Adam, int]:
    """The subject, run folder, device, config (steps for the clip), training frame numbers,
    model and optimizer, restored from the folder's checkpoint; and the step it reached."""
    subject, folder, dev = open_run(subject_dir, KIND, config, device, out_dir)
    train_frames = subject.steady_train_frames()
    config = config.replace(steps=config.steps_for(len(train_frames)))
    model = HeadModel(config, np.asarray(subject.meta.head_bbox, np.float32), dev)
    opt = make_optimizer(model, config)
    check = network_check(folder, "head", config, HeadConfig.from_dict)
    start = restore(folder, KIND, model, opt, check) if resume else 0
    return subject, folder, dev, config, train_frames, model, opt, start


def _load_detail(subject: Subject, frames: FrameSet, config: HeadConfig) -> FrameSet:
    size = min(config.region_image_size or config.image_size, subject.meta.size)
    return FrameSet.load(subject, frames.indices, size) if size > config.image_size else frames


def team_size(config: HeadConfig, dev: torch.device) -> int:
    """Processes of the training team (``config.processes``; 0: two on the CPU when torch has
    at least two threads); one on CUDA, and one with the VGG term, which needs whole patches."""
    if dev.type != "cpu" or (config.lambda_vgg > 0 and vgg_weights_path().is_file()):
        return 1
    return config.processes or local_processes(dev)


def _patch_loss(
    run: _Run, step: int, team: Team
) -> tuple[torch.Tensor, dict[str, float], torch.Generator]:
    """This member's share of training patch ``step`` (drawn by a generator seeded with it, so
    every member draws the same patch; member i renders its rays i, i + n, …): its part of the
    Eq. 9 loss, the loss parts and the samples evaluated, and the generator after the draws."""
    config, frames, detail = run.config, run.frames, run.detail
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
        j = pick_frame(run.mouth_open, config.mouth_open_share, gen)
        patch = sample_region_patch(detail, j, MOUTH, config.patch_size, gen)
    else:
        patch = sample_patch(
            frames, j, config.patch_size, config.patch_scale_max, config.head_patch_fraction, gen
        )
    active = None
    face_steps = config.face_mask_fraction * config.steps
    if step <= face_steps:
        fade = step / max(face_steps, 1.0)
        active = patch.face | (torch.rand(len(patch.face), generator=gen) < fade)
    rays = None if team.size == 1 else torch.arange(team.rank, len(patch.uv), team.size)

    def share(x: torch.Tensor) -> torch.Tensor:
        return x if rays is None else x[rays]

    dev = run.dev
    origins, dirs = camera_rays(source.K, frames.pose[j], patch.uv)
    out = render_rays(
        run.model.field, run.model.grid,
        share(origins).to(dev), share(dirs).to(dev),
        frames.landmarks[j].to(dev), frames.rotation(j).to(dev),
        run.march, jitter=True,
        active=share(active).to(dev) if active is not None else None,
    )  # fmt: skip
    loss, parts = head_loss(
        out.rgb, out.opacity, _to(patch, dev), frames.eye_ratio[j], config, run.perceptual,
        out.depth_var, None if rays is None else rays.to(dev),
    )  # fmt: skip
    return loss, parts | {"samples": float(out.evaluated)}, gen


def _team_step(run: _Run, team: Team, step: int) -> tuple[dict[str, float], bool]:
    """Optimizer step ``step``: this member renders its share of the step's patch and the team
    adds up the shares' gradients; then the occupancy update when one is due, measured by the
    members in shares, and at the last step the bake. Returns the loss parts (and the samples)
    of the whole patch and whether the occupancy grid changed."""
    config, opt, model = run.config, run.opt, run.model
    decay = config.lr_final_fraction ** ((step - 1) / max(config.steps, 1))
    for group in opt.param_groups:
        group["lr"] = group["base_lr"] * decay
    opt.zero_grad(set_to_none=True)
    loss, parts, gen = _patch_loss(run, step, team)
    has_loss = loss.requires_grad  # False when no ray of the share met an occupied cell
    if has_loss:
        run.scaler.scale(loss).backward()
    names = sorted(parts)  # every member has the same (they follow from the whole patch)
    stepped, sums = team.sum_gradients(run.params, has_loss, [parts[k] for k in names])
    if stepped:
        run.scaler.step(opt)
        run.scaler.update()
    share, combine = (team.rank, team.size), team.maximum_ if team.size > 1 else None
    changed = False
    if step % config.occupancy_interval == 0:
        k = int(torch.randint(0, len(run.frames), (1,), generator=gen))
        fn = model.density_fn(run.frames.landmarks[k], run.frames.rotation(k))
        model.grid.update(fn, config.occupancy_threshold, share=share, combine=combine)
        changed = True
    if step == config.steps:
        pick = bake_selection(run.frames, config.bake_frames)
        rots = torch.stack([run.frames.rotation(k) for k in pick])
        lms = run.frames.landmarks[pick]
        model.bake_grid(lms, rots, config.occupancy_threshold, share, combine)
        changed = True
    return dict(zip(names, sums)), changed


def train_head(
    subject_dir: str | Path,
    config: HeadConfig | None = None,
    device: str | torch.device = "cpu",
    out_dir: str | Path | None = None,
    resume: bool = True,
) -> Job[HeadTrainResult]:
    """Train (or continue training) the head NeRF of a subject; yields Progress per step.

    On the CPU the steps are shared by a team of processes (``config.processes``, see
    :func:`team_size`), each with its share of torch's CPU threads; this process leads it.
    """
    config = config or HeadConfig()
    subject, folder, dev, config, train_frames, model, opt, start = _open_model(
        subject_dir, config, device, out_dir, resume
    )
    if start >= config.steps:
        yield Progress(STAGE, config.steps, config.steps, f"already trained for {start} steps")
        return HeadTrainResult(folder, start, 0.0, float("nan"))

    size = team_size(config, dev)
    threads = max(1, torch.get_num_threads() // size)
    perceptual = load_perceptual(dev) if config.lambda_vgg > 0 else None
    helpers = f" (and starting {size - 1} helper process(es))" if size > 1 else ""
    yield Progress(STAGE, start, config.steps, f"loading frames{helpers}")
    # From here on this generator yields only where every helper waits for the next step, so
    # that a cancel (closing it at a yield) can tell them to stop.
    args = (str(subject_dir), config, str(dev), str(folder), resume, perceptual is not None)
    team = Team.lead(size, _helper_main, args, threads)  # they load frames beside us
    try:
        with torch_threads(threads if size > 1 else 0):
            result = yield from _lead(
                subject, folder, config, dev, train_frames, model, opt, start, team, perceptual
            )
    except BaseException as exc:
        team.close(clean=isinstance(exc, GeneratorExit))
        raise
    team.close(clean=True)
    return result


def _lead(
    subject: Subject,
    folder: Path,
    config: HeadConfig,
    dev: torch.device,
    train_frames: list[int],
    model: HeadModel,
    opt: torch.optim.Adam,
    start: int,
    team: Team,
    perceptual: PerceptualLoss | None,
) -> Job[HeadTrainResult]:
    meta = subject.meta
    frames = FrameSet.load(subject, train_frames, config.image_size)
    detail = _load_detail(subject, frames, config)
    shown = FrameSet.load(subject, list(meta.val_range)[:1] or [0], config.image_size)
    if start == 0:
        carve_hull(model, frames)
    team.share_state(model)  # every member starts from this process's weights and grid
    note = perceptual_notice() if config.lambda_vgg > 0 else "VGG term off (lambda_vgg 0)"
    if detail is not frames:
        note = f"eye and mouth patches from frames at {detail.size}²; {note}"
    if team.size > 1:
        note += f"; {team.size} processes, each rendering 1/{team.size} of every patch"
    yield Progress(STAGE, start, config.steps, f"{len(frames)} training frames; {note}")
    mouths = open_mouths(frames, config.mouth_open_quantile)
    run = _Run(config, model, opt, frames, detail, mouths, perceptual, dev)
    save = partial(_save, folder, model, opt, meta.name)
    loop = TrainLoop(start, config.steps, config.checkpoint_every, save)
    model.train()
    with loop:  # a cancel (closing the job) saves the step reached
        for step in loop:
            team.go(True)
            parts, changed = _team_step(run, team, step)
            metrics = {"samples": parts.pop("samples")}
            if changed:
                metrics["occupancy"] = model.grid.occupancy
            msg = loop.done(step, parts["loss"])  # saves every checkpoint_every and at the end
            image = None
            if step % config.preview_every == 0 or step == config.steps:
                image = preview_strip(model, shown, 0)
            if step == config.steps:
                msg += "; occupancy grid baked"
            yield Progress(STAGE, step, config.steps, msg, parts, image, metrics)
    return HeadTrainResult(folder, config.steps, loop.seconds, loop.final_loss)


def _helper_main(
    team: Team,
    subject_dir: str,
    config: HeadConfig,
    device: str,
    folder: str,
    resume: bool,
    vgg: bool,
) -> None:
    """A helper of the team (another process): the same steps as the leader, on its share of
    each patch's rays, until the leader says stop. It writes nothing."""
    subject, _, dev, config, train_frames, model, opt, start = _open_model(
        subject_dir, config, device, folder, resume
    )
    torch.manual_seed(config.seed * 7919 + team.rank)  # its own ray jitter
    frames = FrameSet.load(subject, train_frames, config.image_size)
    detail = _load_detail(subject, frames, config)
    team.share_state(model)  # the leader's weights and carved grid
    perceptual = load_perceptual(dev) if vgg else None
    mouths = open_mouths(frames, config.mouth_open_quantile)
    run = _Run(config, model, opt, frames, detail, mouths, perceptual, dev)
    model.train()
    step = start
    while team.go():
        step += 1
        _team_step(run, team, step)


def _to(patch: Patch, dev: torch.device) -> Patch:
    if dev.type == "cpu":
        return patch
    tensors: dict[str, Any] = {
        k: v.to(dev) for k, v in vars(patch).items() if isinstance(v, torch.Tensor)
    }
    return dataclasses.replace(patch, **tensors)
