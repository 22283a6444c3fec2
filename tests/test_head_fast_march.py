"""The fast inference render (core/head/fast_march.py, the sparse landmark code) against the
reference path it replaces: same samples, same image up to far less than one 8-bit level."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from talkstudio.core.geometry import default_intrinsics, rotation_from_euler, scale_intrinsics
from talkstudio.core.head.encoding import HashGridConfig
from talkstudio.core.head.fast_march import march_lazy, occupied_box
from talkstudio.core.head.field import ConditionedLinear, HeadField
from talkstudio.core.head.landmark_encoding import LandmarkEncoding
from talkstudio.core.head.occupancy import OccupancyGrid
from talkstudio.core.head.rays import camera_rays, pixel_centers
from talkstudio.core.head.renderer import MarchSettings, render_rays, sample_rays

BBOX = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
LEVEL = 1.0 / 255.0


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _pose(pitch: float, yaw: float, dist: float = 5.0) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = rotation_from_euler(pitch, yaw, 0.0)
    pose[:3, 3] = [0.0, 0.0, dist]
    return pose


def _ball_grid() -> OccupancyGrid:
    grid = OccupancyGrid(BBOX, resolution=16)
    grid.update(lambda x: 3.0 * (x.norm(dim=-1) < 0.6).float(), threshold=0.5, jitter=False)
    return grid


def test_occupied_box_holds_every_occupied_cell() -> None:
    grid = _ball_grid()
    box = occupied_box(grid, BBOX)
    assert box is not None
    centres = grid.cell_centers()[grid.bitfield.reshape(-1)]
    assert bool(((centres > box[0]) & (centres < box[1])).all())
    assert float((box[1] - box[0]).max()) < 2.0  # tighter than the head box
    grid.bitfield.zero_()
    assert occupied_box(grid, BBOX) is None
    assert torch.equal(occupied_box(None, BBOX), BBOX)


def _scene(seed: int = 0) -> tuple[HeadField, torch.Tensor, torch.Tensor]:
    """A randomly initialised field (dense enough to stop rays) with landmarks inside it."""
    torch.manual_seed(seed)
    grid_cfg = HashGridConfig(levels=4, features=2, log2_table_size=10, max_resolution=64)
    field = HeadField(BBOX, grid_cfg, LandmarkEncoding("gaussian"), width=32, density_bias=2.0)
    with torch.no_grad():
        field.grid.params.uniform_(-1.0, 1.0)
    lms = torch.randn(68, 3) * 0.3
    rot = torch.tensor(rotation_from_euler(0.1, -0.2, 0.0), dtype=torch.float32)
    return field, lms, rot


@pytest.mark.parametrize("use_grid", [True, False])
def test_lazy_march_matches_the_reference_march(use_grid: bool) -> None:
    field, lms, rot = _scene()
    grid = _ball_grid() if use_grid else None
    K, pose = default_intrinsics(40), _pose(0.1, 0.2)
    origins, dirs = camera_rays(K, pose, pixel_centers(40))
    settings = MarchSettings(step=0.04, stop=1e-4, chunk=4)
    with torch.no_grad():
        ref = render_rays(field, grid, origins, dirs, lms, rot, settings)
        fast = render_rays(
            field, grid, origins, dirs, lms, rot, dataclasses.replace(settings, fast=True)
        )
        exact = march_lazy(
            field, grid, origins, dirs, lms, rot, dataclasses.replace(settings, min_weight=0.0)
        )
    assert float(ref.opacity.max()) > 0.9  # rays do stop inside the field
    # The same samples: every ray evaluates the reference's first samples, in order.
    samples = sample_rays(origins, dirs, BBOX, settings.step, grid)
    assert torch.equal(exact.steps > 0, samples.count > 0)
    assert bool((exact.steps <= samples.count).all())
    for out in (fast, exact):
        torch.testing.assert_close(out.opacity, ref.opacity, rtol=0, atol=2e-4)
        torch.testing.assert_close(out.rgb, ref.rgb, rtol=0, atol=0.05 * LEVEL)
        hit = ref.opacity > 0.5
        torch.testing.assert_close(out.depth[hit], ref.depth[hit], rtol=0, atol=1e-3)
    assert fast.evaluated <= ref.evaluated + len(origins)


def test_training_and_jittered_renders_keep_the_reference_path() -> None:
    field, lms, rot = _scene(1)
    K, pose = default_intrinsics(24), _pose(0.0, 0.3)
    origins, dirs = camera_rays(K, pose, pixel_centers(24))
    settings = MarchSettings(step=0.04, fast=True)
    torch.manual_seed(3)
    a = render_rays(field, None, origins, dirs, lms, rot, settings, jitter=True)
    torch.manual_seed(3)
    b = render_rays(
        field, None, origins, dirs, lms, rot, dataclasses.replace(settings, fast=False), True
    )
    assert torch.equal(a.rgb, b.rgb) and a.rgb.requires_grad


def test_sparse_landmark_code_equals_the_pair_list() -> None:
    g = torch.Generator().manual_seed(0)
    lms = torch.randn(68, 3, generator=g) * 0.3
    near = lms[torch.randint(0, 68, (800,), generator=g)] + 0.08 * torch.randn(800, 3, generator=g)
    x = torch.cat([near, torch.rand(400, 3, generator=g) * 4 - 2])
    rot = torch.tensor(rotation_from_euler(0.1, -0.3, 0.05), dtype=torch.float32)
    enc = LandmarkEncoding("gaussian")
    with torch.no_grad():
        enc.log_scale.add_(torch.randn(68, 3, generator=g) * 0.2)
    layer = ConditionedLinear(32, enc, 16)
    feats = torch.randn(len(x), 32, generator=g)
    with torch.no_grad():
        pairs, sparse = enc(x, lms, rot), enc(x, lms, rot, sparse=True)
        assert sparse.sparse is not None and sparse.sparse.layout == torch.sparse_csr
        assert int(sparse.sparse.values().numel()) > 0
        torch.testing.assert_close(sparse.dense(68), pairs.dense(68), rtol=0, atol=0)
        torch.testing.assert_close(layer(feats, sparse), layer(feats, pairs), rtol=1e-5, atol=1e-5)


def test_fast_final_render_of_the_demo_head_matches_the_reference(demo_subject: Path) -> None:
    """The demo head on its own occupancy grid and landmarks: the fast path's image equals the
    reference's to a small fraction of one 8-bit level, with fewer samples evaluated."""
    from talkstudio.core.head.model import HeadModel
    from talkstudio.core.subject import Subject

    subject = Subject.open(demo_subject)
    model = HeadModel.load(subject.model_dir("head"))
    frame = subject.meta.train_frames  # first validation frame
    size = 64
    K = scale_intrinsics(subject.meta.K, subject.meta.size, size)
    lms = subject.tracks.lm_world[frame]
    bg = torch.rand(size, size, 3, generator=torch.Generator().manual_seed(0))
    images = {}
    for fast in (False, True):
        model.config.fast_render = fast
        images[fast] = model.render(K, subject.tracks.pose[frame], lms, bg)
    ref, fast_img = images[False], images[True]
    assert float(ref.opacity.max()) > 0.9
    diff = (fast_img.rgb - ref.rgb).abs()
    assert float(diff.max()) < 0.25 * LEVEL and float(diff.mean()) < 0.01 * LEVEL
    torch.testing.assert_close(fast_img.opacity, ref.opacity, rtol=0, atol=2e-4)
