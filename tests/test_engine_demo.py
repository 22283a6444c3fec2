"""Rendering with the built-in demo subject (its shipped weights, no training here).

The demo is a synthetic person, so the generator can render the same frame with the mouth opened
twice as far: the α3 = 2 render must move towards that picture, change the mouth region clearly
and leave the upper face alone.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from talkstudio.core.geometry import project_head_points, scale_intrinsics
from talkstudio.core.landmarks import mouth_opening
from talkstudio.core.subject import MASK_FACE, MASK_LEFT_EYE, MASK_MOUTH, Subject

SIZE = 128
"""The demo head was trained at 128²."""


@pytest.fixture(scope="module")
def engine(demo_subject: Path):
    from talkstudio.core.engine import Engine

    return Engine.open(demo_subject, device="cpu")


@pytest.fixture(scope="module")
def mouth_frame(engine) -> int:
    """A replayed frame whose mouth is open about half way (so doubling it stays plausible) and
    whose eyes carry no synthesised blink."""
    track = engine.track
    opening = mouth_opening(track.lm_world.astype(np.float64))  # [T]
    own = engine.subject.tracks.eye_ratio[track.ref_index]  # [T, 2]
    unblinked = np.all(np.abs(track.eye_ratio - own) < 1e-4, axis=1)
    lo, hi = np.quantile(opening, [0.45, 0.65])
    candidates = np.flatnonzero(unblinked & (opening >= lo) & (opening <= hi))
    assert len(candidates), "no half-open, unblinked frame in the demo replay"
    return int(candidates[len(candidates) // 2])


def _generator_renders(subject: Subject, ref: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The generator's own frame ``ref`` at SIZE with the mouth opened twice as far (RGB float
    [S, S, 3]), the union of the mouth masks of both openings and the face mask ([S, S] bool)."""
    from talkstudio.core.synthetic.sequence import config_from_source, synthesize

    seq = synthesize(config_from_source(subject.meta.source))
    _, lab1 = seq.render(ref, size=SIZE, noise=False)
    two, lab2 = seq.render(ref, params=seq.params[ref] * (2, 1, 1), size=SIZE, noise=False)
    mouth = ((lab1 | lab2) & MASK_MOUTH) > 0
    return two.astype(np.float64), mouth, (lab1 & MASK_FACE) > 0


def test_mouth_edit_opens_the_rendered_mouth(engine, mouth_frame: int) -> None:
    subject = engine.subject
    ref = int(engine.track.ref_index[mouth_frame])
    base = engine.render(mouth_frame, (1, 1, 1), SIZE).rgb.astype(np.float64)
    wide = engine.render(mouth_frame, (1, 1, 2), SIZE).rgb.astype(np.float64)
    truth_wide, mouth, face = _generator_renders(subject, ref)
    assert mouth.sum() > 20, "the generator's mouth mask is too small to measure"
    region = cv2.dilate(mouth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0

    # The upper face: face pixels well above the mouth (the jaw may follow the lips).
    top = np.flatnonzero(region.any(axis=1))[0]
    upper = face.copy()
    upper[top - SIZE // 16 :] = False
    assert upper.sum() > 200, "too little upper face to compare"

    diff = np.abs(wide - base).mean(axis=2)  # [S, S]
    mouth_change = diff[region].mean()
    upper_change = diff[upper].mean()
    assert mouth_change > 6.0, f"α3 = 2 barely changed the mouth ({mouth_change:.2f} / 255)"
    assert upper_change < 1.5, f"α3 = 2 changed the upper face ({upper_change:.2f} / 255)"
    assert upper_change < mouth_change / 5

    err_wide = np.abs(wide - truth_wide).mean(axis=2)[region].mean()
    err_base = np.abs(base - truth_wide).mean(axis=2)[region].mean()
    assert err_wide < 0.85 * err_base, (
        f"α3 = 2 render is not closer to the generator's twice-opened mouth: "
        f"{err_wide:.2f} vs {err_base:.2f} (α3 = 1)"
    )


def _edit_change(engine, frame: int, alphas, points: slice) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel change [S, S] of the render at ``frame`` under ``alphas``, and the region
    [S, S] the ``points`` cover before and after the edit (projected, filled, grown by a pixel)."""
    base_lm = engine.landmarks(frame).astype(np.float64)
    edit_lm = engine.landmarks(frame, alphas).astype(np.float64)
    K = scale_intrinsics(engine.subject.meta.K, engine.subject.meta.size, SIZE)
    region = np.zeros((SIZE, SIZE), np.uint8)
    for lms in (base_lm, edit_lm):
        outline = project_head_points(K, engine.track.pose[frame], lms[points])  # [P, 2]
        cv2.fillPoly(region, [np.round(outline).astype(np.int32)], 1)
    grown = cv2.dilate(region, np.ones((3, 3), np.uint8)) > 0
    base = engine.render(frame, (1, 1, 1), SIZE).rgb.astype(np.float64)
    edited = engine.render(frame, alphas, SIZE).rgb.astype(np.float64)
    return np.abs(edited - base).mean(axis=2), grown


def test_mouth_edit_opens_a_closed_mouth(engine) -> None:
    """α3 = 2 at a frame whose mouth is shut opens it visibly (by the subject's typical opening,
    docs/edit.md): scaling the frame's own, zero opening alone left the render unchanged."""
    track = engine.track
    opening = mouth_opening(track.lm_world.astype(np.float64))  # [T]
    frame = int(np.argmin(opening))
    assert opening[frame] < 0.2 * np.median(opening), "the demo replay has no closed mouth"
    wide_lm = engine.landmarks(frame, (1, 1, 2)).astype(np.float64)
    assert mouth_opening(wide_lm) > 0.4 * np.median(opening)

    # The mouth region: the outer lip contours of both landmark sets, projected, slightly grown.
    diff, region = _edit_change(engine, frame, (1, 1, 2), slice(48, 60))
    assert region.sum() > 20, "the projected mouth is too small to measure"
    change = diff[region].mean()
    assert change >= 5.0, f"α3 = 2 barely changed the closed mouth ({change:.2f} / 255)"


def test_eye_edit_opens_a_blinking_eye(engine) -> None:
    """α1 = 2 at a frame where the left eye is shut (a blink) opens it (by the subject's typical
    opening, docs/edit.md) and leaves the right eye as it was."""
    from talkstudio.core.landmarks import eye_opening

    track = engine.track
    opening = eye_opening(track.lm_world.astype(np.float64), left=True)  # [T]
    frame = int(np.argmin(opening))
    assert opening[frame] < 0.2 * np.median(opening), "the demo replay has no blink"
    base_lm = engine.landmarks(frame).astype(np.float64)
    wide_lm = engine.landmarks(frame, (2, 1, 1)).astype(np.float64)
    assert eye_opening(wide_lm, left=True) > 0.5 * np.median(opening)
    np.testing.assert_allclose(wide_lm[36:42], base_lm[36:42])

    diff, region = _edit_change(engine, frame, (2, 1, 1), slice(42, 48))
    change = diff[region].mean()
    assert change >= 5.0, f"α1 = 2 barely changed the shut eye ({change:.2f} / 255)"
    assert diff[~region].mean() < change / 20


def test_eye_edit_closes_one_eye_only(engine, mouth_frame: int) -> None:
    from talkstudio.core.landmarks import eye_opening

    lms = engine.landmarks(mouth_frame, (0, 1, 1)).astype(np.float64)
    own = engine.landmarks(mouth_frame).astype(np.float64)
    assert eye_opening(lms, left=True) < 0.1 * eye_opening(own, left=True)
    assert eye_opening(lms, left=False) == pytest.approx(eye_opening(own, left=False))
    base = engine.render(mouth_frame, (1, 1, 1), SIZE).rgb.astype(np.float64)
    shut = engine.render(mouth_frame, (0, 1, 1), SIZE).rgb.astype(np.float64)
    diff = np.abs(shut - base).mean(axis=2)  # [S, S]
    _, xs = np.nonzero(diff > 12)
    assert len(xs) > 5, "closing the left eye did not change the render"
    # Every clearly changed pixel lies on the left eye's side of the nose bridge (point 27).
    K = scale_intrinsics(engine.subject.meta.K, engine.subject.meta.size, SIZE)
    pts = project_head_points(K, engine.track.pose[mouth_frame], lms[[27, 42, 45]])  # [3, 2]
    side = np.sign(pts[1:, 0].mean() - pts[0, 0])
    assert np.mean(np.sign(xs + 0.5 - pts[0, 0]) == side) > 0.95, "the right eye changed too"


def test_eye_edit_moves_towards_the_generators_shut_eye(engine, mouth_frame: int) -> None:
    """α1 = 0 renders the left eye shut: closer to the generator's own frame with that eye
    closed than the α1 = 1 render is (the head learnt shut eyes from the demo's blinks)."""
    from talkstudio.core.synthetic.sequence import config_from_source, synthesize

    ref = int(engine.track.ref_index[mouth_frame])
    seq = synthesize(config_from_source(engine.subject.meta.source))
    _, lab = seq.render(ref, size=SIZE, noise=False)
    shut, _ = seq.render(ref, params=seq.params[ref] * (1, 0, 1), size=SIZE, noise=False)
    eye = ((lab & MASK_LEFT_EYE) > 0).astype(np.uint8)
    assert eye.sum() > 8, "the generator's left eye is too small to measure"
    region = cv2.dilate(eye, np.ones((3, 3), np.uint8)) > 0
    base = engine.render(mouth_frame, (1, 1, 1), SIZE).rgb.astype(np.float64)
    closed = engine.render(mouth_frame, (0, 1, 1), SIZE).rgb.astype(np.float64)
    err_closed = np.abs(closed - shut).mean(axis=2)[region].mean()
    err_base = np.abs(base - shut).mean(axis=2)[region].mean()
    assert err_closed < 0.5 * err_base, (
        f"α1 = 0 render is not clearly closer to the generator's shut left eye: "
        f"{err_closed:.2f} vs {err_base:.2f} (α1 = 1)"
    )


def test_export_renders_the_same_frame_as_the_preview(
    demo_subject: Path, mouth_frame: int, tmp_path
) -> None:
    """The export renders its frames straight (no edit cache); they must equal the studio's."""
    from talkstudio.core.engine import Engine

    engine = Engine.open(demo_subject, device="cpu")  # nothing cached yet
    job = engine.export(tmp_path / "one.mp4", size=SIZE, start=mouth_frame, end=mouth_frame + 1)
    previews = []
    try:
        while True:
            previews.append(next(job).preview)
    except StopIteration as stop:
        assert Path(stop.value).is_file()
    exported = previews[0].astype(np.int16)
    shown = engine.render(mouth_frame, (1, 1, 1), SIZE).rgb.astype(np.int16)
    assert np.abs(exported - shown).max() <= 2
