"""Head training on a small synthetic subject: Eq. 9, checkpoints, resuming, evaluation, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkstudio.core.errors import CheckpointError, ConfigError
from talkstudio.core.head import HeadConfig, HeadModel, evaluate_head, train_head
from talkstudio.core.head.data import (
    EYES,
    FrameSet,
    Patch,
    open_mouths,
    pick_frame,
    sample_patch,
    sample_region_patch,
)
from talkstudio.core.head.train import bake_selection, head_loss
from talkstudio.core.landmarks import MOUTH
from talkstudio.core.progress import run_job
from talkstudio.core.subject import Subject

TINY = dict(
    image_size=32,
    patch_size=8,
    grid_levels=4,
    grid_log2_table_size=12,
    grid_max_resolution=64,
    grid_implementation="torch",
    occupancy_resolution=16,
    occupancy_interval=5,
    step_size=0.05,
    bake_frames=4,
    lr_grid=3e-2,
    lr_mlp=1e-2,
    checkpoint_every=10,
    preview_every=10,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Training steps are many small tensor ops: on a shared, loaded CPU one thread is fastest."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def synth_subject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("synth")
    return Path(
        write_synthetic(out, SynthConfig(seed=1, seconds=1.6, size=64), video=False).subject_dir
    )


def _patch(n: int = 4) -> Patch:
    g = torch.Generator().manual_seed(0)
    eyes = torch.zeros(n * n, 2, dtype=torch.bool)
    eyes[:3, 0] = True
    return Patch(
        j=0,
        uv=torch.zeros(n * n, 2),
        target=torch.rand(n * n, 3, generator=g),
        backdrop=torch.rand(n * n, 3, generator=g),
        head=(torch.rand(n * n, generator=g) > 0.5).float(),
        face=torch.ones(n * n, dtype=torch.bool),
        eyes=eyes,
        mouth=torch.arange(n * n) >= n * n - 4,
        size=n,
    )


def test_loss_is_equation_9() -> None:
    patch = _patch()
    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(16, 3, generator=g) * 0.5
    op = torch.rand(16, generator=g)
    cfg = HeadConfig()
    r = torch.tensor([0.25, 1.0])
    total, parts = head_loss(rgb, op, patch, r, cfg, None)
    pred = rgb + (1 - op[:, None]) * patch.backdrop
    pix = F.smooth_l1_loss(pred, patch.target, beta=cfg.smooth_l1_beta)
    alpha = F.binary_cross_entropy(op, patch.head)
    eye = math.exp(1 - 0.25) * F.smooth_l1_loss(pred[:3], patch.target[:3], beta=cfg.smooth_l1_beta)
    assert float(total) == pytest.approx(float(10 * pix + 5 * alpha + eye), rel=1e-5)
    assert parts["eye"] == pytest.approx(float(eye), rel=1e-5)
    assert "vgg" not in parts
    # The optional depth-variance term (outside Eq. 9) adds its weight times the head rays' mean.
    var = torch.rand(16, generator=g)
    with_var, parts = head_loss(rgb, op, patch, r, HeadConfig(lambda_depth_var=2.0), None, var)
    head = patch.head > 0
    assert float(with_var - total) == pytest.approx(2.0 * float(var[head].mean()), rel=1e-5)


def test_vgg_term_switches_on_with_local_weights(tmp_path: Path) -> None:
    from torchvision.models import vgg19

    from talkstudio.core.perceptual import load_perceptual, vgg_weights_path

    path = vgg_weights_path(tmp_path)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(vgg19().state_dict(), path)  # random weights through the real loader
    perceptual = load_perceptual("cpu", hub_dir=tmp_path)
    assert perceptual is not None
    patch = _patch(16)
    rgb = torch.rand(256, 3) * 0.3
    op = torch.rand(256)
    cfg = HeadConfig()
    total, parts = head_loss(rgb, op, patch, torch.ones(2), cfg, perceptual)
    base, _ = head_loss(rgb, op, patch, torch.ones(2), cfg, None)
    assert parts["vgg"] > 0
    assert float(total - base) == pytest.approx(10 * 0.05 * parts["vgg"], rel=1e-4)


def test_config_presets_and_json_round_trip() -> None:
    preview = HeadConfig.from_preset("preview")
    paper = HeadConfig.from_preset("paper")
    assert preview.image_size == 256 and paper.image_size == 512 and paper.steps == 100_000
    assert paper.lr_grid == 5e-3 and paper.lr_mlp == 5e-4
    assert (paper.lambda_pix, paper.lambda_alpha, paper.lambda_vgg) == (10.0, 5.0, 0.05)
    assert HeadConfig.from_dict(json.loads(json.dumps(preview.to_dict()))) == preview
    with pytest.raises(CheckpointError):
        HeadConfig.from_dict({"encoding": "fourier"})
    with pytest.raises(CheckpointError, match="eye_closed_share"):
        HeadConfig.from_dict({"eye_closed_share": 1.5})
    with pytest.raises(CheckpointError, match="mouth_open_share"):
        HeadConfig.from_dict({"mouth_open_share": -0.1})
    with pytest.raises(CheckpointError, match="mouth_weight"):
        HeadConfig.from_dict({"mouth_weight": -1.0})
    with pytest.raises(CheckpointError, match="eye_patch_fraction \\+ mouth_patch_fraction"):
        HeadConfig.from_dict({"eye_patch_fraction": 0.5, "mouth_patch_fraction": 0.6})
    # The paper has no mouth patches nor mouth term: off by default, and older configs load so.
    assert (paper.mouth_patch_fraction, paper.mouth_weight) == (0.0, 0.0)
    old = {k: v for k, v in paper.to_dict().items() if not k.startswith("mouth_")}
    assert HeadConfig.from_dict(old) == paper
    with pytest.raises(ValueError, match="unknown preset"):
        HeadConfig.from_preset("fast")


def test_patches_sample_pixels_at_their_stride(synth_subject: Path) -> None:
    frames = FrameSet.load(Subject.open(synth_subject), [0, 1], 32)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = sample_patch(frames, 1, 8, 0, 0.8, g)
        cols = (p.uv[:, 0] - 0.5).long()
        rows = (p.uv[:, 1] - 0.5).long()
        torch.testing.assert_close(p.target, frames.image(1)[rows, cols])
        stride = int(cols[1] - cols[0])
        assert 1 <= stride <= 4 and int(cols.max() - cols.min()) == 7 * stride


def test_eye_patches_sit_on_the_eye_and_draw_closed_eyes_by_share(synth_subject: Path) -> None:
    frames = FrameSet.load(Subject.open(synth_subject), range(20), 64)
    # One closed left eye in twenty frames (a blink is a few per cent of a video).
    frames.eye_ratio[:, 0] = 1.0
    frames.eye_ratio[7, 0] = 0.05
    g = torch.Generator().manual_seed(0)
    closed = frames.eye_ratio[:, 0] < 0.5
    picks = [pick_frame(closed, 0.5, g) for _ in range(400)]
    share = np.mean(np.array(picks) == 7)
    assert 0.4 < share < 0.6, f"closed-eye frames drew {share:.2f} of the eye patches, want 0.5"
    assert len(set(picks)) > 10, "open-eye frames should all be drawn"
    # No closed right eye anywhere: every frame is fair game for that side.
    frames.eye_ratio[:, 1] = 1.0
    assert len({pick_frame(frames.eye_ratio[:, 1] < 0.5, 1.0, g) for _ in range(200)}) > 10

    for side in (0, 1):
        p = sample_region_patch(frames, 3, EYES[side], 16, g)
        cols = (p.uv[:, 0] - 0.5).long()
        rows = (p.uv[:, 1] - 0.5).long()
        assert int(cols[1] - cols[0]) == 1 and int(cols.max() - cols.min()) == 15  # stride 1
        torch.testing.assert_close(p.target, frames.image(3)[rows, cols])
        centre = frames.lm2d[3][list(EYES[side])].mean(axis=0)
        assert np.abs(p.uv.numpy().mean(axis=0) - centre).max() <= 16 // 8 + 1.0
    eyes_apart = frames.lm2d[3][list(EYES[0])].mean(0) - frames.lm2d[3][list(EYES[1])].mean(0)
    assert abs(eyes_apart[0]) > 4, "the two eye patches should be centred on different eyes"


def test_mouth_patches_sit_on_the_mouth_and_draw_open_mouths_by_share(
    synth_subject: Path,
) -> None:
    frames = FrameSet.load(Subject.open(synth_subject), range(20), 64)
    opening = frames.mouth_open.numpy()
    assert opening.shape == (20,) and opening.max() > opening.min()
    wide = open_mouths(frames, 0.75)
    assert int(wide.sum()) == 5, "the top quarter of 20 frames is 5 frames"
    assert opening[wide.numpy()].min() >= opening[~wide.numpy()].max()
    g = torch.Generator().manual_seed(0)
    for share in (0.3, 0.8):
        picks = np.array([pick_frame(wide, share, g) for _ in range(600)])
        drawn = np.isin(picks, wide.nonzero(as_tuple=True)[0].numpy()).mean()
        assert abs(drawn - share) < 0.07, f"open mouths drew {drawn:.2f}, want {share}"
    assert len(set(picks.tolist())) == 20, "every frame stays in the draw"

    for j in (2, 11):
        p = sample_region_patch(frames, j, MOUTH, 16, g)
        cols = (p.uv[:, 0] - 0.5).long()
        rows = (p.uv[:, 1] - 0.5).long()
        assert int(cols[1] - cols[0]) == 1 and int(cols.max() - cols.min()) == 15  # stride 1
        torch.testing.assert_close(p.target, frames.image(j)[rows, cols])
        centre = frames.lm2d[j][list(MOUTH)].mean(axis=0)
        assert np.abs(p.uv.numpy().mean(axis=0) - centre).max() <= 16 // 8 + 1.0
        assert bool(p.mouth.any()), "a mouth patch holds the lips' pixels"
        eyes = frames.lm2d[j][list(EYES[0] + EYES[1])].mean(axis=0)
        assert np.linalg.norm(centre - eyes) > 8, "the mouth lies below the eyes"


def test_mouth_term_adds_the_lip_pixels_loss() -> None:
    patch = _patch()
    g = torch.Generator().manual_seed(2)
    rgb = torch.rand(16, 3, generator=g) * 0.5
    op = torch.rand(16, generator=g)
    r = torch.ones(2)
    base, parts = head_loss(rgb, op, patch, r, HeadConfig(), None)
    assert "mouth" not in parts
    total, parts = head_loss(rgb, op, patch, r, HeadConfig(mouth_weight=3.0), None)
    pred = rgb + (1 - op[:, None]) * patch.backdrop
    lips = F.smooth_l1_loss(pred[-4:], patch.target[-4:], beta=HeadConfig().smooth_l1_beta)
    assert parts["mouth"] == pytest.approx(float(lips), rel=1e-5)
    assert float(total - base) == pytest.approx(3.0 * float(lips), rel=1e-4)


def test_training_with_mouth_patches_runs(synth_subject: Path, tmp_path: Path) -> None:
    cfg = HeadConfig(
        steps=8,
        mouth_patch_fraction=0.75,
        mouth_weight=1.0,
        region_image_size=64,  # the lips at twice the working size
        **TINY,  # type: ignore[arg-type]
    )
    records = list(train_head(synth_subject, cfg, "cpu", out_dir=tmp_path / "head"))
    assert any("frames at 64²" in r.message for r in records), "the finer frames were not loaded"
    steps = [r for r in records if r.losses]
    assert [r.step for r in steps] == list(range(1, 9))
    assert all(math.isfinite(r.losses["loss"]) for r in steps)
    assert any(r.losses.get("mouth", 0.0) > 0 for r in steps), "no step trained the lips"
    assert HeadModel.load(tmp_path / "head").config.mouth_patch_fraction == 0.75


def test_a_long_clip_trains_more_steps_up_to_the_limit(synth_subject: Path, tmp_path: Path) -> None:
    frames = len(Subject.open(synth_subject).steady_train_frames())
    assert frames >= 20
    short = HeadConfig(steps=3, steps_per_frame=0.1, max_steps=50, **TINY)  # type: ignore[arg-type]
    assert short.steps_for(frames) == max(3, round(0.1 * frames))
    assert short.steps_for(1000) == 50 and short.steps_for(5) == 3
    assert HeadConfig(steps=3, steps_per_frame=0.1).steps_for(10_000) == 1000  # no limit
    assert HeadConfig(steps=3).steps_for(10_000) == 3  # off
    preview = HeadConfig.from_preset("preview")
    assert preview.steps_for(100) == preview.steps < preview.steps_for(10_000) == preview.max_steps
    exact = HeadConfig.from_preset("preview", steps=400)  # steps asked for are exactly those
    assert exact.steps_for(10_000) == 400
    assert HeadConfig.from_preset("preview", steps=400, steps_per_frame=1.0).steps_for(900) == 900
    with pytest.raises(ConfigError, match="max_steps 2 is below steps 3"):
        HeadConfig(steps=3, max_steps=2)
    with pytest.raises(ConfigError, match="cannot be negative"):
        HeadConfig(steps_per_frame=-1.0)

    cfg = HeadConfig(steps=2, steps_per_frame=1.0, max_steps=4, **TINY)  # type: ignore[arg-type]
    records = list(train_head(synth_subject, cfg, "cpu", out_dir=tmp_path / "head"))
    assert {r.total for r in records} == {4}, "progress must count the steps the clip gets"
    assert [r.step for r in records if r.losses] == [1, 2, 3, 4]
    saved = HeadModel.load(tmp_path / "head").config
    assert (saved.steps, saved.steps_per_frame) == (4, 1.0)
    again = list(train_head(synth_subject, cfg, "cpu", out_dir=tmp_path / "head"))
    assert "already trained for 4 steps" in again[-1].message


def test_finer_region_patches_cast_the_rays_of_the_same_image_points(synth_subject: Path) -> None:
    from talkstudio.core.head.rays import camera_rays

    subject = Subject.open(synth_subject)
    coarse, fine = FrameSet.load(subject, [3], 32), FrameSet.load(subject, [3], 64)
    g = torch.Generator().manual_seed(0)
    p = sample_region_patch(fine, 0, MOUTH, 16, g)
    centre = fine.lm2d[0][list(MOUTH)].mean(axis=0)
    assert np.abs(p.uv.numpy().mean(axis=0) - centre).max() <= 16 // 8 + 1.0  # at 64²
    o_fine, d_fine = camera_rays(fine.K, fine.pose[0], p.uv)
    o_coarse, d_coarse = camera_rays(coarse.K, coarse.pose[0], p.uv * 0.5)  # same points at 32²
    torch.testing.assert_close(o_fine, o_coarse)
    torch.testing.assert_close(d_fine, d_coarse, atol=1e-5, rtol=0)
    img = torch.nn.functional.avg_pool2d(fine.image(0).permute(2, 0, 1)[None], 2)[0]
    assert float((img.permute(1, 2, 0) - coarse.image(0)).abs().mean()) < 0.02  # same picture


def test_training_resumes_and_cancel_keeps_progress(synth_subject: Path, tmp_path: Path) -> None:
    out = tmp_path / "head"
    cfg = HeadConfig(steps=12, **TINY)  # type: ignore[arg-type]
    records = []
    result = run_job(train_head(synth_subject, cfg, "cpu", out_dir=out), records.append)
    assert result.steps == 12 and (out / "model.safetensors").is_file()
    assert any(r.preview is not None and r.preview.shape == (32, 64, 3) for r in records)
    raw = json.loads((out / "config.json").read_text())
    assert raw["kind"] == "head" and raw["meta"]["step"] == 12
    first = HeadModel.load(out).state_dict()

    # Continue to 20 steps: starts at 12, and the weights move on.
    more = HeadConfig(steps=20, **TINY)  # type: ignore[arg-type]
    steps = [r.step for r in train_head(synth_subject, more, "cpu", out_dir=out) if r.losses]
    assert steps[0] == 13 and steps[-1] == 20
    second = HeadModel.load(out).state_dict()
    assert not torch.equal(first["field.grid.params"], second["field.grid.params"])
    # Previews off (0): no step renders one, the last included.
    quiet = HeadConfig(steps=14, **(TINY | {"preview_every": 0}))  # type: ignore[arg-type]
    late = list(train_head(synth_subject, quiet, "cpu", out_dir=tmp_path / "quiet"))
    assert [r.step for r in late if r.losses][-1] == 14
    assert all(r.preview is None for r in late)
    with pytest.raises(ConfigError, match="preview_every -1 cannot be negative"):
        HeadConfig(preview_every=-1)
    # Already complete: one record, no training.
    done = list(train_head(synth_subject, more, "cpu", out_dir=out))
    assert len(done) == 1 and "already trained" in done[0].message

    # Cancelling between steps saves the step reached (not the last checkpoint's, 20), and
    # Resume continues from there.
    longer = HeadConfig(steps=26, **(TINY | {"checkpoint_every": 100}))  # type: ignore[arg-type]
    job = train_head(synth_subject, longer, "cpu", out_dir=out)
    for rec in job:
        if rec.step == 24 and rec.losses:
            break
    job.close()
    assert json.loads((out / "config.json").read_text())["meta"]["step"] == 24
    assert json.loads((out / "train_state.json").read_text())["info"]["step"] == 24
    steps = [r.step for r in train_head(synth_subject, longer, "cpu", out_dir=out) if r.losses]
    assert steps == [25, 26]

    # Another architecture refuses to continue this checkpoint.
    other = HeadConfig(steps=50, **(TINY | {"grid_levels": 5}))  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="grid_levels"):
        list(train_head(synth_subject, other, "cpu", out_dir=out))


def test_training_learns_and_evaluation_scores_it(synth_subject: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    out = tmp_path / "head"
    cfg = HeadConfig(steps=90, **(TINY | {"patch_size": 16}))  # type: ignore[arg-type]
    losses = [
        r.losses["smooth_l1"]
        for r in train_head(synth_subject, cfg, "cpu", out_dir=out)
        if "smooth_l1" in r.losses
    ]
    assert len(losses) == 90
    assert np.mean(losses[-15:]) < 0.5 * np.mean(losses[:15])
    report = evaluate_head(synth_subject, out, strip_frames=2)
    subject = Subject.open(synth_subject)
    assert report.frames == list(subject.meta.val_range)
    # The baseline is the mean training frame, scored with the same metric.
    from talkstudio.core import metrics
    from talkstudio.core.head.evaluate import mean_training_frame

    data = FrameSet.load(subject, report.frames, 32)
    mean = mean_training_frame(subject, 32)
    want = np.mean(
        [
            metrics.psnr(mean, data.image(j).numpy(), data.head_mask(j).numpy())
            for j in range(len(data))
        ]
    )
    s = report.summary()
    assert s["psnr_head_baseline"] == pytest.approx(want, rel=1e-9)
    assert 10.0 < s["psnr_head_model"] < 60.0 and 0.0 < s["ssim_model"] <= 1.0
    assert np.isfinite(s["psnr_mouth_model_mean_landmarks"])
    assert report.strip is not None and report.strip.shape == (64, 64, 3)
    model = HeadModel.load(out)
    assert 0.01 < model.grid.occupancy < 1.0
    picks = bake_selection(FrameSet.load(subject, range(36), 32), 4)
    assert len(picks) == 4 and len(set(picks)) == 4


def test_cli_trains_and_reports(
    synth_subject: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from talkstudio.app.cli import main
    from talkstudio.app.commands import train_head as command

    subject = tmp_path / "subject"
    shutil.copytree(synth_subject, subject)
    monkeypatch.setattr(command, "VALIDATION_FRAMES", 3)
    code = main(["train", "head", str(subject), "--steps", "3", "--device", "cpu"])
    assert code == 0
    text = capsys.readouterr().out
    assert "validation (3 frames at 256², spread over the split)" in text
    folder = subject / "models" / "head"
    saved = HeadModel.load(folder).config
    assert saved.steps == 3, "--steps is exact, not scaled by the clip"
    assert saved.preview_every == 0, "a terminal shows no preview images: none is rendered"
    assert (folder / "validation_strip.png").is_file()
    report = json.loads((folder / "validation.json").read_text())
    assert np.isfinite(report["summary"]["psnr_head_model"])
    val = list(Subject.open(subject).meta.val_range)
    scored = [r["frame"] for r in report["model"]]
    assert len(val) > 3 and len(scored) == 3
    assert scored[0] == val[0] and scored[-1] == val[-1] and val[0] < scored[1] < val[-1]


def test_evaluation_renders_in_two_processes_as_in_one(
    synth_subject: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talkstudio.core import training
    from talkstudio.core.head import evaluate

    out = tmp_path / "head"
    cfg = HeadConfig(steps=20, **(TINY | {"patch_size": 16}))  # type: ignore[arg-type]
    list(train_head(synth_subject, cfg, "cpu", out_dir=out))
    frames = list(range(training.PARALLEL_FROM))
    with training.torch_threads(1):  # one thread: rendered here
        one = evaluate_head(synth_subject, out, frames=frames, strip_frames=2)
    calls: list[int] = []

    def counted(*args: object) -> object:
        calls.append(int(args[4]))  # type: ignore[call-overload]  # workers
        return training.process_map(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate, "process_map", counted)
    with training.torch_threads(2):  # two threads: two processes with one each
        two = evaluate_head(synth_subject, out, frames=frames, strip_frames=2)
    assert calls == [2]
    assert two.frames == one.frames == frames
    for a, b in zip(one.model, two.model):
        assert a.psnr_head == pytest.approx(b.psnr_head, abs=0.01)
        assert a.psnr_mouth_mean_lm == pytest.approx(b.psnr_mouth_mean_lm, abs=0.01)
    assert one.strip is not None and two.strip is not None
    assert np.abs(one.strip.astype(int) - two.strip.astype(int)).max() <= 1
