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

Beyond the three α, the same keyframed tracks carry three more channels (:data:`CHANNELS`):

- ``brows`` in [-1, 1] (0: as predicted): the brows (17–26) move along the head frame's vertical
  axis, towards the forehead for b > 0, by ``b × BROW_GAIN`` times the subject's eye-brow
  distance (:attr:`TypicalOpening.brow_gap`);
- ``blink``: each keyframe inserts a blink at its frame, its value the depth in [0, 1]
  (:func:`talkstudio.core.blinks.inserted_openings`); :attr:`Edits.blink_rate` sets the rate of
  the synthesised blinks;
- ``head_motion`` in [0, 2] (1: as the reference): the looped reference pose's rotation and
  translation about their mean are scaled by it, 0 holding the mean pose (the engine's
  ``DrivingTrack.pose_at``).

What a frame is rendered with is its :data:`FrameEdit` (:meth:`Edits.frame_edits`), and
:func:`apply_frame_edit` moves the landmarks by it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .blinks import BlinkSchedule, check_blink_rate, inserted_openings
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
_BROWS = list(range(17, 27))
_EYE_POINTS = list(range(36, 48))
BROW_GAIN = 0.4
"""A brow raise of 1 moves the brows by this share of the subject's eye-brow distance."""


@dataclass(frozen=True)
class Channel:
    """One keyframed edit channel: its range, the value that leaves the track as it is, and
    what its values mean (for error messages)."""

    lo: float
    hi: float
    neutral: float
    meaning: str


_ALPHA_MEANING = "0 closes, 1 leaves as predicted, 2 doubles the opening"
CHANNELS = {
    "left_eye": Channel(0.0, 2.0, 1.0, _ALPHA_MEANING),
    "right_eye": Channel(0.0, 2.0, 1.0, _ALPHA_MEANING),
    "mouth": Channel(0.0, 2.0, 1.0, _ALPHA_MEANING),
    "brows": Channel(-1.0, 1.0, 0.0, "-1 lowers the brows, 0 leaves them, 1 raises them"),
    "blink": Channel(0.0, 1.0, 0.0, "a blink's depth: 1 closes the eyes, 0 not at all"),
    "head_motion": Channel(
        0.0, 2.0, 1.0, "0 holds the head still, 1 moves it as the reference, 2 doubles the motion"
    ),
}
"""Every keyframed channel by name: the three α, then the brows, blinks and head motion."""
CHANNEL_NAMES = tuple(CHANNELS)
"""Order of the channels (the three α first, in ALPHA_NAMES order)."""
CURVE_CHANNELS = ("brows", "head_motion")
"""Channels beyond the α whose keys are linearly interpolated values (``blink`` keys are events)."""

FrameEdit = tuple[float, float, float, float, float, float, float]
"""What one frame is rendered with: (α1, α2, α3, brows, synthesised-blink opening, inserted-blink
opening, head motion). The synthesised-blink opening is -1 for "the track's own automatic
blinks" (the driving track as built), else the factor applied to the track before its blinks."""
FRAME_EDIT_FIELDS = (*ALPHA_NAMES, "brows", "synth_blink", "blink", "head_motion")
NEUTRAL_EDIT: FrameEdit = (1.0, 1.0, 1.0, 0.0, -1.0, 1.0, 1.0)
"""The frame edit of a frame nobody edited."""


class EditError(TalkstudioError):
    """An edit value or keyframe is out of range or malformed."""


def check_value(name: str, value: float) -> float:
    """``value`` as float when it lies in channel ``name``'s range; else a clear :class:`EditError`."""
    spec = CHANNELS.get(name)
    if spec is None or name in ALPHA_NAMES:
        return check_alpha(name, value)
    v = float(value)
    if not np.isfinite(v) or not spec.lo <= v <= spec.hi:
        raise EditError(
            f"{name.replace('_', ' ')} must be between {spec.lo:g} and {spec.hi:g} "
            f"({spec.meaning}); got {value!r}"
        )
    return v


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
    brow_gap: float | None = None
    """Signed distance along y from the eyes' centre to the brows' centre (points 36–47 and
    17–26): how far a brow raise of 1 / BROW_GAIN moves the brows, and in which direction."""

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
            brow_gap=float(np.median(_brow_gaps(lm))),
        )


def _brow_gaps(points: np.ndarray) -> np.ndarray:
    """Signed y distance [...] from the eyes' centre to the brows' centre of ``points``."""
    return points[..., _BROWS, 1].mean(-1) - points[..., _EYE_POINTS, 1].mean(-1)


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


def frame_edit(values: object) -> FrameEdit:
    """A :data:`FrameEdit` from ``values``: seven values, or the three α alone (the rest as
    nobody edited them); checked and rounded to 4 decimals, as render requests carry them."""
    v = [float(x) for x in np.asarray(values, dtype=np.float64).reshape(-1)]
    if len(v) == 3:
        v = [*v, *NEUTRAL_EDIT[3:]]
    if len(v) != len(NEUTRAL_EDIT):
        raise EditError(
            f"a frame edit has 3 values (α1, α2, α3) or {len(NEUTRAL_EDIT)} "
            f"({', '.join(FRAME_EDIT_FIELDS)}); got {len(v)}"
        )
    for name, x in zip((*ALPHA_NAMES, "brows"), v[:4]):
        check_value(name, x)
    check_value("head_motion", v[6])
    for name, x, lo in (("synthesised-blink", v[4], -1.0), ("blink", v[5], 0.0)):
        if not np.isfinite(x) or not lo <= x <= 1.0:
            raise EditError(f"a {name} eye opening must be between {lo:g} and 1; got {x!r}")
    r = [round(x, 4) for x in v]
    return (r[0], r[1], r[2], r[3], r[4], r[5], r[6])


def frame_edit_rows(table: np.ndarray) -> list[FrameEdit]:
    """:func:`frame_edit` of every row of ``table`` [T, 7], checked at once (a long clip's table
    after each edit: ~20× faster than row by row), rounded exactly as :func:`frame_edit` rounds."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != len(NEUTRAL_EDIT):
        raise EditError(
            f"a frame-edit table has shape [frames, {len(NEUTRAL_EDIT)}]; got {t.shape}"
        )
    lo = np.array([CHANNELS[n].lo for n in (*ALPHA_NAMES, "brows")] + [-1.0, 0.0, 0.0])
    hi = np.array([CHANNELS[n].hi for n in (*ALPHA_NAMES, "brows")] + [1.0, 1.0, 2.0])
    bad = ~((t >= lo) & (t <= hi))  # NaN is bad too
    if bad.any():
        frame_edit(t[np.flatnonzero(bad.any(axis=1))[0]])  # raises the row's own clear error
    return [
        (round(a, 4), round(b, 4), round(c, 4), round(d, 4), round(e, 4), round(f, 4), round(g, 4))
        for a, b, c, d, e, f, g in t.tolist()
    ]


def apply_frame_edit(
    landmarks: np.ndarray, edit: np.ndarray | FrameEdit, typical: TypicalOpening | None = None
) -> np.ndarray:
    """Edited copy of head-frame ``landmarks`` [..., 68, 3] by ``edit`` [..., 7] (:data:`FrameEdit`).

    In order: the synthesised-blink opening scales both eyes' lids (a negative value leaves them:
    the landmarks already carry the track's own blinks), then the α (:func:`apply_alphas`), then
    the inserted-blink opening scales both eyes' lids (so an inserted blink closes the eyes
    whatever α1 and α2 are), then the brows (17–26, nothing else) move along y by
    ``brows × BROW_GAIN × brow_gap``. Head motion moves the pose, not the landmarks.
    """
    e = np.broadcast_to(np.asarray(edit, dtype=np.float64), (*np.shape(landmarks)[:-2], 7))
    base = np.array(landmarks, dtype=np.float64, copy=True)
    synth = np.where(e[..., 4] < 0, 1.0, e[..., 4])
    for group in (_LEFT_EYE, _RIGHT_EYE):
        _scale_eye(base, group, synth, None)
    pts = apply_alphas(base, e[..., :3], typical).astype(np.float64)
    for group in (_LEFT_EYE, _RIGHT_EYE):
        _scale_eye(pts, group, e[..., 5], None)
    if typical is not None and typical.brow_gap is not None:
        gap: np.ndarray | float = typical.brow_gap
    else:
        gap = _brow_gaps(pts)
    pts[..., _BROWS, 1] += (e[..., 3] * BROW_GAIN * gap)[..., None]
    return pts.astype(np.asarray(landmarks).dtype, copy=False)


@dataclass
class AlphaTrack:
    """Keyframes of one channel (an α, or another of :data:`CHANNELS`) over frame numbers; linear
    between them, held outside, the channel's neutral value (1 for an α) without any."""

    name: str
    keys: dict[int, float] = field(default_factory=dict)

    def set(self, frame: int, value: float) -> None:
        if frame < 0:
            raise EditError(f"keyframe frame must be >= 0, got {frame}")
        self.keys[int(frame)] = check_value(self.name, value)

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

    @property
    def neutral(self) -> float:
        spec = CHANNELS.get(self.name)
        return 1.0 if spec is None else spec.neutral

    def value_at(self, frame: float) -> float:
        if not self.keys:
            return self.neutral
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
            return np.full(count, self.neutral)
        frames = sorted(self.keys)
        return np.interp(np.arange(count), frames, [self.keys[f] for f in frames])


@dataclass
class Edits:
    """The keyframed channels of a project (the three α, brows, blinks, head motion) and the
    rate of the synthesised blinks."""

    left_eye: AlphaTrack = field(default_factory=lambda: AlphaTrack("left_eye"))
    right_eye: AlphaTrack = field(default_factory=lambda: AlphaTrack("right_eye"))
    mouth: AlphaTrack = field(default_factory=lambda: AlphaTrack("mouth"))
    brows: AlphaTrack = field(default_factory=lambda: AlphaTrack("brows"))
    blink: AlphaTrack = field(default_factory=lambda: AlphaTrack("blink"))
    head_motion: AlphaTrack = field(default_factory=lambda: AlphaTrack("head_motion"))
    blink_rate: float | None = None
    """Synthesised blinks per minute; None: automatic (the driving track's own choice)."""

    def track(self, name: str) -> AlphaTrack:
        if name not in CHANNEL_NAMES:
            raise EditError(f"unknown edit {name!r}; expected one of {', '.join(CHANNEL_NAMES)}")
        track: AlphaTrack = getattr(self, name)
        return track

    def alphas_at(self, frame: float) -> np.ndarray:
        """(α1, α2, α3) at ``frame`` [3]."""
        return np.array([self.track(n).value_at(frame) for n in ALPHA_NAMES])

    def alphas(self, count: int) -> np.ndarray:
        """(α1, α2, α3) for frames 0..count-1 [count, 3]."""
        return np.stack([self.track(n).values(count) for n in ALPHA_NAMES], axis=1)

    def frame_edits(self, count: int, blinks: BlinkSchedule | None = None) -> np.ndarray:
        """The :data:`FrameEdit` of frames 0..count-1 [count, 7] (not rounded).

        ``blinks``: how the driving track synthesises blinks; needed only to place them at a
        chosen :attr:`blink_rate` (without it a chosen rate adds no blink). With the automatic
        rate the synthesised-blink column is -1: the track's own blinks.
        """
        out = np.empty((count, 7))
        out[:, :3] = self.alphas(count)
        out[:, 3] = self.brows.values(count)
        if self.blink_rate is None:
            out[:, 4] = -1.0
        elif blinks is None:
            out[:, 4] = 1.0
        else:
            out[:, 4] = blinks.factors(count, self.blink_rate)
        out[:, 5] = inserted_openings(self.blink.keys, count)
        out[:, 6] = self.head_motion.values(count)
        return out

    @classmethod
    def constant(cls, left_eye: float = 1.0, right_eye: float = 1.0, mouth: float = 1.0) -> Edits:
        """Edits holding one value per factor over the whole clip."""
        edits = cls()
        for name, value in zip(ALPHA_NAMES, (left_eye, right_eye, mouth)):
            if value != 1.0:
                edits.track(name).set(0, value)
        return edits

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            n: [[f, v] for f, v in sorted(self.track(n).keys.items())] for n in CHANNEL_NAMES
        }
        out["blink_rate"] = self.blink_rate
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Edits:
        """Edits from :meth:`to_json`'s object; channels it lacks (a project saved before they
        existed) have no keyframes, and a missing blink rate is automatic."""
        if not isinstance(raw, dict):
            raise EditError("keyframes must be an object with left_eye, right_eye and mouth lists")
        edits = cls()
        for name in CHANNEL_NAMES:
            for item in raw.get(name, []):
                if not (isinstance(item, list | tuple) and len(item) == 2):
                    raise EditError(f"{name} keyframe {item!r} must be [frame, value]")
                edits.track(name).set(int(item[0]), float(item[1]))
        edits.blink_rate = check_blink_rate(raw.get("blink_rate"))
        return edits
