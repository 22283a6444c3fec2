"""Head NeRF benchmarks (CPU): full renders, α-edit re-renders, occupancy grid vs dense sampling,
training steps. See ``benchmarks.common`` for the subject/model used and the thread setting.
A quick run trains a throw-away model (a few steps at 64²) on a 2 s synthetic subject and
renders at 64²."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from benchmarks.bench import Context, Measure, time_call
from benchmarks.common import bench_model, bench_subject, setup_threads
from talkstudio.core.edit import apply_alphas
from talkstudio.core.geometry import scale_intrinsics
from talkstudio.core.head import HeadModel
from talkstudio.core.head.data import FrameSet, sample_patch
from talkstudio.core.head.rays import camera_rays
from talkstudio.core.head.renderer import MarchSettings, render_image, render_rays
from talkstudio.core.head.train import head_loss, make_optimizer
from talkstudio.core.metrics import psnr
from talkstudio.core.subject import Subject

QUICK_MODEL = {"steps": 4, "image_size": 64, "patch_size": 16, "bake_frames": 4}
"""The throw-away model of a quick run."""


def run(ctx: Context) -> list[Measure]:
    reps = ctx.reps
    threads = setup_threads()
    if ctx.quick:
        subject_dir = bench_subject(ctx.results, seconds=2.0, size=64)
        model = HeadModel.load(bench_model(subject_dir, ctx.results, **QUICK_MODEL))
    else:
        subject_dir = bench_subject(ctx.results)
        model = HeadModel.load(bench_model(subject_dir, ctx.results))
    subject = Subject.open(subject_dir)
    frame = subject.meta.train_frames  # first validation frame
    pose = subject.tracks.pose[frame]
    lms = torch.from_numpy(subject.tracks.lm_world[frame].astype(np.float32))
    note = f"{threads} thread(s), {subject.meta.name}, val frame {frame}"
    out: list[Measure] = []

    for size in ctx.pick((128, 256, 512), (64,)):
        K = scale_intrinsics(subject.meta.K, subject.meta.size, size)
        bg = torch.zeros(size, size, 3)

        def full(K=K, bg=bg) -> None:
            model.render(K, pose, lms, bg)

        ms = time_call(full, max(1, reps if size < 512 else min(reps, 3)))
        out.append(Measure(f"full head render {size}²", "ms", ms, note))

    # α edits at 256²: the mouth alternates between α3 = 0.4 and 1.6, one edit per call.
    size = ctx.pick(256, 64)
    K = scale_intrinsics(subject.meta.K, subject.meta.size, size)
    editor = model.editor(K, pose, torch.zeros(size, size, 3))
    editor.render(lms)
    base = lms.numpy()
    marched: list[int] = []
    alphas = iter([0.4, 1.6] * (reps + 2))

    def edit() -> None:
        edited = apply_alphas(base, (1.0, 1.0, next(alphas)))
        editor.render(torch.from_numpy(edited))
        marched.append(editor.last_rays)

    ms = time_call(edit, reps)
    total = int((editor.samples.count > 0).sum())
    out.append(
        Measure(
            f"α3 mouth edit re-render {size}²",
            "ms",
            ms,
            f"{note}; {np.median(marched):.0f} of {total} head rays re-marched",
            {"rays_marched": marched, "rays_total": total},
        )
    )
    t0 = time.perf_counter()
    fresh = model.editor(K, pose, torch.zeros(size, size, 3))
    fresh.render(torch.from_numpy(apply_alphas(base, (1.0, 1.0, 1.6))))
    out.append(
        Measure(
            f"first render of a new frame (edit cache build) {size}²",
            "ms",
            [1000 * (time.perf_counter() - t0)],
            note,
        )
    )

    # Occupancy grid + early termination vs dense uniform sampling, same model, 128².
    size = ctx.pick(128, 64)
    data = FrameSet.load(subject, [frame], size)
    truth = data.image(0).numpy()
    bg = data.backdrop(0)
    fast_settings = model.config.march()
    dense_settings = MarchSettings(step=fast_settings.step, stop=0.0, chunk=64, max_chunk=64)
    imgs = {}

    def grid_render() -> None:
        imgs["grid"] = render_image(
            model.field, model.grid, data.K, data.pose[0], lms, bg, fast_settings
        )

    def dense_render() -> None:
        imgs["dense"] = render_image(
            model.field, None, data.K, data.pose[0], lms, bg, dense_settings
        )

    hull = copy.deepcopy(model.grid)
    hull.bitfield.copy_(hull.hull)  # every cell of the visual hull, no density pruning

    def hull_render() -> None:
        imgs["hull"] = render_image(
            model.field, hull, data.K, data.pose[0], lms, bg, dense_settings
        )

    ms_grid = time_call(grid_render, reps)
    p_grid = psnr(imgs["grid"].rgb.clamp(0, 1).numpy(), truth)
    extra: dict[str, object] = {"psnr_grid": p_grid}
    out.append(Measure(f"render {size}², occupancy grid + early stop", "ms", ms_grid, note, extra))
    for key, fn, label in (
        ("dense", dense_render, "dense uniform samples in the head box"),
        ("hull", hull_render, "dense uniform samples in the visual hull"),
    ):
        ms = time_call(fn, max(1, min(reps, 3)))
        p_dense = psnr(imgs[key].rgb.clamp(0, 1).numpy(), truth)
        p_between = psnr(imgs["grid"].rgb.clamp(0, 1).numpy(), imgs[key].rgb.clamp(0, 1).numpy())
        out.append(
            Measure(
                f"render {size}², {label}",
                "ms",
                ms,
                f"{note}; grid {np.median(ms) / np.median(ms_grid):.1f}x faster; PSNR vs truth "
                f"{p_dense:.2f} dB here, {p_grid:.2f} dB with the grid; grid vs this "
                f"{p_between:.1f} dB",
                {"psnr_dense": p_dense, "psnr_grid_vs_dense": p_between},
            )
        )

    # One training step of the preview preset (patch of the model's patch size).
    train = FrameSet.load(subject, range(0, subject.meta.train_frames, 10), model.config.image_size)
    opt = make_optimizer(model, model.config)
    march = model.config.march(training=True)
    gen = torch.Generator().manual_seed(0)
    counts: list[int] = []

    def step() -> None:
        j = int(torch.randint(0, len(train), (1,), generator=gen))
        patch = sample_patch(train, j, model.config.patch_size, 0, 0.8, gen)
        o, d = camera_rays(train.K, train.pose[j], patch.uv)
        r = render_rays(
            model.field, model.grid, o, d, train.landmarks[j], train.rotation(j), march, jitter=True
        )
        loss, _ = head_loss(r.rgb, r.opacity, patch, train.eye_ratio[j], model.config, None)
        opt.zero_grad()
        if loss.requires_grad:
            loss.backward()
            opt.step()
        counts.append(r.evaluated)

    model.train()
    ms = time_call(step, ctx.pick(max(reps, 10), 1))
    p = model.config.patch_size
    out.append(
        Measure(
            f"training step ({p}x{p} rays)",
            "ms",
            ms,
            f"{note}; median {np.median(counts):.0f} samples per step",
        )
    )
    return out
