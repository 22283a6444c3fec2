"""Preprocessing steps on synthetic data with known answers (no footage, no MediaPipe)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talkstudio.core import subject as sj
from talkstudio.core.geometry import rotation_angle_deg, rotation_from_euler
from talkstudio.core.landmarks import eye_area
from talkstudio.core.preprocess import PreprocessError
from talkstudio.core.preprocess.background import PlateBuilder, head_on_background
from talkstudio.core.preprocess.crop import Crop, stable_crop
from talkstudio.core.preprocess.eyes import eye_ratio, open_eye_area
from talkstudio.core.preprocess.ibug68 import mesh_map, mesh_to_ibug68, parse_map
from talkstudio.core.preprocess.pose import (
    estimate_focal,
    fit_rigid,
    intrinsics,
    smooth_poses,
    world_landmarks,
)
from talkstudio.core.preprocess.segment import label_mask
from talkstudio.core.preprocess.shape import similarity
from talkstudio.core.preprocess.tracking import choose_face, fill_gaps

SIZE = 512


def face_shape(seed: int = 0) -> np.ndarray:
    """A rigid face-like cloud of 478 vertices in head units [478, 3], with the vertices that
    define the head frame (eye corners, nasion, chin) where a face has them."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.7, 0.7, 478)
    y = rng.uniform(-0.9, 0.9, 478)
    z = -0.5 * (1 - x**2 / 0.6 - y**2 / 1.2) + rng.normal(0, 0.02, 478)
    shape = np.stack([x, y, z], -1)
    shape[[33, 133, 362, 263]] = [
        [-0.45, -0.3, 0.05],
        [-0.15, -0.3, 0.0],
        [0.15, -0.3, 0.0],
        [0.45, -0.3, 0.05],
    ]
    shape[168] = [0.0, -0.35, -0.1]
    shape[152] = [0.0, 0.85, 0.05]
    return shape


def mediapipe_like(
    shape: np.ndarray, rot: np.ndarray, trans: np.ndarray, K: np.ndarray
) -> np.ndarray:
    """What the tracker reports for ``shape`` seen with pose (rot [T,3,3], trans [T,3]): pixels
    (u, v) and a relative depth in pixel scale about the head centre's depth."""
    cam = np.einsum("tij,nj->tni", rot, shape) + trans[:, None]  # [T, N, 3]
    uv = cam[..., :2] / cam[..., 2:] * K[0, 0] + K[:2, 2]
    z0 = trans[:, None, 2:3]  # depth of the shape's origin
    z = (cam[..., 2:] / z0 - 1.0) * K[0, 0]
    return np.concatenate([uv, z], -1)


def moving_head(frames: int, seed: int = 1, amount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Rotations [T, 3, 3] and translations [T, 3] of a head turning and moving."""
    t = np.linspace(0, 1, frames)
    ang = np.radians(
        amount * np.stack([12 * np.sin(5 * t), 28 * np.sin(3 * t + 1), 15 * np.sin(4 * t)], -1)
    )
    rot = np.stack([rotation_from_euler(*a) for a in ang])
    trans = np.stack(
        [0.6 * amount * np.sin(2 * t), 0.4 * amount * np.cos(3 * t), 4.5 + amount * np.sin(t)], -1
    )
    return rot, trans


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(4, 30, 3))
    rot = np.stack([rotation_from_euler(*rng.uniform(-1, 1, 3)) for _ in range(4)])
    dst = 1.7 * np.einsum("bij,bnj->bni", rot, src) + np.array([1.0, -2.0, 3.0])
    scale, r, t = similarity(src, dst)
    assert np.allclose(scale, 1.7) and np.allclose(r, rot) and np.allclose(t, [1.0, -2.0, 3.0])


def test_rigid_fit_recovers_motion_depth_and_shape() -> None:
    K = intrinsics(SIZE, 600.0)
    shape = face_shape()
    rot, trans = moving_head(60)
    mesh = mediapipe_like(shape, rot, trans, K)
    fit = fit_rigid(mesh, K)
    # relative rotations are comparable whatever the constant offset between head frames
    got = fit.rot @ fit.rot[:1].transpose(0, 2, 1)
    want = rot @ rot[:1].transpose(0, 2, 1)
    assert rotation_angle_deg(got, want).max() < 0.05
    # the head-frame origin's distance from the camera, in head units, is right
    lm_true = mesh_to_ibug68(shape)
    origin_cam = np.einsum("tij,j->ti", rot, lm_true.mean(0)) + trans
    assert np.allclose(fit.trans, origin_cam, rtol=1e-3, atol=1e-3)
    assert fit.rms.max() < 0.01
    world = world_landmarks(fit)  # [T, 68, 3]: no expression, so every frame is the mean
    assert np.abs(world - world.mean(0)).max() < 1e-3
    assert np.linalg.norm(world[0, 45] - world[0, 36]) == pytest.approx(0.9, abs=1e-3)


def test_rigid_fit_with_tracker_noise() -> None:
    K = intrinsics(SIZE, 600.0)
    rot, trans = moving_head(60)
    mesh = mediapipe_like(face_shape(), rot, trans, K)
    rng = np.random.default_rng(3)
    mesh += rng.normal(0, [0.4, 0.4, 1.5], mesh.shape)
    fit = fit_rigid(mesh, K)
    got = fit.rot @ fit.rot[:1].transpose(0, 2, 1)
    want = rot @ rot[:1].transpose(0, 2, 1)
    assert rotation_angle_deg(got, want).max() < 1.0


def test_focal_is_found_when_the_head_moves_and_prior_decides_when_it_cannot() -> None:
    shape = face_shape()
    rot, trans = moving_head(80, amount=1.2)
    mesh = mediapipe_like(shape, rot, trans, intrinsics(SIZE, 500.0))
    search = estimate_focal(mesh, SIZE, prior=1500.0)
    assert search.decided_by == "data"
    assert search.focal == pytest.approx(500.0, rel=0.2)
    still = mediapipe_like(
        shape, rot[:1].repeat(40, 0), trans[:1].repeat(40, 0), intrinsics(SIZE, 500.0)
    )
    search = estimate_focal(still, SIZE, prior=900.0)
    assert search.decided_by == "prior" and search.focal == 900.0


def test_pose_smoothing_removes_noise_without_lag() -> None:
    t = np.arange(100)
    yaw = np.radians(0.3 * t)  # constant angular velocity: must pass unchanged
    rot = np.stack([rotation_from_euler(0.1, y, -0.05) for y in yaw])
    trans = np.stack([0.01 * t, np.zeros(100), 5 + 0.002 * t], -1)
    rng = np.random.default_rng(0)
    noisy_rot = np.stack([rotation_from_euler(*rng.normal(0, np.radians(0.5), 3)) for _ in t]) @ rot
    noisy_trans = trans + rng.normal(0, 0.01, trans.shape)
    clean_r, clean_t = smooth_poses(rot, trans, 7)
    assert rotation_angle_deg(clean_r, rot).max() < 1e-4 and np.allclose(clean_t, trans)
    out_r, out_t = smooth_poses(noisy_rot, noisy_trans, 7)
    assert rotation_angle_deg(out_r, rot).mean() < 0.6 * rotation_angle_deg(noisy_rot, rot).mean()
    assert abs(np.mean(out_t[:, 0] - trans[:, 0])) < 0.002  # no lag
    short_r, _ = smooth_poses(noisy_rot[:3], noisy_trans[:3], 7)
    assert np.allclose(short_r, noisy_rot[:3])


def _face(offset: float, scale: float = 1.0) -> np.ndarray:
    mesh = face_shape()[:, :2] * 100 * scale + [offset, 200.0]
    return np.concatenate([mesh, np.zeros((478, 1))], -1)


def test_choose_face_follows_the_largest_and_rejects_twins() -> None:
    big, small = _face(200.0), _face(450.0, 0.5)
    choice = choose_face([[small, big]] * 10 + [[big]] * 10, fps=25)
    assert choice.found.all() and np.allclose(choice.mesh[:, :, 0].mean(1), big[:, 0].mean())
    assert "another, smaller face" in choice.notes[0]
    with pytest.raises(PreprocessError, match="two faces of about the same size"):
        choose_face([[_face(200.0), _face(450.0, 0.95)]] * 10, fps=25)


def test_gaps_are_filled_and_long_losses_are_errors() -> None:
    a, b = _face(100.0), _face(140.0)
    cands = [[a]] * 10 + [[]] * 4 + [[b]] * 36
    mesh, notes = fill_gaps(choose_face(cands, 25), 25)
    assert np.allclose(mesh[12, :, 0], a[:, 0] + 40 * 3 / 5)  # linear between frames 9 and 14
    assert "0.40-0.56 s" in notes[0]
    with pytest.raises(PreprocessError, match=r"in 8 of 50 frames .*0\.40-0\.72 s"):
        fill_gaps(choose_face([[a]] * 10 + [[]] * 8 + [[b]] * 32, 25), 25)
    with pytest.raises(PreprocessError, match="no face was found"):
        fill_gaps(choose_face([[]] * 20, 25), 25)


def test_stable_crop_and_its_point_mapping() -> None:
    mesh = np.stack([_face(320.0 + 5 * np.sin(i), 1.5) for i in range(20)])  # face ~ 210 px
    crop = stable_crop(mesh, 640, 480, 256)
    assert crop.side <= 480 and not crop.padded(640, 480)
    frame = np.zeros((480, 640, 3), np.uint8)
    u, v = np.round(mesh[0, 10, :2]).astype(int)
    frame[v - 3 : v + 4, u - 3 : u + 4] = 255
    out = crop.apply(frame)
    ys, xs = np.nonzero(out[..., 0] > 100)
    mapped = crop.points(mesh[:1, 10:11])[0, 0]
    assert (
        out.shape == (256, 256, 3)
        and abs(xs.mean() - mapped[0]) < 1.0
        and abs(ys.mean() - mapped[1]) < 1.0
    )
    edge = stable_crop(np.stack([_face(40.0, 1.5)] * 5), 640, 480, 256)  # face at the left edge
    assert edge.padded(640, 480) and edge.x0 < 0
    whole = Crop(0, 0, 100, 100).apply(
        np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3)
    )
    assert whole.shape == (100, 100, 3)


def test_background_plate_is_the_median_behind_a_moving_person() -> None:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    builder = PlateBuilder()
    for i in range(12):
        frame = background.copy()
        labels = np.zeros((64, 64), np.uint8)
        x = 4 * i
        labels[20:64, x : x + 16] = sj.MASK_PERSON | sj.MASK_HEAD
        frame[labels > 0] = 255 - frame[labels > 0]
        frame[0:2] = rng.integers(0, 256, (2, 64, 3))  # flicker in a few frames' top rows
        builder.add(frame, labels)
    plate, holes = builder.plate()
    assert holes == 0.0
    assert np.abs(plate[4:].astype(int) - background[4:]).max() == 0
    labels = np.zeros((64, 64), np.uint8)
    labels[10:20, 10:20] = sj.MASK_HEAD
    hob = head_on_background(np.zeros_like(plate), labels, plate)
    assert (hob[10:20, 10:20] == 0).all() and (hob[30:] == plate[30:]).all()


def test_plate_holes_are_filled_from_their_surroundings() -> None:
    builder = PlateBuilder()
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, :32] = 200
    labels = np.zeros((64, 64), np.uint8)
    labels[16:48, 16:48] = sj.MASK_PERSON
    builder.add(frame, labels)
    plate, holes = builder.plate()
    assert 0.25 < holes < 0.4
    assert plate[32, 20, 0] > plate[32, 44, 0]  # the left side's brightness reaches in


def synthetic_landmarks(size: int = 256) -> np.ndarray:
    """A frontal iBUG-68 layout in pixels [68, 2] for a face centred in a ``size`` image."""
    c, s = size / 2, size / 4
    lm = np.zeros((68, 2))
    a = np.linspace(np.pi, 0, 17)  # jaw: from the subject's right ear (image left) round the chin
    lm[0:17] = np.stack([c + s * np.cos(a), c - 0.2 * s + 1.1 * s * np.sin(a)], -1)
    lm[17:22] = np.stack([np.linspace(c - 0.8 * s, c - 0.15 * s, 5), np.full(5, c - 0.65 * s)], -1)
    lm[22:27] = np.stack([np.linspace(c + 0.15 * s, c + 0.8 * s, 5), np.full(5, c - 0.65 * s)], -1)
    lm[27:31] = np.stack([np.full(4, c), np.linspace(c - 0.45 * s, c + 0.1 * s, 4)], -1)
    lm[31:36] = np.stack([np.linspace(c - 0.2 * s, c + 0.2 * s, 5), np.full(5, c + 0.2 * s)], -1)
    e = np.linspace(0, 2 * np.pi, 7)[:6]
    for k, ex in ((36, c - 0.45 * s), (42, c + 0.45 * s)):
        lm[k : k + 6] = np.stack([ex - 0.2 * s * np.cos(e), c - 0.4 * s - 0.08 * s * np.sin(e)], -1)
    m = np.linspace(0, 2 * np.pi, 13)[:12]
    lm[48:60] = np.stack([c - 0.4 * s * np.cos(m), c + 0.55 * s - 0.15 * s * np.sin(m)], -1)
    mi = np.linspace(0, 2 * np.pi, 9)[:8]
    lm[60:68] = np.stack([c - 0.3 * s * np.cos(mi), c + 0.55 * s - 0.05 * s * np.sin(mi)], -1)
    return lm


def test_label_mask_regions_and_neck_line() -> None:
    lm = synthetic_landmarks()
    prob = np.zeros((256, 256), np.float32)
    prob[30:, 50:206] = 1.0  # head and hair above, shoulders below
    prob[200:, :] = 1.0
    labels = label_mask(lm, prob)
    head = labels & sj.MASK_HEAD > 0
    torso = labels & sj.MASK_TORSO > 0
    assert not (head & torso).any() and ((labels & sj.MASK_PERSON > 0) == (head | torso)).all()
    assert head[40, 128] and torso[250, 128]  # hair above is head, shoulders below are torso
    chin_row = int(lm[8, 1])
    assert head[chin_row - 2, 128] and torso[chin_row + 15, 128]
    for bit, idx in ((sj.MASK_LEFT_EYE, 42), (sj.MASK_RIGHT_EYE, 36), (sj.MASK_MOUTH, 48)):
        region = labels & bit > 0
        centre = lm[idx : idx + 6].mean(0).round().astype(int)
        assert region[centre[1], centre[0]] and (labels[region] & sj.MASK_FACE).all()
    assert np.nonzero(labels & sj.MASK_LEFT_EYE)[1].mean() > 128  # subject's left: image right


def test_eye_ratio_is_area_over_open_area() -> None:
    lm = np.zeros((10, 68, 3))
    e = np.linspace(0, 2 * np.pi, 7)[:6]
    for t in range(10):
        opening = 0.5 if t == 3 else 1.0
        for k, ex in ((36, -0.3), (42, 0.3)):
            lm[t, k : k + 6, 0] = ex + 0.1 * np.cos(e)
            lm[t, k : k + 6, 1] = 0.04 * opening * np.sin(e)
    s0 = open_eye_area(lm, range(10))
    assert np.allclose(s0, eye_area(lm[0], True))
    r = eye_ratio(lm, s0)
    assert np.allclose(r[3], 0.5) and np.allclose(np.delete(r, 3, 0), 1.0)


def test_mesh_map_file_and_parser() -> None:
    mm = mesh_map()
    assert mm.weights.shape == (68, 478) and np.allclose(mm.weights.sum(1), 1.0)
    mesh = np.zeros((478, 3))
    mesh[:, 0] = np.arange(478)
    lm = mesh_to_ibug68(mesh)
    assert lm[36, 0] == 33 and lm[45, 0] == 263 and lm[3, 0] == (132 + 58) / 2
    assert mm.groups[36] == "right_eye" and mm.groups[8] == "jaw"
    doc = {"format": "talkstudio.mesh_to_ibug68", "points": [], "stable_mesh_vertices": [1] * 8}
    with pytest.raises(ValueError, match=r"iBUG 0\.\.67"):
        parse_map(doc)
    bad = json.loads(
        json.dumps({**doc, "points": [{"ibug": i, "group": "g", "mesh": [999]} for i in range(68)]})
    )
    with pytest.raises(ValueError, match="bad mesh indices"):
        parse_map(bad)


def test_plate_pixels_seen_by_few_frames_fade_into_the_fill() -> None:
    """Behind a person who steps aside once, the one frame's pixels (with a segmentation miss in
    them) are not trusted as they are: they are blended towards the surrounding background."""
    builder = PlateBuilder()
    for i in range(20):
        frame = np.full((64, 64, 3), 100, np.uint8)
        labels = np.zeros((64, 64), np.uint8)
        if i == 7:  # stepped aside: the area is seen once, with a ghost the mask missed
            frame[16:48, 24:40] = 250
        else:
            labels[8:64, 20:44] = sj.MASK_PERSON
        builder.add(frame, labels)
    plate, holes = builder.plate()
    assert holes == 0.0
    seen_once = plate[20:44, 28:36].astype(int)
    assert (seen_once < 200).all() and (seen_once > 100).all()  # halfway to the surroundings
    assert (plate[:, :16] == 100).all() and (plate[:, 48:] == 100).all()  # seen by all: exact
