"""Eye and mouth edits on a landmark track (paper Sec. V-D; the rule is written out in docs/edit.md).

Three factors, each in [0, 2] with 1 meaning "as predicted":

- α1 — the subject's left eye (iBUG 42–47, corners 42 and 45);
- α2 — the subject's right eye (36–41, corners 36 and 39);
- α3 — the mouth (48–67, corners 48 and 54), with the lower lip's displacement carried,
  attenuated, to the chin points 6–10 so that the jaw opens with the mouth.

All edits happen in the head frame, along its vertical axis (y). For an eye every point's
vertical offset from the line through the eye's corners is multiplied by α: 0 puts both lids on
that line (closed), 2 doubles the lid gap. For the mouth the lips move as wholes, keeping their
thickness: each upper-lip point moves by (α − 1) times the inner upper lip's offset from the corner
line at its x, each lower-lip point likewise with the inner lower lip, so the inner-lip gap (62–66)
is multiplied by α and α = 0 closes the lips onto each other.

α > 1 opens relative to the subject's typical opening (:class:`TypicalOpening`), so that it also
opens an eye or a mouth that is closed in the frame: each point moves by (α − 1) times the larger
of its current offset and :data:`OPEN_FLOOR` times its typical offset. Frames already open at
least that far double their opening at α = 2 as before; a closed frame opens to
``OPEN_FLOOR × typical`` at α = 2. α ≤ 1 only ever scales the current opening, and α = 1 leaves
every point exactly where it is.

Values are keyframed per factor (:class:`AlphaTrack`): linear between keyframes, held before
the first and after the last, 1 everywhere when a factor has none.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import TalkstudioError

ALPHA_MIN, ALPHA_MAX = 0.0, 2.0
ALPHA_NAMES = ("left_eye", "right_eye", "mouth")
"""Order of (α1, α2, α3)."""

_LEFT_EYE = (list(range(42, 48)), (42, 45))
_RIGHT_EYE = (list(range(36, 42)), (36, 39))
_MOUTH_CORNERS = (48, 54)
_UPPER_LIP = [49, 50, 51, 52, 53, 61, 62, 63]
_LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
_INNER_UPPER = [60, 61, 62, 63, 64]  # with the inner corners, sorted by x below
_INNER_LOWER = [60, 67, 66, 65, 64]
_CHIN = {6: 0.35, 7: 0.65, 8: 0.8, 9: 0.65, 10: 0.35}
"""Share of the lower lip's centre displacement that each chin point follows."""
OPEN_FLOOR = 0.8
"""α > 1 opens each point by at least this share of its typical offset times (α − 1)."""


class EditError(TalkstudioError):
    """An edit value or keyframe is out of range or malformed."""


def check_alpha(name: str, value: float) -> float:
    """``value`` as float when it lies in [0, 2]; otherwise a clear :class:`EditError`."""
    v = float(value)
    if not np.isfinite(v) or not ALPHA_MIN <= v <= ALPHA_MAX:
        raise EditError(
            f"α for {name.replace('_', ' ')} must be between {ALPHA_MIN:g} and {ALPHA_MAX:g} "
            f"(0 closes, 1 leaves as predicted, 2 doubles the opening); got {value!r}"
        )
    return v


def _corner_line_y(points: np.ndarray, corners: tuple[int, int], x: np.ndarray) -> np.ndarray:
    """y of the line through the two corner points, at head-frame x; [...] for x [..., N]."""
    a, b = points[..., corners[0], :], points[..., corners[1], :]  # [..., 3]
    dx = b[..., 0:1] - a[..., 0:1]
    t = (x - a[..., 0:1]) / np.where(np.abs(dx) < 1e-9, 1e-9, dx)
    return a[..., 1:2] + t * (b[..., 1:2] - a[..., 1:2])


def _eye_offsets(points: np.ndarray, group: tuple[list[int], tuple[int, int]]) -> np.ndarray:
    """Vertical offsets [..., 6] of an eye's points from the line through its corners."""
    idx, corners = group
    return points[..., idx, 1] - _corner_line_y(points, corners, points[..., idx, 0])


def _opening_step(offset: np.ndarray, typical: np.ndarray | None) -> np.ndarray:
    """What α − 1 multiplies when α > 1: ``offset`` [..., N], or at least OPEN_FLOOR × ``typical``
    [N] in the typical direction (unchanged ``offset`` without a typical opening)."""
    if typical is None:
        return offset
    sign = np.where(typical < 0, -1.0, 1.0)  # [N]
    return sign * np.maximum(sign * offset, OPEN_FLOOR * np.abs(typical))


def _scale_eye(
    points: np.ndarray,
    group: tuple[list[int], tuple[int, int]],
    alpha: np.ndarray,
    typical: np.ndarray | None,
) -> None:
    idx, _ = group
    offset = _eye_offsets(points, group)  # [..., 6]
    a = alpha[..., None]  # [..., 1]
    step = np.where(a > 1.0, _opening_step(offset, typical), offset)
    points[..., idx, 1] += (a - 1.0) * step


def _inner_offset_at(points: np.ndarray, inner: list[int], x: np.ndarray) -> np.ndarray:
    """Offset of an inner-lip contour from the mouth corner line, interpolated at x [..., N]."""
    contour = points[..., inner, :]  # [..., 5, 3]
    offsets = contour[..., 1] - _corner_line_y(points, _MOUTH_CORNERS, contour[..., 0])
    offsets[..., 0] = 0.0  # the inner corners sit on the line by construction
    offsets[..., -1] = 0.0
    flat_x = contour[..., 0].reshape(-1, len(inner))
    flat_o = offsets.reshape(-1, len(inner))
    flat_q = x.reshape(len(flat_x), -1)
    out = np.empty_like(flat_q)
    for k in range(len(flat_x)):
        order = np.argsort(flat_x[k])
        out[k] = np.interp(flat_q[k], flat_x[k][order], flat_o[k][order])
    return out.reshape(x.shape)


def _lip_offsets(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inner upper and lower lip offsets from the corner line at the x of every upper [..., 8]
    and lower [..., 8] lip point: how far each lip point moves per unit of α − 1."""
    up = _inner_offset_at(points, _INNER_UPPER, points[..., _UPPER_LIP, 0])
    low = _inner_offset_at(points, _INNER_LOWER, points[..., _LOWER_LIP, 0])
    return up, low


def _open_mouth(points: np.ndarray, alpha: np.ndarray, typical: TypicalOpening | None) -> None:
    a = alpha[..., None]  # [..., 1]
    gain = a - 1.0
    up, low = _lip_offsets(points)
    if typical is not None:
        up = np.where(a > 1.0, _opening_step(up, typical.upper_lip), up)
        low = np.where(a > 1.0, _opening_step(low, typical.lower_lip), low)
    up = gain * up
    low = gain * low
    centre_shift = low[..., _LOWER_LIP.index(66)]  # [...]
    points[..., _UPPER_LIP, 1] += up
    points[..., _LOWER_LIP, 1] += low
    for i, share in _CHIN.items():
        points[..., i, 1] += share * centre_shift


@dataclass(frozen=True)
class TypicalOpening:
    """A subject's typical eye and mouth opening: what α > 1 opens a closed eye or mouth by.

    Offsets are in head units along the head frame's y, measured from the corner lines the edits
    use, one value per point the edit moves.
    """

    left_eye: np.ndarray  # [6] points 42–47
    right_eye: np.ndarray  # [6] points 36–41
    upper_lip: np.ndarray  # [8] the inner upper lip's offset at each upper-lip point
    lower_lip: np.ndarray  # [8] the inner lower lip's offset at each lower-lip point

    @classmethod
    def of_track(cls, landmarks: np.ndarray) -> TypicalOpening:
        """The typical opening of a head-frame track [T, 68, 3] (e.g. a subject's training
        frames): per point, the median offset over all frames for the eyes (blinks are rare, so
        that is an open eye) and over the frames whose mouth is at least half as open as the
        track's widest tenth for the mouth (the mouth while speaking)."""
        lm = np.asarray(landmarks, dtype=np.float64)
        if lm.ndim != 3 or lm.shape[1:] != (68, 3) or len(lm) == 0:
            raise EditError(
                f"a typical opening needs a landmark track [frames, 68, 3]; got {lm.shape}"
            )
        up, low = _lip_offsets(lm)  # [T, 8] each
        gap = low[:, _LOWER_LIP.index(66)] - up[:, _UPPER_LIP.index(62)]  # [T]
        widest = float(np.quantile(gap, 0.9))
        speaking = gap >= (0.5 * widest if widest > 0 else widest)  # never empty
        return cls(
            left_eye=np.median(_eye_offsets(lm, _LEFT_EYE), axis=0),
            right_eye=np.median(_eye_offsets(lm, _RIGHT_EYE), axis=0),
            upper_lip=np.median(up[speaking], axis=0),
            lower_lip=np.median(low[speaking], axis=0),
        )


def apply_alphas(
    landmarks: np.ndarray,
    alphas: np.ndarray | tuple[float, float, float],
    typical: TypicalOpening | None = None,
) -> np.ndarray:
    """Edited copy of head-frame ``landmarks`` [..., 68, 3] with ``alphas`` [..., 3] (α1, α2, α3).

    ``typical``: the subject's typical opening, which α > 1 opens a closed eye or mouth by
    (see the module docstring); without it α > 1 only scales the frame's own opening.
    """
    pts = np.array(landmarks, dtype=np.float64, copy=True)
    a = np.broadcast_to(np.asarray(alphas, dtype=np.float64), (*pts.shape[:-2], 3))
    if np.any(a < ALPHA_MIN) or np.any(a > ALPHA_MAX) or not np.all(np.isfinite(a)):
        bad = a[(a < ALPHA_MIN) | (a > ALPHA_MAX) | ~np.isfinite(a)].ravel()[0]
        check_alpha("an edit", float(bad))
    _scale_eye(pts, _LEFT_EYE, a[..., 0], None if typical is None else typical.left_eye)
    _scale_eye(pts, _RIGHT_EYE, a[..., 1], None if typical is None else typical.right_eye)
    _open_mouth(pts, a[..., 2], typical)
    return pts.astype(np.asarray(landmarks).dtype, copy=False)


@dataclass
class AlphaTrack:
    """Keyframes of one α over frame numbers; linear between them, held outside."""

    name: str
    keys: dict[int, float] = field(default_factory=dict)

    def set(self, frame: int, value: float) -> None:
        if frame < 0:
            raise EditError(f"keyframe frame must be >= 0, got {frame}")
        self.keys[int(frame)] = check_alpha(self.name, value)

    def remove(self, frame: int) -> None:
        if frame not in self.keys:
            raise EditError(f"no {self.name.replace('_', ' ')} keyframe at frame {frame}")
        del self.keys[frame]

    def move(self, old: int, new: int) -> None:
        value = self.keys.get(old)
        if value is None:
            raise EditError(f"no {self.name.replace('_', ' ')} keyframe at frame {old}")
        self.remove(old)
        self.set(new, value)

    def value_at(self, frame: float) -> float:
        if not self.keys:
            return 1.0
        frames = sorted(self.keys)
        k = bisect.bisect_right(frames, frame)
        if k == 0:
            return self.keys[frames[0]]
        if k == len(frames):
            return self.keys[frames[-1]]
        f0, f1 = frames[k - 1], frames[k]
        w = (frame - f0) / (f1 - f0)
        return (1 - w) * self.keys[f0] + w * self.keys[f1]

    def values(self, count: int) -> np.ndarray:
        """Values at frames 0..count-1 as float64 [count]."""
        if not self.keys:
            return np.ones(count)
        frames = sorted(self.keys)
        return np.interp(np.arange(count), frames, [self.keys[f] for f in frames])


@dataclass
class Edits:
    """The three keyframed factors of a project."""

    left_eye: AlphaTrack = field(default_factory=lambda: AlphaTrack("left_eye"))
    right_eye: AlphaTrack = field(default_factory=lambda: AlphaTrack("right_eye"))
    mouth: AlphaTrack = field(default_factory=lambda: AlphaTrack("mouth"))

    def track(self, name: str) -> AlphaTrack:
        if name not in ALPHA_NAMES:
            raise EditError(f"unknown edit {name!r}; expected one of {', '.join(ALPHA_NAMES)}")
        track: AlphaTrack = getattr(self, name)
        return track

    def alphas_at(self, frame: float) -> np.ndarray:
        """(α1, α2, α3) at ``frame`` [3]."""
        return np.array([self.track(n).value_at(frame) for n in ALPHA_NAMES])

    def alphas(self, count: int) -> np.ndarray:
        """(α1, α2, α3) for frames 0..count-1 [count, 3]."""
        return np.stack([self.track(n).values(count) for n in ALPHA_NAMES], axis=1)

    @classmethod
    def constant(cls, left_eye: float = 1.0, right_eye: float = 1.0, mouth: float = 1.0) -> Edits:
        """Edits holding one value per factor over the whole clip."""
        edits = cls()
        for name, value in zip(ALPHA_NAMES, (left_eye, right_eye, mouth)):
            if value != 1.0:
                edits.track(name).set(0, value)
        return edits

    def to_json(self) -> dict[str, Any]:
        return {n: [[f, v] for f, v in sorted(self.track(n).keys.items())] for n in ALPHA_NAMES}

    @classmethod
    def from_json(cls, raw: Any) -> Edits:
        if not isinstance(raw, dict):
            raise EditError("keyframes must be an object with left_eye, right_eye and mouth lists")
        edits = cls()
        for name in ALPHA_NAMES:
            for item in raw.get(name, []):
                if not (isinstance(item, list | tuple) and len(item) == 2):
                    raise EditError(f"{name} keyframe {item!r} must be [frame, value]")
                edits.track(name).set(int(item[0]), float(item[1]))
        return edits
