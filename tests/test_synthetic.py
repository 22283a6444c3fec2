"""Synthetic subjects: determinism, a valid subject folder, exact ground truth, face detection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from talkstudio.core import subject as subj
from talkstudio.core.errors import TalkstudioError
from talkstudio.core.geometry import OUTER_EYE_DISTANCE, project_head_points
from talkstudio.core.landmarks import MOUTH, eye_area, eye_opening, mouth_opening
from talkstudio.core.synthetic import (
    NEUTRAL,
    SynthConfig,
    SynthResult,
    config_from_source,
    landmarks_for,
    synthesize,
    write_synthetic,
)
from talkstudio.core.synthetic.motion import BLINK_PROFILE, frame_envelope

CFG = SynthConfig(seed=3, seconds=2.6, size=128)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return write_synthetic(tmp_path_factory.mktemp("synth"), CFG)


@pytest.fixture(scope="module")
def opened(written: SynthResult) -> subj.Subject:
    return subj.Subject.open(written.subject_dir)


def test_same_seed_gives_identical_bytes() -> None:
    cfg = SynthConfig(seed=11, seconds=1.2, size=64)
    a, b = synthesize(cfg), synthesize(cfg)
    for key in ("audio", "params", "pose", "body_shift", "blinks"):
        assert getattr(a, key).tobytes() == getattr(b, key).tobytes(), key
    for i in (0, 17):
        ra, rb = a.render(i), b.render(i)
        assert ra[0].tobytes() == rb[0].tobytes() and ra[1].tobytes() == rb[1].tobytes()
    c = synthesize(SynthConfig(seed=12, seconds=1.2, size=64))
    assert c.audio.tobytes() != a.audio.tobytes()
    assert not np.array_equal(c.render(0)[0], a.render(0)[0])


def test_subject_folder_validates_and_records_its_source(
    written: SynthResult, opened: subj.Subject
) -> None:
    assert subj.validate_subject(written.subject_dir) == []
    meta = opened.meta
    frames = -(-round(CFG.seconds * 16000) // 640)
    assert meta.num_frames == written.num_frames == frames
    assert meta.size == CFG.size and meta.frame_ext == ".png"
    assert meta.source["kind"] == "synthetic" and meta.source["seed"] == CFG.seed
    assert config_from_source(meta.source) == CFG
    np.testing.assert_allclose(meta.K, CFG.K)
    np.testing.assert_array_equal(opened.load_audio(), written.sequence.audio)
    assert opened.load_background().shape == (CFG.size, CFG.size, 3)
    # the frames on disk are the renders, bit for bit (PNG)
    np.testing.assert_array_equal(opened.load_frame(7), written.sequence.render(7)[0])


def test_video_is_an_mp4_with_sound(written: SynthResult) -> None:
    from talkstudio.core.media import probe, read_video_frames

    assert written.video_path is not None and written.video_path.name == "synthetic.mp4"
    info = probe(written.video_path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (CFG.size, CFG.size)
    video = read_video_frames(written.video_path)
    assert len(video) == written.num_frames
    # H.264 is lossy but close to the rendered frame
    diff = np.abs(video[10].astype(int) - written.sequence.render(10)[0].astype(int))
    assert diff.mean() < 4.0


def test_tracks_are_exact_projections(opened: subj.Subject) -> None:
    tr = opened.tracks
    K = opened.meta.K
    lm2d = project_head_points(K, tr.pose.astype(np.float64)[:, None], tr.lm_world[:, None])[:, 0]
    assert np.abs(lm2d - tr.lm2d).max() < 1e-3
    assert tr.tracked.all()
    # head frame: origin at the centroid of the training mean shape, eye corners 0.9 apart
    train = opened.meta.train_frames
    np.testing.assert_allclose(tr.mean_shape, tr.lm_world[:train].mean(0), atol=1e-6)
    assert np.abs(tr.mean_shape.mean(0)).max() < 1e-5
    corners = np.linalg.norm(tr.lm_world[:, 36] - tr.lm_world[:, 45], axis=-1)
    np.testing.assert_allclose(corners, OUTER_EYE_DISTANCE, atol=1e-5)
    # x toward the subject's left = image right; y down; nose tip nearest the camera
    assert (tr.lm_world[:, 45, 0] > tr.lm_world[:, 36, 0]).all()
    assert (tr.lm2d[:, 45, 0] > tr.lm2d[:, 36, 0]).all()
    assert (tr.lm_world[:, 8, 1] > tr.lm_world[:, 27, 1]).all()
    assert (tr.lm_world[:, 30, 2] < tr.lm_world[:, 36, 2]).all()
    # the head moves: a few degrees and some millimetres, not a still image
    spread = np.ptp(tr.pose[:, :3, 3], axis=0)
    assert 0.005 < spread.max() < 0.5
    # the landmarks lie in the head bounding box
    box = np.asarray(opened.meta.head_bbox)
    assert (tr.lm_world >= box[0]).all() and (tr.lm_world <= box[1]).all()


def test_audio_envelope_drives_the_mouth(opened: subj.Subject) -> None:
    audio = opened.load_audio()
    env = frame_envelope(audio)  # [T] RMS per frame
    opening = mouth_opening(opened.tracks.lm_world)  # [T]
    r = float(np.corrcoef(env, opening)[0, 1])
    print(f"Pearson(audio RMS envelope, mouth opening) = {r:.3f}")
    assert r > 0.6
    silent = env < 10 ** (-45 / 20)
    assert silent.any() and (~silent).sum() > len(env) // 2  # pauses and speech
    assert opening[silent].mean() < 0.5 * opening[~silent].mean()


def test_speech_has_voice_pitch_and_unvoiced_noise() -> None:
    seq = synthesize(SynthConfig(seed=5, seconds=3.0, size=64))
    audio = seq.audio.astype(np.float64)
    frames = audio[: len(audio) // 640 * 640].reshape(-1, 640)
    rms = np.sqrt((frames**2).mean(1))
    loud = frames[rms > np.percentile(rms, 80)]
    pitches, zcr = [], []
    for f in loud:
        ac = np.correlate(f, f, "full")[639:]
        lag = 40 + int(np.argmax(ac[40:200]))  # 80-400 Hz
        pitches.append(16000 / lag if ac[lag] > 0.3 * ac[0] else 0.0)
    voiced = np.array(pitches) > 0
    assert voiced.mean() > 0.6  # loud frames are mostly periodic (vowels)
    assert 80 < np.median(np.array(pitches)[voiced]) < 300
    spec = np.abs(np.fft.rfft(frames * np.hanning(640), axis=1)) ** 2
    high = spec[:, 160:].sum(1) / (spec.sum(1) + 1e-12)  # energy above 4 kHz
    for f in frames:
        zcr.append(np.mean(np.abs(np.diff(np.sign(f))) > 0))
    noisy = (rms > 1e-3) & (high > 0.5)
    assert noisy.any()  # fricatives / bursts exist
    assert np.median(high[rms > np.percentile(rms, 80)]) < 0.1  # vowels are low-frequency


def test_blinks_dip_the_eye_ratio(opened: subj.Subject, written: SynthResult) -> None:
    ratio = opened.tracks.eye_ratio  # [T, 2]
    blinks = written.sequence.blinks
    assert len(blinks) >= 1
    near = np.zeros(len(ratio), bool)
    for b in blinks:
        assert ratio[b : b + len(BLINK_PROFILE)].min() < 0.3
        near[max(0, b - 1) : b + len(BLINK_PROFILE) + 1] = True
    assert ratio[~near].min() > 0.85 and (~near).sum() > len(ratio) // 2
    # the ratio is the eye polygon's area over the open-eye area s0, per eye
    lm = opened.tracks.lm_world
    s0 = opened.tracks.eye_open_area
    np.testing.assert_allclose(ratio[:, 0], eye_area(lm, left=True) / s0[0], atol=1e-5)
    np.testing.assert_allclose(ratio[:, 1], eye_area(lm, left=False) / s0[1], atol=1e-5)


def test_expression_parameters_are_linear() -> None:
    base = landmarks_for(NEUTRAL)
    one = landmarks_for(np.array([0.08, 1.0, 1.0]))
    two = landmarks_for(np.array([0.16, 1.0, 1.0]))
    np.testing.assert_allclose(two - base, 2 * (one - base), atol=1e-12)
    moved = np.linalg.norm(one - base, axis=-1) > 1e-9
    assert set(np.nonzero(moved)[0]) <= set(range(17)) | set(MOUTH)
    assert moved[[57, 66, 8]].all() and not moved[[62, 51, 30]].any()
    gap = one[66, 1] - one[62, 1]
    np.testing.assert_allclose(gap - (base[66, 1] - base[62, 1]), 0.08, atol=1e-9)
    half = landmarks_for(np.array([0.0, 0.5, 0.0]))
    np.testing.assert_allclose(eye_area(half, True) / eye_area(base, True), 0.5, atol=1e-9)
    assert eye_area(half, False) < 1e-9 and eye_opening(half, False) < 1e-9


def test_doubling_the_mouth_changes_only_the_mouth_and_jaw() -> None:
    seq = synthesize(SynthConfig(seed=4, seconds=1.0, size=128))
    i = 10
    p1 = np.array([0.07, 1.0, 1.0])
    img1, _ = seq.render(i, p1, noise=False)
    img2, lab2 = seq.render(i, p1 * np.array([2.0, 1.0, 1.0]), noise=False)
    changed = np.abs(img1.astype(int) - img2.astype(int)).max(-1) > 10
    lm = project_head_points(seq.K, seq.pose[i], seq.landmarks(p1 * [2.0, 1.0, 1.0]))
    assert changed.sum() > 80
    rows, cols = np.nonzero(changed)
    top = lm[33, 1] - 2  # nothing above the base of the nose changes
    assert rows.min() >= top
    assert cols.min() >= lm[:17, 0].min() - 4 and cols.max() <= lm[:17, 0].max() + 4
    assert rows.max() <= lm[8, 1] + 10
    # most of the change is in the mouth region, and the eyes are untouched
    box = lm[list(MOUTH)]
    in_mouth = (cols >= box[:, 0].min() - 3) & (cols <= box[:, 0].max() + 3)
    in_mouth &= (rows >= box[:, 1].min() - 3) & (rows <= box[:, 1].max() + 3)
    assert in_mouth.mean() > 0.5
    eyes = lm[36:48]
    r0, r1 = int(eyes[:, 1].min()) - 3, int(eyes[:, 1].max()) + 4
    c0, c1 = int(eyes[:, 0].min()) - 3, int(eyes[:, 0].max()) + 4
    assert not changed[r0:r1, c0:c1].any()
    # the mouth label follows the opened lips
    assert (lab2 & subj.MASK_MOUTH).sum() > (
        seq.render(i, p1, noise=False)[1] & subj.MASK_MOUTH
    ).sum()


def _polygon_mask(points: np.ndarray, shape: tuple[int, int], grow: int) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], (1,), cv2.LINE_8, 4)
    if grow:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask.astype(bool)


def test_mask_bits_are_where_the_parts_are(opened: subj.Subject) -> None:
    tr = opened.tracks
    size = opened.meta.size
    open_frames = np.nonzero(tr.eye_ratio.min(1) > 0.9)[0]
    shut_frames = np.nonzero(tr.eye_ratio.max(1) < 0.05)[0]
    mouth_frame = int(np.argmax(mouth_opening(tr.lm_world)))
    for i in (int(open_frames[0]), mouth_frame):
        m = opened.load_mask(i)
        lm = tr.lm2d[i].astype(np.float64)
        person = (m & subj.MASK_PERSON) > 0
        for bit in (subj.MASK_HEAD, subj.MASK_TORSO, subj.MASK_FACE, subj.MASK_MOUTH):
            part = (m & bit) > 0
            assert part.any() and not (part & ~person).any(), bit
        head, torso = (m & subj.MASK_HEAD) > 0, (m & subj.MASK_TORSO) > 0
        assert not (head & torso).any() and ((head | torso) == person).all()
        assert not (((m & subj.MASK_FACE) > 0) & ~head).any()
        assert m[0, 0] == 0 and m[0, -1] == 0  # the corners are background
        # mouth: covers the projected outer-lip points, stays inside their polygon
        mouth = (m & subj.MASK_MOUTH) > 0
        grown = cv2.dilate(mouth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        pts = np.clip(np.floor(lm[48:60]).astype(int), 0, size - 1)
        assert grown[pts[:, 1], pts[:, 0]].mean() >= 0.9
        assert not (mouth & ~_polygon_mask(lm[48:60], (size, size), 2)).any()
        # eyes: the subject's left eye (42-47) is on the image right
        for bit, idx in ((subj.MASK_LEFT_EYE, slice(42, 48)), (subj.MASK_RIGHT_EYE, slice(36, 42))):
            eye = (m & bit) > 0
            assert eye.sum() >= 3
            assert not (eye & ~_polygon_mask(lm[idx], (size, size), 2)).any()
            assert abs(np.nonzero(eye)[1].mean() - lm[idx, 0].mean()) < 2.0
        # torso below the head, head above the neck line
        head_rows = np.nonzero((m & subj.MASK_HEAD).any(1))[0]
        torso_rows = np.nonzero((m & subj.MASK_TORSO).any(1))[0]
        assert torso_rows.max() == size - 1 and head_rows.min() < torso_rows.min()
    for i in shut_frames[:1]:
        m = opened.load_mask(int(i))
        assert ((m & subj.MASK_LEFT_EYE) > 0).sum() <= 2
        assert ((m & subj.MASK_RIGHT_EYE) > 0).sum() <= 2


def test_bad_configs_are_refused() -> None:
    for bad in (
        SynthConfig(size=127),
        SynthConfig(seconds=0.0),
        SynthConfig(distance=1.0),
        SynthConfig(frame_ext=".bmp"),
    ):
        with pytest.raises(TalkstudioError):
            bad.check()


def test_existing_subject_is_not_overwritten(written: SynthResult) -> None:
    before = sorted(p.name for p in written.subject_dir.iterdir())
    with pytest.raises(TalkstudioError, match="already exists"):
        write_synthetic(written.subject_dir.parent, CFG)
    assert sorted(p.name for p in written.subject_dir.iterdir()) == before


def test_mediapipe_finds_the_face(written: SynthResult) -> None:
    mp = pytest.importorskip("mediapipe")
    from talkstudio.core.media import read_video_frames

    frames = read_video_frames(written.video_path)
    found = 0
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=True
    ) as mesh:
        for rgb in frames:
            found += mesh.process(np.ascontiguousarray(rgb)).multi_face_landmarks is not None
    rate = found / len(frames)
    print(f"MediaPipe Face Mesh found the face in {found}/{len(frames)} frames ({rate:.1%})")
    assert rate >= 0.9


def test_cli_synth_writes_video_and_subject(tmp_path: Path) -> None:
    from talkstudio.app.cli import main

    out = tmp_path / "cli"
    rc = main(["synth", "--out", str(out), "--seconds", "0.4", "--size", "64", "--seed", "2"])
    assert rc == 0
    assert (out / "synthetic.mp4").is_file()
    assert subj.validate_subject(out / "subject") == []
