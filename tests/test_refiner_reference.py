"""The refiner's mouth reference: the nearest training mouth, aligned onto the wanted lips, read
by the refiner as four more guide channels (RefinerConfig.mouth_reference)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from talkstudio.core.checkpoint import load_model
from talkstudio.core.landmarks import MOUTH
from talkstudio.core.progress import run_job
from talkstudio.core.refiner import RefinerConfig, RefinerNet, train_refiner
from talkstudio.core.refiner.net import colour_matched
from talkstudio.core.refiner.reference import (
    EXCLUDE_FRAMES,
    SWITCH_COST,
    MouthBank,
    MouthReference,
    aligned_mouth,
    lip_points,
    lip_warp,
    mouth_shape,
    similarity,
)
from talkstudio.core.subject import Subject

TINY = RefinerConfig(
    base_width=8,
    depth=2,
    dcn_levels=(1,),
    up_width=8,
    steps=12,
    batch_size=2,
    crop_size=64,
    cache_frames=40,
    checkpoint_every=6,
    preview_every=6,
    mouth_reference=True,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(100, 200, (20, 2))
    angle, scale, shift = 0.3, 1.4, np.array([12.0, -7.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    M = similarity(src, dst)
    np.testing.assert_allclose(M[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(src @ M[:, :2].T + M[:, 2], dst, atol=1e-6)


def test_a_mouth_aligned_onto_itself_is_the_frame_inside_its_mask() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    lips = np.stack([48 + 14 * np.cos(np.linspace(0, 2 * np.pi, 20)), 60 + 5 * np.sin(
        np.linspace(0, 2 * np.pi, 20))], axis=1)  # fmt: skip
    ref = aligned_mouth(image, lips, lips)
    assert ref.shape == (96, 96, 4)
    mask = ref[..., 3]
    assert mask[60, 48] > 0.99 and mask[5, 5] == 0.0  # the mouth in, a far corner out
    inside = mask > 0.99
    colour = ref[..., :3][inside] / mask[inside][:, None]  # premultiplied by the mask
    np.testing.assert_allclose(colour, image[inside] / 255.0, atol=1e-5)
    # moved lips carry the picture along: the same mouth 10 px to the right
    moved = aligned_mouth(image, lips, lips + np.array([10.0, 0.0]))
    np.testing.assert_allclose(moved[60, 58, :3], image[60, 48] / 255.0, atol=1e-5)


def test_a_mouth_of_another_shape_is_bent_onto_the_wanted_lips() -> None:
    """The reference's lip points land on the wanted ones although the shapes differ (a
    similarity alone would keep its own opening), and far from the mouth it is the plain
    similarity."""
    size = 128
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    closed = np.stack([64 + 20 * np.cos(t), 70 + 6 * np.sin(t)], axis=1)
    opened = closed.copy()
    opened[:, 1] = 70 + 14 * np.sin(t)  # the same mouth open wider
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.dstack([2 * xx, 2 * yy, np.zeros_like(xx)]).astype(np.uint8)  # reads its place
    ref = aligned_mouth(image, opened, closed)
    for (x, y), (sx, sy) in zip(closed, opened, strict=True):
        col, row = round(float(x)), round(float(y))
        assert ref[row, col, 3] > 0.99
        read = ref[row, col, :2] * 255 / 2  # the reference pixel it shows
        assert np.abs(read - (sx + col - x, sy + (row - y) * 14 / 6)).max() < 1.0
    where = lip_warp(opened, closed, size)
    M = similarity(closed, opened)
    np.testing.assert_allclose(where[5, 5], M[:, :2] @ [5, 5] + M[:, 2], atol=1e-4)
    bent = np.abs(where - lip_warp(closed, closed, size)).max(axis=-1)
    assert bent[66, 64] > 0.5  # inside the mouth the map moved


def test_the_mouth_mask_stays_inside_both_faces() -> None:
    """With face outlines the reference's mask ends inside the wanted face and inside the
    source frame's face (as warped): a wide mouth region never brings the source's cheek edge
    or background along."""
    size = 128
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lips = np.stack([64 + 20 * np.cos(t), 80 + 6 * np.sin(t)], axis=1)
    image = np.full((size, size, 3), 200, np.uint8)
    u = np.linspace(0, 2 * np.pi, 27, endpoint=False)
    wide = np.stack([64 + 50 * np.cos(u), 64 + 60 * np.sin(u)], axis=1)  # a face around it all
    narrow = wide.copy()
    narrow[:, 0] = 64 + 26 * np.cos(u)  # a face hardly wider than the mouth
    plain = aligned_mouth(image, lips, lips)
    same = aligned_mouth(image, lips, lips, wide, wide)
    assert plain[80, 64, 3] > 0.99 and same[80, 64, 3] > 0.99  # the mouth itself stays
    np.testing.assert_allclose(same[70:90, 54:74], plain[70:90, 54:74], atol=1e-6)
    for src_face, dst_face in ((narrow, wide), (wide, narrow)):
        ref = aligned_mouth(image, lips, lips, src_face, dst_face)
        assert plain[80, 40, 3] > 0.5  # the plain mask reaches beyond the narrow face's edge
        assert ref[80, 36, 3] == 0.0 and ref[80, 92, 3] == 0.0  # outside the narrow face
        assert ref[80, 64, 3] > 0.9
        assert (ref[..., 3] <= plain[..., 3] + 1e-6).all()


@pytest.mark.parametrize("centre", [(150.0, 170.0), (30.0, 236.0)])  # in the frame; at its corner
def test_the_reference_computed_around_the_mouth_equals_the_whole_frames(centre) -> None:
    """aligned_mouth works only in mouth_box (a quarter of the frame here): inside it every value is
    the whole frame's computation, outside it the whole frame's is zero."""
    from talkstudio.core.refiner.reference import mouth_box

    size = 256
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    cx, cy = centre
    dst = np.stack([cx + 24 * np.cos(t), cy + 7 * np.sin(t)], axis=1)
    src = np.stack([128 + 30 * np.cos(t + 0.1), 120 + 12 * np.sin(t)], axis=1)  # open, larger
    u = np.linspace(0, 2 * np.pi, 27, endpoint=False)
    dst_face = np.stack([cx + 40 * np.cos(u), cy - 30 + 50 * np.sin(u)], axis=1)  # jaw near
    src_face = np.stack([128 + 90 * np.cos(u), 110 + 100 * np.sin(u)], axis=1)
    whole = aligned_mouth(image, src, dst, src_face, dst_face, box=(0, 0, size, size))
    near = aligned_mouth(image, src, dst, src_face, dst_face)
    x0, y0, x1, y1 = mouth_box(dst, size)
    assert (x1 - x0) * (y1 - y0) < 0.3 * size * size
    assert whole[..., 3].max() > 0.99 and whole[..., 3].min() == 0.0
    np.testing.assert_allclose(near, whole, atol=2e-6, rtol=0)
    np.testing.assert_allclose(
        lip_warp(src, dst, size, (x0, y0, x1, y1)), lip_warp(src, dst, size)[y0:y1, x0:x1]
    )


def test_the_bank_picks_the_nearest_mouth_and_skips_neighbours(demo_subject: Path) -> None:
    subject = Subject.open(demo_subject)
    frames = list(subject.steady_train_frames())
    bank = MouthBank.build(subject, frames)
    lms = np.asarray(subject.tracks.lm_world, np.float64)
    i = frames[len(frames) // 2]
    assert bank.nearest(lms[i]) == i  # its own mouth is the nearest
    other = bank.nearest(lms[i], exclude_near=i)
    assert abs(other - i) >= EXCLUDE_FRAMES
    # a mouth moved and turned in the head is the same shape: only the shape decides
    shifted = lms[i].copy()
    shifted[list(MOUTH)] += [0.05, -0.02, 0.01]
    assert bank.nearest(shifted) == i
    # and the reference lands on the frame's own lips (projected from its pose)
    maker = MouthReference(subject, bank)
    ref = maker(subject.tracks.pose[i], lms[i])
    pts = lip_points(subject, subject.tracks.pose[i], lms[i])
    cx, cy = np.round(pts.mean(axis=0)).astype(int)
    assert ref.shape[:2] == (subject.meta.size, subject.meta.size) and ref[cy, cx, 3] > 0.99
    far = np.abs(np.asarray(subject.tracks.lm2d[i])[list(MOUTH)] - pts).max()
    assert far < 4.0, "the projected lips should sit on the tracked ones"


def test_among_near_shapes_the_bank_prefers_a_mouth_it_need_not_magnify() -> None:
    rng = np.random.default_rng(3)
    lms = rng.normal(size=(68, 3))
    wanted = mouth_shape(lms)
    shapes = np.stack([wanted + 0.01 * k * rng.normal(size=wanted.shape) for k in range(1, 13)])
    radii = np.full(12, 10.0)
    radii[3] = 14.0  # the 4th nearest shape was filmed closer to the camera
    radii[11] = 30.0  # larger still, but too far in shape to be a candidate
    frames = 100 + EXCLUDE_FRAMES * np.arange(12)
    bank = MouthBank(frames, shapes, radii)
    assert bank.nearest(lms) == frames[0]  # shape alone
    assert bank.nearest(lms, radius=13.0) == frames[3]  # wanted lips larger than most
    assert bank.nearest(lms, radius=9.0) == frames[0]  # none needs magnifying: the nearest shape
    assert bank.nearest(lms, radius=40.0) == frames[3]  # all magnify: the least
    # a frame too near the refined one stays out, however large
    assert bank.nearest(lms, exclude_near=int(frames[3]), radius=13.0) == frames[0]


def test_a_planned_mouth_plays_on_through_the_video_where_single_picks_jump() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 20, 3))

    def lips(k: float) -> np.ndarray:  # landmarks whose lips move smoothly with k
        lm = np.zeros((68, 3))
        lm[list(MOUTH)] = a * np.cos(k / 4) + b * np.sin(k / 4)
        return lm

    # the same stretch of mouth motion filmed twice, frames 0-29 and 300-329, each take a little
    # off the wanted shapes, the one on even frames and the other on odd ones a little more
    exact = np.stack([mouth_shape(lips(k)) for k in range(30)])
    off = rng.normal(size=(2, 30, 60))
    off *= 0.02 / np.linalg.norm(off, axis=-1, keepdims=True)
    odd = np.arange(30) % 2 == 1
    first = exact + off[0] * np.where(odd, 1.05, 1.0)[:, None]
    again = exact + off[1] * np.where(odd, 1.0, 1.05)[:, None]
    frames = np.concatenate([np.arange(30), 300 + np.arange(30)])
    bank = MouthBank(frames, np.concatenate([first, again]), np.full(60, 10.0))
    wanted = np.stack([lips(5 + t) for t in range(16)])
    single = np.array([bank.nearest(lm) for lm in wanted])
    assert (np.diff(single // 300) != 0).sum() >= 3, "frame by frame, the pick hops between takes"
    path = bank.plan(wanted, np.full(16, 10.0))
    assert (np.diff(path) == 1).all(), "planned, the mouth plays one take on frame by frame"
    assert path[0] % 300 == 5
    # a mouth that changes for good jumps to the source that fits it
    still = np.stack([lips(5)] * 6 + [lips(20)] * 6)
    path = bank.plan(still, np.full(12, 10.0))
    assert path[0] % 300 == 5 and path[-1] % 300 == 20
    assert (np.diff(path) != 0).sum() == 1
    # and a lone frame gets its nearest shape
    assert bank.plan(wanted[:1], np.full(1, 10.0))[0] == single[0]
    assert SWITCH_COST > 0


def test_colour_matching_takes_the_light_of_the_guide_and_keeps_the_detail() -> None:
    s = 128
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    mask = (((xx - 64) ** 2 + (yy - 64) ** 2) < 40**2).float()[None, None]
    detail = 0.1 * ((xx // 2 + yy // 2) % 2).float()  # a fine checker: teeth and lip lines
    mouth = (0.2 + detail)[None, None].expand(1, 3, s, s)  # a dark mouth
    reference = torch.cat([mouth * mask, mask], dim=1)
    guide = torch.full((1, 3, s, s), 0.6)  # the render's lighter lips
    assert torch.equal(colour_matched(reference, guide, 0.0), reference)
    got = colour_matched(reference, guide, 30.0)
    assert torch.equal(got[:, 3:], mask)
    core = (((xx - 64) ** 2 + (yy - 64) ** 2) < 25**2)[None, None].expand(1, 3, s, s)
    colour = got[:, :3][core]
    assert abs(float(colour.mean()) - 0.6) < 0.02  # the guide's level
    assert float(colour.std()) == pytest.approx(float(mouth[core].std()), rel=0.1)  # detail kept
    assert float(got[:, :3][(mask == 0).expand(1, 3, s, s)].abs().max()) == 0.0  # none outside


def test_the_net_reads_the_reference_and_keeps_the_plate_outside_the_blend() -> None:
    torch.manual_seed(0)
    net = RefinerNet(TINY.replace(scale=2, reference_colour_sigma=0.0)).eval()  # paste as is
    inputs = torch.zeros(1, 5, 16, 16)
    plate = torch.rand(1, 3, 32, 32)
    ref = torch.zeros(1, 4, 32, 32)
    with pytest.raises(ValueError, match="mouth reference"):
        net(inputs, plate)
    with torch.no_grad():
        out = net(inputs, plate, ref)
    assert out.frame.shape == (1, 3, 32, 32)
    torch.testing.assert_close(out.frame, plate)  # zero-initialised: no head, the plate
    torch.nn.init.normal_(net.to_out.weight, std=0.05)
    ref[:, :3, 8:24, 8:24] = 0.25  # a real mouth, premultiplied by its mask
    ref[:, 3, 8:24, 8:24] = 0.5
    ref[:, 3, 12:20, 12:20] = 1.0
    ref[:, :3, 12:20, 12:20] = 0.7
    with torch.no_grad():
        a = net(inputs, plate, torch.zeros_like(ref)).frame
        b = net(inputs, plate, ref).frame
    torch.testing.assert_close(b[..., 12:20, 12:20], torch.full_like(b[..., 12:20, 12:20], 0.7))
    torch.testing.assert_close(b[..., :4, :4], a[..., :4, :4])  # outside the mask: the net's
    feather = b[..., 9, 9] - (0.25 + 0.5 * a[..., 9, 9])
    assert float(feather.abs().max()) < 1e-3, "half mask: half the mouth, half the frame"


def test_training_with_references_and_the_engine(
    demo_subject: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from talkstudio.core.engine import Engine

    root = tmp_path_factory.mktemp("reference") / "demo"
    shutil.copytree(demo_subject, root)
    records: list = []
    result = run_job(train_refiner(root, TINY), records.append)
    assert result.steps == TINY.steps
    assert [r.preview for r in records if r.preview is not None]
    _, raw = load_model(Subject.open(root).model_dir("refiner"), "refiner")
    assert raw["config"]["mouth_reference"] is True
    assert len(raw["meta"]["reference_frames"]) == TINY.cache_frames
    engine = Engine.open(root, device="cpu")
    assert engine.refiner is not None and engine.refiner.reference is not None
    frame = engine.render(3, (1, 1, 1), 256).rgb
    fast = engine.render_fast(3, (1, 1, 2), 256)  # the slider's preview, before the full render
    wide = engine.render(3, (1, 1, 2), 256).rgb
    assert frame.shape == (256, 256, 3) and np.abs(wide.astype(float) - frame).max() > 0
    # the mouth's source is planned along the clip: the same in every engine with this track
    # (an export's workers), and a source of the refiner's bank
    source = engine.mouth_source(3, (1, 1, 2))
    other = Engine.open(root, device="cpu")
    other.track = engine.track
    assert other.mouth_source(3, (1, 1, 2)) == source
    assert source in set(engine.refiner.reference.bank.frames.tolist())
    # the preview lays the same real mouth over its frame as the full render does
    ref = engine.refiner.mouth(engine.track.pose_at(3), engine.landmarks(3, (1, 1, 2)), source)
    mouth = ref[3].numpy() > 0.99
    assert fast.kind == "fast" and mouth.sum() > 20
    preview_err = np.abs(fast.rgb.astype(float) - wide)[mouth].mean()
    assert preview_err < 0.25 * np.abs(frame.astype(float) - wide)[mouth].mean() + 1.0
