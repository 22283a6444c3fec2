"""Training, resuming, checkpoints and inference of the torso UNet on a tiny subject."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torso_helpers import make_torso_subject

from talkstudio.core.checkpoint import load_model
from talkstudio.core.errors import CheckpointError
from talkstudio.core.progress import run_job
from talkstudio.core.subject import Subject
from talkstudio.core.torso import Compositor, TorsoConfig, compose, evaluate_torso, train_torso
from talkstudio.core.torso.data import PairSampler, load_batch

TINY = TorsoConfig(
    image_size=32,
    base_width=8,
    depth=3,
    dcn_levels=(1, 2),
    steps=150,
    batch_size=4,
    checkpoint_every=50,
    preview_every=50,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, float]]]:
    """A tiny subject with a torso model trained for TINY.steps steps, and the logged losses."""
    root = make_torso_subject(tmp_path_factory.mktemp("torso") / "subject")
    records = []
    result = run_job(train_torso(root, TINY), records.append)
    assert result.steps == TINY.steps
    previews = [r.preview for r in records if r.preview is not None]
    assert len(previews) == TINY.steps // TINY.preview_every
    assert previews[0].shape == (32, 96, 3) and previews[0].dtype == np.uint8
    return root, [r.losses for r in records if r.losses]


def test_training_lowers_the_loss(trained: tuple[Path, list[dict[str, float]]]) -> None:
    _, losses = trained
    first = np.mean([d["loss"] for d in losses[:10]])
    last = np.mean([d["loss"] for d in losses[-10:]])
    assert last < 0.5 * first, (first, last)
    assert "vgg" not in losses[0]  # no VGG weights on this machine: the term is off


def test_unet_beats_the_paste_on_mean_baseline(trained: tuple[Path, list]) -> None:
    root, _ = trained
    report = evaluate_torso(root, frames="train")
    s = report.summary()
    # the seam band: the UNet must join head and body better than the mean frame does
    assert s["seam_mae_unet"] < 0.7 * s["seam_mae_baseline"], s
    assert s["seam_psnr_unet"] > s["seam_psnr_baseline"] + 2.0, s
    assert s["psnr_unet"] > s["psnr_baseline"] + 2.0, s
    val = evaluate_torso(root, frames="val").summary()
    assert val["seam_mae_unet"] < val["seam_mae_baseline"], val


def test_compose_is_deterministic_and_batch_independent(trained: tuple[Path, list]) -> None:
    root, _ = trained
    comp = Compositor.load(Subject.open(root).model_dir("torso"), "cpu")
    batch = load_batch(Subject.open(root), [0, 5, 11], 32)
    out = comp(batch.background, batch.head_rgb, batch.head_opacity)
    again = compose(batch.background[0], batch.head_rgb, batch.head_opacity, comp)  # one plate
    assert out.shape == (3, 3, 32, 32) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, again)
    for k in range(3):
        single = comp(batch.background[k], batch.head_rgb[k], batch.head_opacity[k, 0])
        assert single.shape == (3, 32, 32)
        torch.testing.assert_close(single, out[k], rtol=0, atol=1e-5)
    err = (out - batch.target).abs().mean()
    assert err < 0.6 * (batch.baseline(batch.background[0]) - batch.target).abs().mean()
    # another size: the network runs at 32² and its output is resized
    big = torch.nn.functional.interpolate(batch.target, size=(64, 64), mode="bilinear")
    alpha = torch.nn.functional.interpolate(batch.head_opacity, size=(64, 64), mode="bilinear")
    bg = torch.nn.functional.interpolate(batch.background, size=(64, 64), mode="bilinear")
    out64 = comp(bg, big * alpha, alpha)
    assert out64.shape == (3, 3, 64, 64)
    assert (out64 - big).abs().mean() < 0.05


def test_resume_continues_from_the_saved_step(tmp_path: Path) -> None:
    root = make_torso_subject(tmp_path / "subject", frames=12, size=32)
    cfg = TINY.replace(image_size=16, steps=12, checkpoint_every=4, preview_every=100)
    # uninterrupted run into one folder
    run_job(train_torso(root, cfg, out_dir=tmp_path / "straight"))
    # interrupted run: cancel (close the job) after step 6, then start it again
    job = train_torso(root, cfg, out_dir=tmp_path / "resumed")
    loads = []
    for p in job:
        if p.stage == "load frames":
            loads.append(p.step)
        elif p.step == 6:
            break
    job.close()
    assert loads[-1] == 10  # the 10 training frames of 12 were read before training
    _, raw = load_model(tmp_path / "resumed", "torso")
    assert raw["meta"]["step"] == 6  # saved on cancel
    steps = []
    result = run_job(
        train_torso(root, cfg, out_dir=tmp_path / "resumed"),
        lambda p: steps.append(p.step) if p.stage == "train torso" else None,
    )
    assert steps[0] == 6 and steps[1] == 7 and steps[-1] == 12
    assert result.steps == 12
    a, _ = load_model(tmp_path / "straight", "torso")
    b, _ = load_model(tmp_path / "resumed", "torso")
    for key in a:  # same pairs, same optimizer moments: the same weights
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    # asking for no more steps than done trains nothing
    again = list(train_torso(root, cfg, out_dir=tmp_path / "resumed"))
    assert len(again) == 1 and "already trained" in again[0].message


def test_checkpoint_of_another_width_is_refused_clearly(tmp_path: Path) -> None:
    root = make_torso_subject(tmp_path / "subject", frames=6, size=32)
    cfg = TINY.replace(image_size=16, steps=2)
    run_job(train_torso(root, cfg))
    folder = Subject.open(root).model_dir("torso")
    wider = cfg.replace(base_width=16, steps=4)
    with pytest.raises(CheckpointError, match=r"base_width 8 \(now 16\)"):
        run_job(train_torso(root, wider))
    with pytest.raises(CheckpointError, match="another configuration"):
        Compositor.load(folder, config=wider)
    # a truncated weights file is a CheckpointError too, not a crash
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        Compositor.load(folder)
    with pytest.raises(CheckpointError, match="delete"):  # and training says how to start over
        run_job(train_torso(root, cfg))


def test_cli_trains_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from talkstudio.app.cli import main

    root = make_torso_subject(tmp_path / "subject", frames=6, size=32)
    assert main(["train", "torso", str(root), "--steps", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "2/2" in out and "validation" in out and "baseline" in out
    assert Subject.open(root).has_model("torso")


def test_sampler_softens_the_rim_of_the_head_and_its_colour_alike(tmp_path: Path) -> None:
    subject = Subject.open(make_torso_subject(tmp_path / "subject"))
    frames = list(subject.meta.train_range)
    base = TorsoConfig(image_size=32, full_frame_fraction=1.0)
    plain = PairSampler(subject, frames, base).sample(4, torch.Generator().manual_seed(3))
    soft = PairSampler(subject, frames, base.replace(rim_px=2.0)).sample(
        4, torch.Generator().manual_seed(3)
    )
    assert torch.equal(plain.target, soft.target)  # the frame to make is the same
    partial = lambda a: int(((a > 0.02) & (a < 0.98)).sum())  # noqa: E731
    assert partial(soft.head_opacity) > partial(plain.head_opacity)
    assert torch.allclose(soft.head_rgb, soft.target * soft.head_opacity)
