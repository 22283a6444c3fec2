"""Rays, occupancy grid and volume rendering against analytic scenes; a tiny field fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from talkstudio.core.geometry import default_intrinsics, project_head_points, rotation_from_euler
from talkstudio.core.head.encoding import HashGridConfig
from talkstudio.core.head.field import HeadField
from talkstudio.core.head.landmark_encoding import LandmarkEncoding
from talkstudio.core.head.occupancy import OccupancyGrid
from talkstudio.core.head.rays import camera_rays, pixel_centers, ray_box
from talkstudio.core.head.renderer import MarchSettings, march, render_image, sample_rays

BBOX = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Many small tensor ops: on a shared, loaded CPU one thread is fastest."""
    torch.set_num_threads(1)


def _pose(pitch: float = 0.0, yaw: float = 0.0, dist: float = 5.0) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = rotation_from_euler(pitch, yaw, 0.0)
    pose[:3, 3] = [0.0, 0.0, dist]
    return pose


def _sphere(radius: float = 0.6, sigma: float = 3.0):
    """Evaluate for a ball of constant density and colour (x-dependent red channel)."""

    def make(origins, dirs, samples):
        def evaluate(ids):
            ray = samples.ray[ids]
            x = origins[ray] + samples.t[ids, None] * dirs[ray]
            inside = (x.norm(dim=-1) < radius).float()
            rgb = torch.stack(
                [0.5 + 0.4 * x[:, 0], torch.full_like(inside, 0.2), torch.full_like(inside, 0.7)],
                -1,
            )
            return sigma * inside, rgb

        return evaluate

    return make


def test_rays_pass_through_their_pixels() -> None:
    K = default_intrinsics(64)
    pose = _pose(0.2, -0.3)
    uv = pixel_centers(64)[::97]
    origins, dirs = camera_rays(K, pose, uv)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(len(uv)))
    pts = (origins + 3.7 * dirs).numpy().astype(np.float64)
    back = project_head_points(K, pose, pts)
    np.testing.assert_allclose(back, uv.numpy(), atol=1e-3)
    # The camera sits at -R^T t.
    np.testing.assert_allclose(origins[0].numpy(), -pose[:3, :3].T @ pose[:3, 3], atol=1e-5)
    assert pixel_centers(2).tolist() == [[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5]]


def test_ray_box_entry_and_exit() -> None:
    o = torch.tensor([[0.0, 0.0, -5.0], [0.0, 3.0, -5.0], [0.0, 0.0, 0.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    near, far = ray_box(o, d, BBOX)
    torch.testing.assert_close(near, torch.tensor([4.0, near[1].item(), 0.0]))
    torch.testing.assert_close(far, torch.tensor([6.0, near[1].item(), 1.0]))
    assert near[1] == far[1]  # a miss is an empty interval


@pytest.mark.parametrize("stop", [0.0, 1e-4])
def test_opacity_of_a_constant_density_ball_is_analytic(stop: float) -> None:
    radius, sigma = 0.6, 3.0
    K, pose = default_intrinsics(48), _pose()
    origins, dirs = camera_rays(K, pose, pixel_centers(48))
    s = sample_rays(origins, dirs, BBOX, 0.002, None)
    out = march(_sphere(radius, sigma)(origins, dirs, s), s, 0.002, stop=stop, chunk=64)
    # Chord length through the ball of a ray at distance b from the centre: 2 sqrt(r^2 - b^2).
    cam = origins[0]
    b = torch.linalg.cross(dirs, (-cam).expand_as(dirs)).norm(dim=-1)
    chord = 2 * torch.sqrt((radius**2 - b**2).clamp_min(0))
    want = 1 - torch.exp(-sigma * chord)
    torch.testing.assert_close(out.opacity, want, atol=0.012, rtol=0)
    # Depth of rays through the centre: expected distance of the exponential hit distribution.
    centre = b.argmin()
    t0 = (cam.norm() - radius).item()
    lam, L = sigma, 2 * radius
    exp_t = t0 + (1 / lam - L * math.exp(-lam * L) / (1 - math.exp(-lam * L)))
    assert out.depth[centre].item() == pytest.approx(exp_t, abs=0.01)
    # ... and its variance: the exponential distribution truncated to the chord.
    tt = np.linspace(0.0, L, 200_001)
    p = lam * np.exp(-lam * tt)
    p /= np.trapz(p, tt)
    var = np.trapz(p * tt**2, tt) - np.trapz(p * tt, tt) ** 2
    assert out.depth_var[centre].item() == pytest.approx(var, rel=0.03)
    assert float(out.depth_var[out.opacity == 0].abs().max()) == 0.0


def test_occupancy_grid_skips_empty_space_without_changing_the_image() -> None:
    radius = 0.5
    K, pose = default_intrinsics(48), _pose(0.1, 0.2)
    origins, dirs = camera_rays(K, pose, pixel_centers(48))
    grid = OccupancyGrid(BBOX, resolution=32)
    grid.update(lambda x: 3.0 * (x.norm(dim=-1) < radius).float(), threshold=0.5, jitter=False)
    assert 0.02 < grid.occupancy < 0.15
    dense = sample_rays(origins, dirs, BBOX, 0.01, None)
    sparse = sample_rays(origins, dirs, BBOX, 0.01, grid)
    make = _sphere(radius)
    a = march(make(origins, dirs, dense), dense, 0.01, stop=0.0)
    b = march(make(origins, dirs, sparse), sparse, 0.01, stop=1e-4, chunk=8)
    torch.testing.assert_close(b.rgb, a.rgb, atol=2e-4, rtol=0)
    torch.testing.assert_close(b.opacity, a.opacity, atol=2e-4, rtol=0)
    assert b.evaluated * 5 < a.evaluated


def test_visual_hull_carving_keeps_the_object() -> None:
    radius = 0.5
    K = default_intrinsics(64)
    poses = [_pose(0.0, y) for y in (-0.4, 0.0, 0.4)] + [_pose(0.4, 0.0)]
    masks = []
    for pose in poses:
        origins, dirs = camera_rays(K, pose, pixel_centers(64))
        cam = origins[0]
        b = torch.linalg.cross(dirs, (-cam).expand_as(dirs)).norm(dim=-1)
        masks.append((b < radius).reshape(64, 64).numpy())
    grid = OccupancyGrid(BBOX, resolution=24)
    grid.carve(masks, K, poses)
    centers = grid.cell_centers()
    hull = grid.hull.reshape(-1)
    assert bool(hull[centers.norm(dim=-1) < radius].all())  # nothing of the ball is carved
    corners = (centers.abs() > 0.8).sum(-1) >= 2
    assert not bool(hull[corners].any())  # far corners are gone
    assert 0.1 < hull.float().mean() < 0.6


def test_tiny_field_learns_a_coloured_ball() -> None:
    """End to end through hash grid, landmark code, MLPs and the march: PSNR on a held-out view."""
    torch.manual_seed(0)
    size, radius = 32, 0.55
    K = default_intrinsics(size, focal=40.0)
    views = [_pose(p, y) for p in (-0.3, 0.0, 0.3) for y in (-0.5, -0.15, 0.2, 0.5)]
    held_out = _pose(0.15, 0.0)

    def truth(pose):
        origins, dirs = camera_rays(K, pose, pixel_centers(size))
        s = sample_rays(origins, dirs, BBOX, 0.01, None)
        out = march(_sphere(radius, 20.0)(origins, dirs, s), s, 0.01, stop=1e-4, chunk=64)
        return origins, dirs, out.rgb + (1 - out.opacity[:, None]) * 1.0

    data = [truth(p) for p in views]
    grid_cfg = HashGridConfig(
        levels=8, log2_table_size=14, max_resolution=128, implementation="torch"
    )
    enc = LandmarkEncoding("gaussian")
    field = HeadField(BBOX, grid_cfg, enc)
    lms = torch.full((68, 3), 5.0)  # no landmark near the ball: a static scene
    rot = torch.eye(3)
    opt = torch.optim.Adam(
        [
            {"params": field.grid.parameters(), "lr": 1e-2},
            {
                "params": [p for n, p in field.named_parameters() if not n.startswith("grid")],
                "lr": 5e-3,
            },
        ],
        eps=1e-15,
    )
    settings = MarchSettings(step=0.04, stop=1e-3, chunk=16)
    from talkstudio.core.head.renderer import render_rays

    for it in range(100):
        origins, dirs, target = data[it % len(data)]
        pick = torch.randint(0, len(origins), (256,))
        out = render_rays(field, None, origins[pick], dirs[pick], lms, rot, settings, jitter=True)
        pred = out.rgb + (1 - out.opacity[:, None])
        loss = torch.nn.functional.smooth_l1_loss(pred, target[pick], beta=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    origins, dirs, target = truth(held_out)
    bg = torch.ones(size, size, 3)
    img = render_image(field, None, K, held_out, lms, bg, settings)
    mse = float(((img.rgb.reshape(-1, 3) - target) ** 2).mean())
    psnr = -10 * math.log10(mse)
    assert psnr > 24.0, psnr


def test_chunked_sampling_equals_one_pass() -> None:
    from talkstudio.core.head.renderer import sample_rays_chunked

    K, pose = default_intrinsics(40), _pose(0.1, 0.2)
    origins, dirs = camera_rays(K, pose, pixel_centers(40))
    grid = OccupancyGrid(BBOX, resolution=16)
    grid.update(lambda x: 3.0 * (x.norm(dim=-1) < 0.6).float(), threshold=0.5, jitter=False)
    whole = sample_rays(origins, dirs, BBOX, 0.02, grid)
    parts = sample_rays_chunked(origins, dirs, BBOX, 0.02, grid, ray_chunk=333)
    for a, b in (
        (whole.t, parts.t),
        (whole.ray, parts.ray),
        (whole.start, parts.start),
        (whole.count, parts.count),
    ):
        assert torch.equal(a, b)
