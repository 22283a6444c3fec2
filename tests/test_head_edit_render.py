"""The edit-aware re-render equals a full re-render and touches only the reachable rays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkstudio.core.geometry import default_intrinsics, rotation_from_euler
from talkstudio.core.head.edit_render import EditRenderer
from talkstudio.core.head.encoding import HashGridConfig
from talkstudio.core.head.field import HeadField
from talkstudio.core.head.landmark_encoding import LandmarkEncoding
from talkstudio.core.head.occupancy import OccupancyGrid
from talkstudio.core.head.renderer import MarchSettings, render_image
from talkstudio.core.landmarks import LEFT_EYE, MOUTH

BBOX = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Many small tensor ops: on a shared, loaded CPU one thread is fastest."""
    torch.set_num_threads(1)


def _setup(kind: str = "gaussian"):
    torch.manual_seed(0)
    grid_cfg = HashGridConfig(
        levels=6, log2_table_size=12, max_resolution=64, implementation="torch"
    )
    field = HeadField(BBOX, grid_cfg, LandmarkEncoding(kind, scale_init=0.06))  # type: ignore[arg-type]
    with torch.no_grad():
        field.grid.params.normal_(0.0, 1.0)
        field.sigma_in.code_weight.mul_(1000.0)  # landmarks matter a lot
        field.sigma_net[-1].bias[0] = 1.5  # dense enough for rays to terminate
    grid = OccupancyGrid(BBOX, 24)
    grid.update(lambda x: 10.0 * (x.norm(dim=-1) < 0.7).float(), threshold=1.0, jitter=False)
    # Landmarks spread over the front of the ball (z < 0 faces the camera).
    g = torch.Generator().manual_seed(1)
    ang = torch.rand(68, 2, generator=g) * torch.tensor([1.6, 1.6]) - 0.8
    # Mouth and left eye clustered where a face has them.
    ang[list(MOUTH)] = torch.tensor([0.0, 0.45]) + 0.25 * (torch.rand(20, 2, generator=g) - 0.5)
    ang[list(LEFT_EYE)] = torch.tensor([0.35, -0.3]) + 0.15 * (torch.rand(6, 2, generator=g) - 0.5)
    lms = torch.stack([ang[:, 0].sin(), ang[:, 1].sin(), -torch.ones(68)], -1)
    lms = 0.62 * lms / lms.norm(dim=-1, keepdim=True)
    pose = np.eye(4)
    pose[:3, :3] = rotation_from_euler(0.05, 0.1, 0.0)
    pose[:3, 3] = [0.0, 0.0, 4.0]
    return field, grid, lms, pose


SETTINGS = MarchSettings(step=0.02, stop=1e-4, chunk=8)


def _renderers(bg_seed: int):
    """(a full render of given landmarks, an edit renderer, the landmarks): the test scene at 48²."""
    field, grid, lms, pose = _setup()
    size = 48
    K = default_intrinsics(size)
    bg = torch.rand(size, size, 3, generator=torch.Generator().manual_seed(bg_seed))

    def full(landmarks: torch.Tensor):
        return render_image(field, grid, K, pose, landmarks, bg, SETTINGS)

    return full, EditRenderer(field, grid, K, pose, bg, SETTINGS), lms


@pytest.mark.parametrize("group", [MOUTH, LEFT_EYE])
def test_edit_render_equals_full_render(group: tuple[int, ...]) -> None:
    full, editor, lms = _renderers(2)
    first = editor.render(lms)
    full_before = full(lms)
    torch.testing.assert_close(first.rgb, full_before.rgb, atol=1e-5, rtol=0)
    total_rays = editor.last_rays

    edited = lms.clone()
    idx = list(group)
    edited[idx] += torch.tensor([0.0, 0.06, 0.0])
    fast = editor.render(edited)
    full_after = full(edited)
    torch.testing.assert_close(fast.rgb, full_after.rgb, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.opacity, full_after.opacity, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.depth, full_after.depth, atol=1e-4, rtol=0)
    # The edit changed the picture, and only a part of the rays was marched again.
    assert float((full_after.rgb - full_before.rgb).abs().max()) > 0.03
    assert 0 < editor.last_rays < 0.5 * total_rays
    # Going back to the original landmarks gives the original image again.
    back = editor.render(lms)
    torch.testing.assert_close(back.rgb, full_before.rgb, atol=1e-5, rtol=0)
    assert editor.render(lms) is not None and editor.last_rays == 0


def test_per_frame_encoding_re_renders_everything() -> None:
    field, grid, lms, pose = _setup("mlp")
    size = 24
    K = default_intrinsics(size)
    bg = torch.zeros(size, size, 3)
    settings = MarchSettings(step=0.04, stop=1e-4, chunk=8)
    editor = EditRenderer(field, grid, K, pose, bg, settings)
    editor.render(lms)
    total = editor.last_rays
    edited = lms.clone()
    edited[60] += 0.01
    fast = editor.render(edited)
    assert editor.last_rays == total
    full = render_image(field, grid, K, pose, edited, bg, settings)
    torch.testing.assert_close(fast.rgb, full.rgb, atol=1e-5, rtol=0)


def test_fast_bake_equals_brute_force_maximum() -> None:
    from talkstudio.core.head import HeadConfig, HeadModel

    torch.manual_seed(4)
    cfg = HeadConfig(
        grid_levels=4,
        grid_log2_table_size=10,
        grid_max_resolution=32,
        grid_implementation="torch",
        occupancy_resolution=20,
        gaussian_scale=0.08,
    )
    model = HeadModel(cfg, BBOX.numpy())
    with torch.no_grad():
        model.field.grid.params.normal_(0.0, 1.0)
        model.field.sigma_in.code_weight.mul_(1000.0)
    _, _, lms, _ = _setup()
    conds = torch.stack([lms, lms + 0.1, lms * 0.8])  # [3, 68, 3]
    rots = torch.eye(3).expand(3, 3, 3)
    model.grid.hull[:3] = False  # a carved part stays empty
    thr = 5.0
    model.bake_grid(conds, rots, thr)
    fast = model.grid.density.clone()
    fns = [model.density_fn(c, r) for c, r in zip(conds, rots)]
    fns.append(model.density_fn(torch.full((68, 3), 1e4), rots[0]))  # landmark-free field
    model.grid.bake(fns, thr)
    torch.testing.assert_close(fast, model.grid.density, rtol=1e-5, atol=1e-5)
    assert not bool(fast[:3].any())
    brute = model.grid.density.clone()
    model.grid.bake(fns[:3], thr)
    assert bool((brute >= model.grid.density - 1e-5).all())  # never fewer occupied cells
    assert bool((brute != model.grid.density).any())  # and the conditions do matter here


@pytest.mark.parametrize("shared_origin", [True, False])
def test_ray_ellipsoid_test_matches_dense_points(shared_origin: bool) -> None:
    from talkstudio.core.head.edit_render import ray_ellipsoid_spans, segment_hits
    from talkstudio.core.head.landmark_encoding import quaternion_to_rotation

    g = torch.Generator().manual_seed(5)
    origins = torch.tensor([0.0, 0.0, -4.0]).expand(3000, 3)
    if not shared_origin:  # rays from many points, as an orthographic camera casts them
        origins = origins + torch.randn(3000, 3, generator=g) * torch.tensor([0.2, 0.2, 0.05])
    dirs = torch.randn(3000, 3, generator=g) * 0.15 + torch.tensor([0.0, 0.0, 1.0])
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    centres = torch.randn(4, 3, generator=g) * 0.3
    rots = quaternion_to_rotation(torch.randn(4, 4, generator=g))
    axes = torch.rand(4, 3, generator=g) * 0.3 + 0.05
    t_min = torch.full((3000,), 3.0)
    t_max = 3.0 + 2.0 * torch.rand(3000, generator=g)
    cand, enter, leave = ray_ellipsoid_spans(origins, dirs, centres, rots, axes)
    hit = segment_hits(cand, enter, leave, t_min, t_max, len(origins))
    ts = torch.linspace(0, 1, 2001)
    t = t_min[:, None] + ts * (t_max - t_min)[:, None]  # [R, 2001]
    pts = origins[:, None] + t[..., None] * dirs[:, None]
    inside = torch.zeros(3000, dtype=torch.bool)
    for c, r, a in zip(centres, rots, axes):
        inside |= ((((pts - c) @ r) / a).norm(dim=-1) < 1).any(dim=1)
    assert 100 < int(hit.sum()) < 2900
    assert torch.equal(hit, inside) or int((hit != inside).sum()) <= 3  # grazing rays only


def test_a_sequence_of_edits_stays_equal_to_full_renders() -> None:
    """Field values cached across edits must be refreshed wherever any edit moved a landmark,
    also on rays an earlier edit did not re-march."""
    full, editor, lms = _renderers(3)
    editor.render(lms)
    full_samples = editor.last_evaluated
    moves = [
        (MOUTH, (0.0, 0.06, 0.0)),
        (LEFT_EYE, (0.0, -0.04, 0.0)),
        (MOUTH, (0.03, -0.08, 0.02)),
        (LEFT_EYE, (0.0, 0.04, 0.0)),
        (MOUTH, (-0.03, 0.02, -0.02)),
    ]
    current = lms.clone()
    for group, delta in moves:
        current = current.clone()
        current[list(group)] += torch.tensor(delta)
        fast = editor.render(current)
        full_now = full(current)
        torch.testing.assert_close(fast.rgb, full_now.rgb, atol=1e-5, rtol=0)
        torch.testing.assert_close(fast.opacity, full_now.opacity, atol=1e-5, rtol=0)
        # Only samples near the moved landmarks go through the field again.
        assert 0 < editor.last_evaluated < 0.5 * full_samples
    back = editor.render(lms)
    full_before = full(lms)
    torch.testing.assert_close(back.rgb, full_before.rgb, atol=1e-5, rtol=0)


def test_slider_drags_keep_the_unmoved_landmarks_part_of_the_first_layer() -> None:
    """Dragging α3 moves the mouth landmarks only: after the first edit the other landmarks'
    part of the first density layer is reused, and every frame still equals a full render."""
    full, editor, lms = _renderers(4)
    editor.render(lms)
    mouth = list(MOUTH)
    # The first layer is summed in another order: float rounding of its large values here
    # (the code weights are scaled up a thousandfold) reaches a few 1e-5 in colour.
    tol = {"atol": 2e-4, "rtol": 0}
    centre = lms[mouth].mean(0)
    kept = None
    for scale in (1.6, 2.0, 0.6, 1.3):
        current = lms.clone()
        current[mouth] = centre + scale * (lms[mouth] - centre)
        fast = editor.render(current)
        torch.testing.assert_close(fast.rgb, full(current).rgb, **tol)
        assert editor.rest_left_out is not None
        assert editor.rest_left_out.nonzero().flatten().tolist() == sorted(mouth)
        kept = kept or editor.rest
        assert editor.rest is kept and editor.rest.size > 0  # reused, not rebuilt
    # Half the mouth moving is still inside the left-out part; an eye is not.
    half = lms.clone()
    half[mouth[:10]] += torch.tensor([0.0, 0.03, 0.0])
    torch.testing.assert_close(editor.render(half).rgb, full(half).rgb, **tol)
    assert editor.rest is kept
    eye = half.clone()
    eye[list(LEFT_EYE)] += torch.tensor([0.0, -0.04, 0.0])
    torch.testing.assert_close(editor.render(eye).rgb, full(eye).rgb, **tol)
    assert editor.rest is not kept


def test_first_layer_parts_add_up_to_the_whole_layer() -> None:
    field, _, lms, pose = _setup()
    x = torch.rand(4000, 3, generator=torch.Generator().manual_seed(6)) * 1.4 - 0.7
    rot = torch.as_tensor(pose[:3, :3], dtype=torch.float32)
    feats = field.position_features(x)
    with torch.no_grad():
        whole = field.sigma_in(feats, field.encoding(x, lms, rot))
        part = torch.zeros(68, dtype=torch.bool)
        part[list(MOUTH)] = True
        split = field.first_layer(x, lms, rot, ~part, feats) + field.first_layer(x, lms, rot, part)
        mouth_only = field.first_layer(x, lms, rot, part)
    torch.testing.assert_close(split, whole, atol=1e-4, rtol=1e-5)
    assert float(mouth_only.abs().amax()) > 1.0  # the mouth's part is not empty here
