"""The refiner: its network's sizes and blending, training (resume, cancel) on a copy of the demo
subject, the engine's refined frames and an α3 edit flowing through the refinement."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from talkstudio.core.checkpoint import load_model
from talkstudio.core.errors import CheckpointError, ConfigError
from talkstudio.core.geometry import project_head_points, scale_intrinsics
from talkstudio.core.landmarks import mouth_opening
from talkstudio.core.progress import run_job
from talkstudio.core.refiner import Refiner, RefinerConfig, RefinerNet, train_refiner
from talkstudio.core.refiner.data import TORSO_MARGIN_DB
from talkstudio.core.refiner.inputs import cache_path
from talkstudio.core.subject import MASK_FACE, Subject

TINY = RefinerConfig(
    base_width=8,
    depth=2,
    dcn_levels=(1,),
    up_width=8,
    steps=40,
    batch_size=2,
    crop_size=64,
    cache_frames=6,
    checkpoint_every=10,
    preview_every=20,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _checkerboard(side: int, cell: int = 2) -> torch.Tensor:  # [3, side, side]
    yy, xx = np.mgrid[0:side, 0:side]
    board = (((yy // cell) + (xx // cell)) % 2).astype(np.float32)
    return torch.from_numpy(np.stack([board, 1 - board, 0.5 * board]))


@pytest.mark.parametrize("scale", [2, 4])
def test_output_size_and_the_plate_outside_the_blend(scale: int) -> None:
    torch.manual_seed(scale)
    net = RefinerNet(TINY.replace(scale=scale)).eval()
    torch.nn.init.normal_(net.to_out.weight, std=0.01)  # a net that corrects something
    low = 16
    yy, xx = np.mgrid[0:low, 0:low]
    disc = torch.from_numpy((((yy - 7.5) ** 2 + (xx - 7.5) ** 2) < 16).astype(np.float32))
    inputs = torch.zeros(1, 5, low, low)
    inputs[0, :3] = 0.6 * disc  # premultiplied skin colour
    inputs[0, 3] = disc
    inputs[0, 4] = 0.5 * disc
    plate = _checkerboard(low * scale)[None]
    with torch.no_grad():
        out = net(inputs, plate)
    assert out.frame.shape == (1, 3, low * scale, low * scale)
    assert out.mask.shape == (1, 1, low * scale, low * scale)
    # outside the (upsampled, grown) head the 2-px checkerboard comes through at full contrast
    far = torch.nn.functional.interpolate(disc[None, None], scale_factor=scale)[0, 0]
    far = torch.from_numpy(cv2.dilate(far.numpy(), np.ones((2 * scale + 1,) * 2)) == 0)
    assert far.float().mean() > 0.4
    err = (out.frame[0] - plate[0]).abs().amax(dim=0)  # [S, S]
    assert float(err[far].max()) < 0.02
    assert float(out.mask[0, 0][far].max()) < 0.01
    # inside the head it is the head, not the plate
    centre = slice(6 * scale, 10 * scale)
    inside = out.frame[0, :, centre, centre]
    assert float((inside - 0.6).abs().mean()) < 0.1
    # inputs that do not fit the scale are refused
    with pytest.raises(ValueError, match="plate"):
        net(inputs, plate[..., :-2, :-2])


def test_config_refuses_bad_settings() -> None:
    with pytest.raises(ConfigError, match="scale"):
        RefinerConfig(scale=3)
    with pytest.raises(ConfigError, match="crop_size"):
        RefinerConfig(crop_size=100)
    with pytest.raises(ConfigError, match="at most 1"):
        RefinerConfig(mouth_fraction=0.7, eye_fraction=0.5)


@pytest.fixture(scope="module")
def subject(demo_subject: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo subject (256² frames, head trained at 128²: the refiner works ×2)."""
    root = tmp_path_factory.mktemp("refiner") / "demo"
    shutil.copytree(demo_subject, root)
    return root


@pytest.fixture(scope="module")
def trained(subject: Path) -> tuple[Path, list]:
    records: list = []
    result = run_job(train_refiner(subject, TINY), records.append)
    assert result.steps == TINY.steps
    return subject, records


def test_training_renders_once_and_learns(trained: tuple[Path, list]) -> None:
    root, records = trained
    rendered = [r for r in records if r.stage == "render head"]
    assert rendered[-1].step == rendered[-1].total == TINY.cache_frames
    assert cache_path(Subject.open(root), 128).is_file()
    losses = [r.losses["loss"] for r in records if r.losses]
    assert len(losses) == TINY.steps
    assert np.mean(losses[-10:]) < np.mean(losses[:10]), losses
    previews = [r.preview for r in records if r.preview is not None]
    assert len(previews) == 2 and previews[0].shape == (256, 768, 3)
    _, raw = load_model(Subject.open(root).model_dir("refiner"), "refiner")
    assert raw["config"]["scale"] == 2 and raw["meta"]["input_size"] == 128
    # a second run renders nothing: the cache is read back, and the steps are done
    again = list(train_refiner(root, TINY))
    assert len(again) == 1 and "already trained" in again[0].message


def test_reading_the_cache_back_holds_its_frames_once(tmp_path: Path) -> None:
    """A 61-s subject's 200 cached frames took 13 GB to read back when every frame loaded the
    whole stored array again."""
    import tracemalloc

    from talkstudio.core.refiner.inputs import _read, _write

    frames = {i: np.full((5, 64, 64), i, np.uint8) for i in range(0, 120, 3)}  # 40 × 20 KB
    path = tmp_path / "inputs-64.npz"
    _write(path, "k1", frames)
    tracemalloc.start()
    back = _read(path, "k1")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sorted(back) == sorted(frames) and all((back[i] == i).all() for i in frames)
    size = 40 * 5 * 64 * 64
    assert peak < 3 * size, f"reading {size} bytes of frames peaked at {peak} bytes"
    assert _read(path, "another head") == {}


def test_the_cache_renders_in_two_processes_as_in_one_and_resumes(subject: Path) -> None:
    import multiprocessing as mp

    from talkstudio.core.head import HeadModel
    from talkstudio.core.refiner.inputs import build_cache

    s = Subject.open(subject)
    head = HeadModel.load(s.model_dir("head"))
    frames = s.steady_train_frames()[:10]
    path = cache_path(s, 32)  # a side no other test caches at
    one = run_job(build_cache(s, head, frames, 32))  # one thread: rendered here
    path.unlink()
    torch.set_num_threads(2)  # two threads: two worker processes with one each
    job = build_cache(s, head, frames, 32)
    for record in job:
        if record.step == 2 and "rendered" in record.message:
            break
    assert len(mp.active_children()) == 2, "two worker processes render the frames"
    job.close()  # a cancel keeps the frames rendered so far
    records: list = []
    two = run_job(build_cache(s, head, frames, 32), records.append)
    assert records[0].message == "2 of 10 frames cached"
    assert [r.step for r in records[1:]] == list(range(3, 11))
    assert not mp.active_children(), "the workers must have ended"
    path.unlink()
    assert two.shape == one.shape == (10, 5, 32, 32) and one.float().mean() > 1
    assert (two.int() - one.int()).abs().max() <= 1  # threads sum in another order


def test_a_head_at_the_subjects_full_size_has_nothing_to_refine(
    subject: Path, tmp_path: Path
) -> None:
    import json

    from talkstudio.core.errors import CheckpointError
    from talkstudio.core.refiner.train import nothing_to_refine

    assert nothing_to_refine(Subject.open(subject)) is None  # 128² head, 256² frames
    full = tmp_path / "full"
    shutil.copytree(subject, full, ignore=shutil.ignore_patterns("refiner", "frames", "masks"))
    for name in ("frames", "masks"):
        (full / name).symlink_to(subject / name)
    head_config = full / "models" / "head" / "config.json"
    raw = json.loads(head_config.read_text())
    raw["config"]["image_size"] = 256  # as if trained at the subject's side (the paper preset)
    head_config.write_text(json.dumps(raw))
    why = nothing_to_refine(Subject.open(full))
    assert why is not None and "full 256²" in why and "nothing to add" in why
    with pytest.raises(CheckpointError, match="nothing to add"):
        run_job(train_refiner(full, TINY))


def test_resume_after_cancel_gives_the_same_weights(
    trained: tuple[Path, list], tmp_path: Path
) -> None:
    root, _ = trained
    cfg = TINY.replace(steps=8, checkpoint_every=3)
    run_job(train_refiner(root, cfg, out_dir=tmp_path / "straight"))
    job = train_refiner(root, cfg, out_dir=tmp_path / "resumed")
    for p in job:
        if p.stage == "train refiner" and p.step == 5:
            break
    job.close()  # cancelled: the step reached is saved
    _, raw = load_model(tmp_path / "resumed", "refiner")
    assert raw["meta"]["step"] == 5
    steps: list[int] = []
    run_job(
        train_refiner(root, cfg, out_dir=tmp_path / "resumed"),
        lambda p: steps.append(p.step) if p.stage == "train refiner" and p.losses else None,
    )
    assert steps == [6, 7, 8]
    a, _ = load_model(tmp_path / "straight", "refiner")
    b, _ = load_model(tmp_path / "resumed", "refiner")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    with pytest.raises(CheckpointError, match=r"base_width 8 \(now 16\)"):
        run_job(train_refiner(root, cfg.replace(base_width=16), out_dir=tmp_path / "straight"))


def test_refiner_needs_a_trained_head(tmp_path: Path) -> None:
    from conftest import make_tiny_subject

    root = make_tiny_subject(tmp_path / "s", frames=6, size=32, audio=False)
    with pytest.raises(CheckpointError, match="train head"):
        run_job(train_refiner(root, TINY))


@pytest.fixture(scope="module")
def engine(trained: tuple[Path, list]):
    from talkstudio.core.engine import Engine

    return Engine.open(trained[0], device="cpu")


def test_engine_renders_through_the_refiner(engine, trained: tuple[Path, list]) -> None:
    from talkstudio.core.engine import Engine

    assert isinstance(engine.refiner, Refiner) and engine.refiner.output_size == 256
    frame = engine.render(3, (1, 1, 1), 256)
    assert frame.rgb.shape == (256, 256, 3)
    small = engine.render(3, (1, 1, 1), 128)  # other sizes: the refined frame, resized
    assert small.rgb.shape == (128, 128, 3)
    down = cv2.resize(frame.rgb, (128, 128), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(small.rgb - down).mean() < 2.0
    fast = engine.render_fast(3, (1, 1, 1.5), 256)
    assert fast.kind == "fast" and fast.rgb.shape == (256, 256, 3)
    plain = Engine.open(trained[0], device="cpu", refine=False)  # the paper's torso path
    assert plain.refiner is None
    assert np.abs(plain.render(3, (1, 1, 1), 256).rgb.astype(float) - frame.rgb).mean() > 0.5


def test_mouth_edit_flows_through_the_refiner(engine) -> None:
    """α3 = 2 after refinement changes the mouth and leaves the upper face (Eq. 9 and the
    landmark conditioning are untouched: the refiner only sees the NeRF's render)."""
    size = 256
    track = engine.track
    opening = mouth_opening(track.lm_world.astype(np.float64))
    frame = int(np.argsort(opening)[len(opening) // 2])
    base = engine.render(frame, (1, 1, 1), size).rgb.astype(np.float64)
    wide = engine.render(frame, (1, 1, 2), size).rgb.astype(np.float64)
    K = scale_intrinsics(engine.subject.meta.K, engine.subject.meta.size, size)
    region = np.zeros((size, size), np.uint8)
    for alphas in ((1, 1, 1), (1, 1, 2)):
        lips = engine.landmarks(frame, alphas).astype(np.float64)[48:60]
        outline = project_head_points(K, track.pose[frame], lips)
        cv2.fillPoly(region, [np.round(outline).astype(np.int32)], 1)
    mouth = cv2.dilate(region, np.ones((5, 5), np.uint8)) > 0
    ref = int(track.ref_index[frame])
    face = (engine.subject.load_mask(ref) & MASK_FACE) > 0
    eyes = project_head_points(K, track.pose[frame], engine.landmarks(frame)[36:48])
    upper = face.copy()
    upper[int(eyes[:, 1].max()) + 2 :] = False
    assert mouth.sum() > 50 and upper.sum() > 500
    diff = np.abs(wide - base).mean(axis=2)
    mouth_change, upper_change = diff[mouth].mean(), diff[upper].mean()
    assert mouth_change > 5.0, f"α3 = 2 barely changed the refined mouth ({mouth_change:.2f})"
    assert upper_change < 1.5, f"α3 = 2 changed the refined upper face ({upper_change:.2f})"


def test_export_workers_take_the_engine_path(engine, trained: tuple[Path, list]) -> None:
    """A parallel export's workers open the subject with or without its refiner, as the
    exporting engine was opened."""
    from talkstudio.core.engine import Engine
    from talkstudio.core.parallel_export import RenderSpec, _open_engine

    plain = Engine.open(trained[0], device="cpu", refine=False)
    for source, refined in ((engine, True), (plain, False)):
        spec = RenderSpec.of(source, {}, 64)
        assert spec.refine is refined
        assert (_open_engine(spec).refiner is not None) is refined


def _no_torso(demo_subject: Path, where: Path) -> Path:
    root = where / "demo"
    shutil.copytree(demo_subject, root)
    shutil.rmtree(Subject.open(root).model_dir("torso"))
    return root


def test_torso_plate_recomposes_the_torso_frame(demo_subject: Path) -> None:
    """Compositor.plate is the frame without its head; over it an untrained refiner ("torso")
    gives exactly the torso's frame at full size around the upsampled head: today's path with
    the background kept sharp."""
    from talkstudio.core.head import HeadModel
    from talkstudio.core.refiner.inputs import render_inputs
    from talkstudio.core.refiner.net import upsample
    from talkstudio.core.torso.compose import Compositor

    subject = Subject.open(demo_subject)
    compositor = Compositor.load(subject.model_dir("torso"))
    head = HeadModel.load(subject.model_dir("head"))
    x = render_inputs(head, subject, 4, 128)[None]  # [1, 5, 128, 128]
    background = torch.from_numpy(subject.load_background()).permute(2, 0, 1).float() / 255.0
    up = upsample(x[:, :4], 2).clamp(0, 1)
    frame = compositor(background, up[:, :3], up[:, 3:])
    plate = compositor.plate(background, up[:, :3], up[:, 3:])
    torch.testing.assert_close(
        (up[:, :3] + (1 - up[:, 3:]) * plate).clamp(0, 1), frame, atol=2e-6, rtol=0
    )
    person = (up[0, 3] < 0.01) & (torch.from_numpy(subject.load_mask(4) > 0))  # the body
    assert float((plate[0] - background).abs().amax(dim=0)[person].mean()) > 0.01  # completed
    refiner = Refiner(
        RefinerNet(TINY.replace(scale=2, plate="torso")), 128, background, compositor=compositor
    )
    torch.testing.assert_close(refiner(x), frame, atol=2e-6, rtol=0)
    with pytest.raises(CheckpointError, match="needs the torso"):
        Refiner(RefinerNet(TINY.replace(scale=2, plate="torso")), 128, background)


def test_torso_plate_trains_and_auto_chooses(demo_subject: Path, tmp_path: Path) -> None:
    """plate "torso" trains over each frame's torso completion and loads with its torso;
    "auto" records the plate it chose and keeps it when resumed; without a torso "torso" is
    refused and "auto" falls back to the mean frame."""
    from talkstudio.core.engine import Engine

    root = tmp_path / "demo"
    shutil.copytree(demo_subject, root)
    cfg = TINY.replace(steps=4, cache_frames=3, checkpoint_every=2, preview_every=2)
    records: list = []
    run_job(train_refiner(root, cfg.replace(plate="auto")), records.append)
    chosen = [r.message for r in records if r.message.startswith("plate: ")]
    assert len(chosen) == 1 and "over the torso" in chosen[0], chosen
    folder = Subject.open(root).model_dir("refiner")
    _, raw = load_model(folder, "refiner")
    assert raw["config"]["plate"] in ("mean", "torso")
    picked = raw["config"]["plate"]
    torso_db, mean_db = (float(v) for v in re.findall(r"([\d.]+) dB", chosen[0]))
    assert picked == ("torso" if torso_db >= mean_db + TORSO_MARGIN_DB else "mean"), chosen
    again = list(train_refiner(root, cfg.replace(plate="auto", steps=6)))
    assert not any(r.message.startswith("plate: ") for r in again)  # resumed, not re-chosen
    _, raw = load_model(folder, "refiner")
    assert raw["config"]["plate"] == picked and raw["meta"]["step"] == 6

    shutil.rmtree(folder)
    run_job(train_refiner(root, cfg.replace(plate="torso")))
    refiner = Refiner.load(folder)
    assert refiner.compositor is not None
    engine = Engine.open(root, device="cpu")
    assert engine.render(2, (1, 1, 1), 256).rgb.shape == (256, 256, 3)
    shutil.rmtree(Subject.open(root).model_dir("torso"))  # a refiner over a torso now gone
    with pytest.raises(CheckpointError, match="train torso"):
        Refiner.load(folder)

    bare = _no_torso(demo_subject, tmp_path / "bare")
    with pytest.raises(CheckpointError, match="train torso"):
        run_job(train_refiner(bare, cfg.replace(plate="torso")))
    records.clear()
    run_job(train_refiner(bare, cfg.replace(plate="auto")), records.append)
    assert any("no trained torso" in r.message for r in records)
    _, raw = load_model(Subject.open(bare).model_dir("refiner"), "refiner")
    assert raw["config"]["plate"] == "mean"
