"""α edits on landmark tracks and keyframe interpolation (docs/design.md "Editing")."""

from __future__ import annotations

import numpy as np
import pytest

from talkstudio.core.edit import (
    OPEN_FLOOR,
    AlphaTrack,
    EditError,
    Edits,
    TypicalOpening,
    apply_alphas,
)
from talkstudio.core.landmarks import eye_opening, mouth_opening


def face(mouth_gap: float = 0.12, eye_gap: float = 0.1) -> np.ndarray:
    """A frontal 68-point face in head units (x: subject's left, y: down)."""
    p = np.zeros((68, 3))
    p[:17, 0] = np.linspace(-0.7, 0.7, 17)
    p[:17, 1] = 0.2 + 0.6 * np.sin(np.linspace(0, np.pi, 17))

    def eye(first: int, cx: float) -> None:
        xs = cx + np.array([-0.15, -0.05, 0.05, 0.15, 0.05, -0.05])
        ys = -0.3 + np.array([0, -eye_gap / 2, -eye_gap / 2, 0, eye_gap / 2, eye_gap / 2])
        p[first : first + 6, 0], p[first : first + 6, 1] = xs, ys

    eye(36, -0.3)  # right eye (image left)
    eye(42, 0.3)  # left eye
    ox = np.array([-0.25, -0.15, -0.07, 0, 0.07, 0.15, 0.25, 0.15, 0.07, 0, -0.07, -0.15])
    oy = 0.45 + np.array([0, -0.06, -0.09, -0.08, -0.09, -0.06, 0, 0.1, 0.13, 0.14, 0.13, 0.1])
    p[48:60, 0], p[48:60, 1] = ox, oy
    ix = np.array([-0.2, -0.07, 0, 0.07, 0.2, 0.07, 0, -0.07])
    iy = 0.45 + np.array([0, -mouth_gap / 2] * 1 + [-mouth_gap / 2] * 2 + [0] + [mouth_gap / 2] * 3)
    p[60:68, 0], p[60:68, 1] = ix, iy
    p[:, 2] = 0.1 * p[:, 0] ** 2
    p[36:68, 1] += 0.08 * p[36:68, 0]  # asymmetric: the corner lines are not horizontal
    return p


def test_alpha_one_changes_nothing() -> None:
    pts = face()
    np.testing.assert_allclose(apply_alphas(pts, (1, 1, 1)), pts, atol=1e-12)


def test_mouth_doubles_and_closes() -> None:
    pts = face()
    base = mouth_opening(pts)
    assert mouth_opening(apply_alphas(pts, (1, 1, 2))) == pytest.approx(2 * base, rel=0.03)
    closed = apply_alphas(pts, (1, 1, 0))
    assert mouth_opening(closed) < 0.05 * base
    # The eyes are untouched by a mouth edit, the chin follows the lower lip downwards.
    np.testing.assert_allclose(closed[36:48], pts[36:48])
    opened = apply_alphas(pts, (1, 1, 2))
    assert opened[8, 1] > pts[8, 1] + 0.01
    np.testing.assert_allclose(opened[[0, 16, 27, 30]], pts[[0, 16, 27, 30]])
    # Lip thickness is kept: outer-to-inner distance of the upper lip centre.
    thick = np.linalg.norm(pts[51] - pts[62])
    assert np.linalg.norm(opened[51] - opened[62]) == pytest.approx(thick, rel=0.05)


def test_left_eye_only() -> None:
    pts = face()
    out = apply_alphas(pts, (0, 1, 1))
    assert eye_opening(out, left=True) < 0.01
    assert eye_opening(out, left=False) == pytest.approx(eye_opening(pts, left=False))
    np.testing.assert_allclose(out[36:42], pts[36:42])
    np.testing.assert_allclose(out[48:], pts[48:])
    wide = apply_alphas(pts, (2, 1, 1))
    assert eye_opening(wide, left=True) == pytest.approx(2 * eye_opening(pts, left=True), rel=0.02)


def _talking_track() -> np.ndarray:
    """A track [40, 68, 3] whose mouth opens 0.12 and eyes 0.1 mostly, with closed frames: the
    mouth shut at frames 5–9, a blink of the left eye at 20 and of both eyes at 30."""
    mouth = np.where((np.arange(40) >= 5) & (np.arange(40) < 10), 0.0, 0.12)
    frames = []
    for t, m in enumerate(mouth):
        p = face(mouth_gap=m, eye_gap=0.0 if t == 30 else 0.1)
        if t == 20:
            p[42:48] = face(eye_gap=0.0)[42:48]
        frames.append(p)
    return np.stack(frames)


def test_alpha_above_one_opens_a_closed_mouth_by_the_typical_opening() -> None:
    track = _talking_track()
    typical = TypicalOpening.of_track(track)
    base = mouth_opening(track[0])  # the typical (speaking) opening
    alphas = np.tile([1.0, 1.0, 2.0], (len(track), 1))
    opened = apply_alphas(track, alphas, typical)
    # Closed frames open to OPEN_FLOOR × typical at α3 = 2, and half as far at 1.5.
    assert mouth_opening(track[7]) < 1e-6
    assert mouth_opening(opened[7]) == pytest.approx(OPEN_FLOOR * base, rel=0.05)
    half = apply_alphas(track[7], (1, 1, 1.5), typical)
    assert mouth_opening(half) == pytest.approx(0.5 * OPEN_FLOOR * base, rel=0.05)
    # Open frames double as without the typical opening.
    np.testing.assert_allclose(opened[0], apply_alphas(track[0], (1, 1, 2)), atol=1e-12)
    # Without it, a closed mouth stays shut (what the typical opening is for).
    assert mouth_opening(apply_alphas(track[7], (1, 1, 2))) < 1e-6
    # The lower lip and the chin move down, the eyes stay.
    assert opened[7, 66, 1] > track[7, 66, 1] and opened[7, 8, 1] > track[7, 8, 1]
    np.testing.assert_allclose(opened[7, 36:48], track[7, 36:48])


def test_alpha_above_one_opens_a_blinking_eye() -> None:
    track = _talking_track()
    typical = TypicalOpening.of_track(track)
    open_eye = eye_opening(track[0], left=True)
    out = apply_alphas(track, np.tile([2.0, 2.0, 1.0], (len(track), 1)), typical)
    assert eye_opening(track[20], left=True) < 1e-6
    assert eye_opening(out[20], left=True) == pytest.approx(OPEN_FLOOR * open_eye, rel=0.05)
    # The right eye at frame 20 is open and doubles; both open at the double blink.
    assert eye_opening(out[20], left=False) == pytest.approx(2 * open_eye, rel=0.02)
    assert eye_opening(out[30], left=False) == pytest.approx(OPEN_FLOOR * open_eye, rel=0.05)
    # Only α1 asked: the right eye of the double blink stays shut, the mouth is untouched.
    only_left = apply_alphas(track[30], (2, 1, 1), typical)
    assert eye_opening(only_left, left=False) < 1e-6
    np.testing.assert_allclose(only_left[48:], track[30, 48:])


def test_typical_opening_leaves_alpha_up_to_one_alone() -> None:
    track = _talking_track()
    typical = TypicalOpening.of_track(track)
    alphas = np.random.default_rng(1).uniform(0, 1, (len(track), 3))
    alphas[::4] = 1.0
    np.testing.assert_array_equal(apply_alphas(track, alphas, typical), apply_alphas(track, alphas))
    # α = 1 is exactly the identity, with or without the typical opening.
    np.testing.assert_array_equal(apply_alphas(track, (1, 1, 1), typical), track)
    with pytest.raises(EditError, match="landmark track"):
        TypicalOpening.of_track(track[0])


def test_typical_opening_of_odd_tracks_is_finite() -> None:
    """Random points (lips crossed, no open mouth anywhere) and a single frame still give a
    finite typical opening, so α > 1 never turns landmarks into NaN."""
    rng = np.random.default_rng(0)
    for track in (rng.normal(0, 0.3, (12, 68, 3)), face(mouth_gap=-0.05)[None]):
        typical = TypicalOpening.of_track(track)
        for part in (typical.left_eye, typical.right_eye, typical.upper_lip, typical.lower_lip):
            assert np.all(np.isfinite(part))
        assert np.all(np.isfinite(apply_alphas(track, (2, 2, 2), typical)))


def test_batched_per_frame_alphas() -> None:
    track = np.stack([face(), face(0.2), face(0.05)])
    alphas = np.array([[1, 1, 2], [1, 0, 1], [0.5, 1, 0]])
    out = apply_alphas(track, alphas)
    for t in range(3):
        np.testing.assert_allclose(out[t], apply_alphas(track[t], alphas[t]), atol=1e-12)


def test_out_of_range_refused() -> None:
    with pytest.raises(EditError, match="between 0 and 2"):
        apply_alphas(face(), (1, 1, 2.5))
    with pytest.raises(EditError, match="mouth"):
        AlphaTrack("mouth").set(3, -0.1)
    with pytest.raises(EditError):
        AlphaTrack("mouth").set(3, float("nan"))


def test_keyframe_interpolation() -> None:
    track = AlphaTrack("mouth")
    assert track.value_at(10) == 1.0  # no keyframes: as predicted
    track.set(10, 2.0)
    track.set(20, 0.0)
    assert track.value_at(0) == 2.0  # held before the first
    assert track.value_at(10) == 2.0  # at
    assert track.value_at(15) == pytest.approx(1.0)  # between
    assert track.value_at(17.5) == pytest.approx(0.5)
    assert track.value_at(99) == 0.0  # held after the last
    np.testing.assert_allclose(track.values(25)[[0, 10, 15, 20, 24]], [2, 2, 1, 0, 0])
    track.move(20, 30)
    assert track.value_at(20) == pytest.approx(1.0)
    track.remove(10)
    assert track.value_at(0) == 0.0
    with pytest.raises(EditError, match="no mouth keyframe at frame 10"):
        track.remove(10)


def test_edits_json_round_trip() -> None:
    edits = Edits.constant(mouth=1.5)
    edits.left_eye.set(4, 0.0)
    again = Edits.from_json(edits.to_json())
    np.testing.assert_allclose(again.alphas(10), edits.alphas(10))
    assert again.alphas_at(0).tolist() == [0.0, 1.0, 1.5]
    with pytest.raises(EditError):
        Edits.from_json({"mouth": [[1, 7.0]]})
