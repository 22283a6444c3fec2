"""Torso UNet: quality against the paste-on-mean baseline, DCN vs plain, training time, speed.

Subject: ``$TALKSTUDIO_TORSO_SUBJECT``, else ``../subjects/German_20s`` beside the repository
(made by ``talkstudio preprocess ../shared/data/German_20s.mp4 --out ../subjects/German_20s``).
Without it the quality and training measures are skipped (noted) and only speed is measured.

Quality: the preview preset trained once with deformable blocks and once with plain convs (same
steps, same pairs), scored on the validation frames; medians over frames. The deformable model
is kept in ``bench_results/torso_preview_dcn`` for ``scripts/torso_strip.py --model``.
Torch threads: ``$TALKSTUDIO_BENCH_THREADS`` (default 1: on a loaded 2-core machine two OpenMP
threads wait on each other and run several times slower than one). A quick run trains 4 steps at
64² on a 2 s synthetic subject and composes at 64².
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.bench import Context, Measure, time_call
from benchmarks.common import set_threads, subject_from_env

if TYPE_CHECKING:
    from talkstudio.core.torso import TorsoReport

QUICK = {"image_size": 64, "base_width": 8, "steps": 4}
"""The preset overrides of a quick run."""


def _train_and_score(
    subject: Path, deformable: bool, out: Path, overrides: dict[str, int]
) -> tuple[float, TorsoReport]:
    from talkstudio.core.progress import run_job
    from talkstudio.core.torso import TorsoConfig, evaluate_torso, train_torso

    cfg = TorsoConfig.from_preset("preview", deformable=deformable, **overrides)  # type: ignore[arg-type]
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    run_job(train_torso(subject, cfg, "cpu", out_dir=out, resume=False))
    seconds = time.perf_counter() - t0
    return seconds, evaluate_torso(subject, out, "val", "cpu")


def quality(measures: list[Measure], ctx: Context) -> None:
    overrides: dict[str, int] = ctx.pick({}, QUICK)
    if ctx.quick:
        from talkstudio.core.synthetic import SynthConfig, write_synthetic

        cfg = SynthConfig(seed=0, seconds=2.0, size=64)
        subject = write_synthetic(ctx.results / "torso_subject", cfg, video=False).subject_dir
    else:
        subject = subject_from_env("TALKSTUDIO_TORSO_SUBJECT")
    if not (subject / "subject.json").is_file():
        measures.append(
            Measure("quality", "-", [float("nan")], f"skipped: no subject at {subject}")
        )
        return
    import torch

    from talkstudio.core.torso import TorsoConfig

    steps = TorsoConfig.from_preset("preview", **overrides).steps  # type: ignore[arg-type]
    for deformable in (True, False):
        tag = "dcn" if deformable else "plain"
        out = ctx.results / ("torso_preview_dcn" if deformable else "torso_preview_plain")
        seconds, rep = _train_and_score(subject, deformable, out, overrides)
        n, pf = len(rep.frames), rep.per_frame
        threads = torch.get_num_threads()
        note = f"preview, {steps} steps, 1 run, CPU {threads} thread(s)"
        if not deformable:
            note = f"same budget, plain convs, CPU {threads} thread(s)"
        measures.append(Measure(f"train time preview ({tag})", "s", [seconds], note))
        measures.append(Measure(f"val PSNR UNet ({tag})", "dB", pf["psnr_unet"], f"{n} val frames"))
        if deformable:
            measures.append(
                Measure("val PSNR baseline", "dB", pf["psnr_baseline"], "paste on mean")
            )
        measures.append(
            Measure(f"seam MAE UNet ({tag})", "8-bit", pf["seam_mae_unet"], "12 px band @512²")
        )
        measures.append(Measure(f"seam PSNR UNet ({tag})", "dB", pf["seam_psnr_unet"]))
        if deformable:
            measures.append(Measure("seam MAE baseline", "8-bit", pf["seam_mae_baseline"]))
            measures.append(Measure("seam PSNR baseline", "dB", pf["seam_psnr_baseline"]))


def speed(measures: list[Measure], ctx: Context) -> None:
    import torch

    from talkstudio.core.torso import Compositor, TorsoConfig, TorsoUNet

    reps = ctx.reps
    cases = ctx.pick([(128, 32), (256, 32), (512, 32), (512, 64)], [(64, 8)])
    for size, width in cases:
        torch.manual_seed(0)
        cfg = TorsoConfig.from_preset("preview", image_size=size, base_width=width)
        comp = Compositor(TorsoUNet(cfg), "cpu")
        bg, head, alpha = (
            torch.rand(3, size, size),
            torch.rand(3, size, size),
            torch.rand(1, size, size),
        )
        samples = time_call(lambda c=comp, b=bg, h=head, a=alpha: c(b, h * a, a), reps)
        note = f"CPU {torch.get_num_threads()} thread(s), C={width}, batch 1, net at {size}²"
        measures.append(Measure(f"compose {size}² C={width}", "ms/frame", samples, note))
    if torch.cuda.is_available():
        for size, width in cases:
            cfg = TorsoConfig.from_preset("preview", image_size=size, base_width=width)
            comp = Compositor(TorsoUNet(cfg), "cuda")
            x = [torch.rand(1, c, size, size, device="cuda") for c in (3, 3, 1)]

            def call(c: Compositor = comp, x: list = x) -> None:
                c(*x)
                torch.cuda.synchronize()

            samples = time_call(call, reps, warmup=3)
            name = f"compose {size}² C={width} GPU"
            measures.append(Measure(name, "ms/frame", samples, torch.cuda.get_device_name(0)))


def run(ctx: Context) -> list[Measure]:
    set_threads(1)
    measures: list[Measure] = []
    quality(measures, ctx)
    speed(measures, ctx)
    return measures
