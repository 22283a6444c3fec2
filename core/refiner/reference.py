"""The mouth reference: a real training frame's mouth, aligned onto the frame being refined.

The head NeRF renders the mouth at L (128² in the preview preset), where teeth and the inner
lips are a pixel or two; no upsampling network can know from that what they looked like. The
subject's own video does: some training frame had a mouth of nearly this shape, sharp at the
subject's full resolution. :class:`MouthBank` finds that frame (the nearest mouth shape in the
head frame, so pose does not matter) and :func:`aligned_mouth` warps its mouth region onto the
wanted mouth (a similarity transform of the 20 lip points in the image) with a feathered mask.
The refiner (``RefinerConfig.mouth_reference``) reads the result as four more guide channels at
its full-resolution stages and learns how much of it to take.

Training takes the reference from frames at least :data:`EXCLUDE_FRAMES` away from the frame
itself, so the refiner learns to use another moment's teeth, as it must for new speech.

Along a clip, the pick of each frame on its own jumps to another training frame on about 0.6 of
consecutive frames, and the teeth change with it. :meth:`MouthBank.plan` chooses the sources of a
run of frames together instead: a jump costs :data:`SWITCH_COST`, keeping the source or going on
to the next frame of the training video is free, so the mouth plays a stretch of real video
while it fits and jumps only where another fits clearly better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..geometry import project_head_points
from ..landmarks import MOUTH
from ..paste_back import smoothstep
from ..subject import Subject

EXCLUDE_FRAMES = 25
"""While training, frames closer than this (1 s at 25 fps) to the refined frame are not taken
as its reference: neighbours look alike, and copying one would teach nothing."""
MASK_MARGIN = 0.9
"""The mask fades out over this fraction of the mouth's width beyond the lips' outline (0.35
before the face limit of :func:`aligned_mouth`: wider, it brought other frames' cheek edges
along; with it, TaoKai's mouth sharpness ratio is 0.77 instead of 0.59 at the same head PSNR)."""
BEND_STEP = 4
"""Pixels between the points where :func:`lip_warp` evaluates its spline."""
FACE_INSET = 0.15
"""The mouth reference's mask stays this fraction of the mouth's width inside the face outline
of both frames (:func:`aligned_mouth`)."""
FACE = tuple(range(0, 27))
"""The face outline's landmarks: the jaw (0–16) and the brows (17–26)."""
RING_POINTS = 16
"""Points of the ring where :func:`lip_warp`'s bend is pinned to zero."""
CANDIDATES = 10
"""The reference is picked among this many nearest mouth shapes: the one seen largest in its own
frame relative to the wanted lips, since magnifying a real mouth blurs the detail it is taken
for (a subject who moves towards and away from the camera: TaoKai, mouth sharpness 0.69 from
the nearest shape alone, 0.78 with this pick)."""
SWITCH_COST = 0.4
"""What a jump to another source frame costs in :meth:`MouthBank.plan`, in units of a frame's
best shape distance: a planned source may fit up to 40 % worse than the nearest to spare a jump
(German_20s driven by two held-out voices: jumps on 0.23-0.35 of the frames instead of
0.58-0.60, docs/design.md "Refiner")."""
MAGNIFY_COST = 5.0
"""Cost per unit of magnification in :meth:`MouthBank.plan` (a source whose lips are smaller in
its image than the wanted ones are blurs when enlarged; see :data:`CANDIDATES`). TaoKai's mouth
sharpness ratio: 0.73 with 2, 0.78 with 5, 0.80 with 10, which costs 0.1 dB of head PSNR."""
ADVANCE_GAP = 3
"""Bank entries at most this many video frames apart follow each other in :meth:`MouthBank.plan`:
going from one to the next plays the training video on and is no jump."""
PLAN_REACH = 25
"""Frames on either side of a frame that the engine plans its source over
(:meth:`~talkstudio.core.engine.Engine.mouth_source`; 1 s: the frame's source is then the one a
plan of the whole clip gives, on German_20s already from 12 frames)."""


def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """[..., 60] descriptor of the 20 lip points of head-frame landmarks [..., 68, 3]: their
    offsets from their own centre (the mouth's shape, not its place)."""
    lips = np.asarray(landmarks, np.float64)[..., list(MOUTH), :]
    lips = lips - lips.mean(axis=-2, keepdims=True)
    return lips.reshape(*lips.shape[:-2], -1)


@dataclass
class MouthBank:
    """The training frames a reference may come from, with their mouth shapes."""

    frames: np.ndarray  # [N] subject frame numbers
    shapes: np.ndarray  # [N, 60]
    radii: np.ndarray  # [N] size of each frame's tracked lips in its image (lip_radius)

    @classmethod
    def build(cls, subject: Subject, frames: Sequence[int]) -> MouthBank:
        idx = np.asarray(list(frames), np.int64)
        if len(idx) == 0:
            raise ValueError("a mouth bank needs at least one frame")
        lms = np.asarray(subject.tracks.lm_world, np.float64)[idx]
        lips2d = np.asarray(subject.tracks.lm2d, np.float64)[idx][:, list(MOUTH)]
        return cls(idx, mouth_shape(lms), lip_radius(lips2d))

    def nearest(
        self,
        landmarks: np.ndarray,
        exclude_near: int | None = None,
        radius: float | None = None,
    ) -> int:
        """The subject frame whose mouth is closest in shape to head-frame ``landmarks``
        [68, 3]; with ``exclude_near`` = i, frames within :data:`EXCLUDE_FRAMES` of i are
        skipped (all of them when none is farther). With ``radius``, the size of the wanted lips
        in the image (:func:`lip_radius`), the pick among the :data:`CANDIDATES` nearest shapes
        is the nearest one that needs no magnifying, else the least magnified."""
        d = np.linalg.norm(self.shapes - mouth_shape(landmarks)[None], axis=1)
        if exclude_near is not None:
            far = np.abs(self.frames - exclude_near) >= EXCLUDE_FRAMES
            if far.any():
                d = np.where(far, d, np.inf)
        order = np.argsort(d, kind="stable")
        if radius is None:
            return int(self.frames[order[0]])
        cand = order[:CANDIDATES]
        cand = cand[np.isfinite(d[cand])] if np.isfinite(d[cand[0]]) else cand[:1]
        magnify = np.maximum(radius / np.maximum(self.radii[cand], 1e-9), 1.0)
        return int(self.frames[cand[int(np.argmin(magnify))]])  # first minimum: nearest shape

    def plan(self, landmarks: np.ndarray, radii: np.ndarray) -> np.ndarray:
        """[T] subject frames, the sources for a run of frames with head-frame ``landmarks``
        [T, 68, 3] whose lips are ``radii`` [T] in the image (:func:`lip_radius`): the path
        through the bank of least total cost, by dynamic programming. A frame's cost for a
        source is its shape distance relative to the frame's nearest (1 for the nearest) plus
        :data:`MAGNIFY_COST` times the magnification beyond 1; moving to another source costs
        :data:`SWITCH_COST` unless it keeps the source or advances to the next bank entry of the
        video (:data:`ADVANCE_GAP`)."""
        lms = np.asarray(landmarks, np.float64)
        count, size = len(lms), len(self.frames)
        if count == 0:
            return np.zeros(0, np.int64)
        dist = np.linalg.norm(self.shapes[None] - mouth_shape(lms)[:, None], axis=-1)  # [T, N]
        floor = np.maximum(
            dist.min(axis=1, keepdims=True), 1e-9 + 1e-3 * dist.mean(1, keepdims=True)
        )
        magnify = np.maximum(
            np.asarray(radii, np.float64)[:, None] / np.maximum(self.radii, 1e-9), 1
        )
        cost = dist / floor + MAGNIFY_COST * (magnify - 1.0)
        order = np.argsort(self.frames, kind="stable")  # advancing follows video time
        after = np.full(size, -1)  # after[j]: the entry that follows entry j, or -1
        close = np.diff(self.frames[order]) <= ADVANCE_GAP
        after[order[:-1][close]] = order[1:][close]
        before = np.full(size, -1)
        before[after[after >= 0]] = np.flatnonzero(after >= 0)
        total = cost[0].copy()
        back = np.zeros((count, size), np.int64)
        own = np.arange(size)
        for t in range(1, count):
            jump_from = int(np.argmin(total))
            best = np.full(size, total[jump_from] + SWITCH_COST)
            came = np.full(size, jump_from)
            has = before >= 0
            advance = np.where(has, total[np.maximum(before, 0)], np.inf)
            take = advance < best
            best[take], came[take] = advance[take], before[take]
            take = total <= best
            best[take], came[take] = total[take], own[take]
            back[t] = came
            total = best + cost[t]
        path = np.empty(count, np.int64)
        path[-1] = int(np.argmin(total))
        for t in range(count - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return self.frames[path]


def lip_radius(points: np.ndarray) -> np.ndarray:
    """Size of lips [..., 20, 2] in the image: the RMS distance of the points to their centre."""
    p = np.asarray(points, np.float64)
    return np.sqrt(((p - p.mean(axis=-2, keepdims=True)) ** 2).sum(axis=-1).mean(axis=-1))


def lip_points(subject: Subject, pose: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """[20, 2] image points (subject's size) of the lips of head-frame ``landmarks`` [68, 3]
    seen from ``pose``."""
    pts = np.asarray(landmarks, np.float64)[list(MOUTH)]
    K = np.asarray(subject.meta.K, np.float64)  # at the subject's size
    return np.asarray(project_head_points(K, np.asarray(pose, np.float64), pts), np.float64)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` [N, 2] to
    ``dst`` [N, 2] (Umeyama's closed form)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    var = float((a**2).sum())
    if var < 1e-12:
        return np.array([[1.0, 0.0, md[0] - ms[0]], [0.0, 1.0, md[1] - ms[1]]])
    cov = b.T @ a / len(src)
    u, s, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    d = np.diag([1.0, sign])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d)) / (var / len(src))
    shift = md - scale * rot @ ms
    return np.hstack([scale * rot, shift[:, None]])


Box = tuple[int, int, int, int]
"""(x0, y0, x1, y1): the pixels x0 <= x < x1, y0 <= y < y1 of a frame."""


def _whole(size: int) -> Box:
    return (0, 0, size, size)


def _mask_margin(points: np.ndarray) -> float:
    """Pixels over which :func:`mouth_mask` fades out beyond the lips."""
    return max(MASK_MARGIN * (float(np.ptp(points[:, 0])) or 1.0), 1.0)


def _face_inset(points: np.ndarray) -> float:
    """Pixels the mask of :func:`aligned_mouth` stays inside the face outlines."""
    return FACE_INSET * max(float(np.ptp(np.asarray(points)[:, 0])), 1.0)


def mouth_box(points: np.ndarray, size: int) -> Box:
    """The pixels where the reference of lips at ``points`` [20, 2] can be other than zero: the
    lips grown by the mask's margin, and by the face inset beyond it (the face masks measure
    depth from edges that far out), clipped to the frame."""
    pts = np.asarray(points, np.float64)
    grow = _mask_margin(pts) + _face_inset(pts) + 2.0
    lo = np.clip(np.floor(pts.min(axis=0) - grow), 0, size).astype(int)
    hi = np.clip(np.ceil(pts.max(axis=0) + grow) + 1, 0, size).astype(int)
    return int(lo[0]), int(lo[1]), int(max(hi[0], lo[0] + 1)), int(max(hi[1], lo[1] + 1))


def mouth_mask(points: np.ndarray, size: int, box: Box | None = None) -> np.ndarray:
    """[size, size] float mask in [0, 1]: 1 inside the lips' convex hull, falling smoothly to 0
    over :data:`MASK_MARGIN` of the mouth's width outside it. With ``box``, only those pixels
    of the frame ([y1 - y0, x1 - x0]; the same values where the box holds all of the fade)."""
    import cv2

    x0, y0, x1, y1 = box or _whole(size)
    margin = _mask_margin(points)
    hull = cv2.convexHull(np.round(points - np.array([x0, y0])).astype(np.int32))
    outside = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    cv2.fillConvexPoly(outside, hull, (0,))
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, 5)  # px to the hull, 0 inside
    return smoothstep(1.0 - dist / margin).astype(np.float32)


def lip_warp(
    src_points: np.ndarray, dst_points: np.ndarray, size: int, box: Box | None = None
) -> np.ndarray:
    """[size, size, 2] float32 map: for each pixel of the aligned mouth, where to read the
    reference frame whose lips are at ``src_points`` [20, 2], so that they land on
    ``dst_points`` [20, 2]. With ``box``, the map of those pixels only.

    The least-squares similarity (:func:`similarity`) places the mouth; a thin-plate spline
    through the 20 lip points then bends it so that every lip point lands on its target, and
    the nearest training mouth takes the wanted mouth's exact outline and opening (a similarity
    alone keeps the reference's own opening, and the rendered lips would follow the driving
    track only as far as the bank's nearest shape does). The spline is pinned to the similarity
    on a ring :data:`MASK_MARGIN` of the mouth's width outside the lips, where the mouth mask
    ends, so the bend stays inside the mouth region."""
    import cv2
    from scipy.interpolate import RBFInterpolator

    src = np.asarray(src_points, np.float64)
    dst = np.asarray(dst_points, np.float64)
    inverse = similarity(dst, src).astype(np.float32)  # dst image -> reference image
    x0, y0, x1, y1 = box or _whole(size)
    axis = np.arange(size, dtype=np.float32)
    ax, ay = axis[x0:x1], axis[y0:y1]
    out = np.empty((y1 - y0, x1 - x0, 2), np.float32)
    for k in range(2):  # the similarity's map, row by column
        out[..., k] = inverse[k, 0] * ax[None, :] + inverse[k, 1] * ay[:, None] + inverse[k, 2]
    residual = src - (dst @ inverse[:, :2].T.astype(np.float64) + inverse[:, 2])
    if np.abs(residual).max() < 1e-3:
        return out
    width = max(float(np.ptp(dst[:, 0])), 1.0)
    centre = dst.mean(axis=0)
    reach = np.abs(dst - centre).max(axis=0) + MASK_MARGIN * width  # half-axes of the ring
    angle = np.linspace(0.0, 2.0 * np.pi, RING_POINTS, endpoint=False)
    ring = centre + np.stack([np.cos(angle), np.sin(angle)], axis=1) * reach
    points, values = _merged(dst, residual)
    points = np.concatenate([points, ring])
    values = np.concatenate([values, np.zeros_like(ring)])
    spline = RBFInterpolator(points, values, kernel="thin_plate_spline", smoothing=0.5)
    lo = np.clip(np.floor(centre - reach).astype(int), [x0, y0], [x1 - 1, y1 - 1])
    hi = np.clip(np.ceil(centre + reach).astype(int) + 1, lo + 1, [x1, y1])
    # the bend is smooth: evaluated every BEND_STEP px and interpolated in between
    cx = np.arange(lo[0], hi[0] + BEND_STEP, BEND_STEP, dtype=np.float64)
    cy = np.arange(lo[1], hi[1] + BEND_STEP, BEND_STEP, dtype=np.float64)
    coarse = np.stack(np.meshgrid(cx, cy), axis=-1)  # [ny, nx, 2] (x, y)
    bend = spline(coarse.reshape(-1, 2)).reshape(coarse.shape).astype(np.float32)
    fx = (axis[lo[0] : hi[0]] - lo[0]) / BEND_STEP
    fy = (axis[lo[1] : hi[1]] - lo[1]) / BEND_STEP
    mx, my = np.meshgrid(fx, fy)
    fine = cv2.remap(bend, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    box = np.stack(np.meshgrid(axis[lo[0] : hi[0]], axis[lo[1] : hi[1]]), axis=-1)
    inside = (((box - centre) / reach) ** 2).sum(axis=-1) < 1.0
    # the similarity beyond the ring
    out[lo[1] - y0 : hi[1] - y0, lo[0] - x0 : hi[0] - x0] += fine * inside[..., None]
    return out


def _merged(points: np.ndarray, values: np.ndarray, within: float = 1.0):
    """Points closer than ``within`` px merged into one with their values' mean: a closed
    mouth puts inner-lip points on top of each other, and a spline cannot pass through two
    values at one place."""
    keep_p: list[np.ndarray] = []
    keep_v: list[list[np.ndarray]] = []
    for p, v in zip(points, values, strict=True):
        for k, q in enumerate(keep_p):
            if np.linalg.norm(p - q) < within:
                keep_v[k].append(v)
                break
        else:
            keep_p.append(p)
            keep_v.append([v])
    return np.array(keep_p), np.array([np.mean(v, axis=0) for v in keep_v])


def face_mask(outline: np.ndarray, size: int, inset: float, box: Box | None = None) -> np.ndarray:
    """[size, size] float mask in [0, 1]: 1 deeper than ``inset`` px inside the convex hull of
    face ``outline`` points [N, 2], falling smoothly to 0 at the hull. With ``box``, only those
    pixels (the same values where they lie at least ``inset`` inside the box, or nearer the
    hull's edge than the box's)."""
    import cv2

    x0, y0, x1, y1 = box or _whole(size)
    hull = cv2.convexHull(np.round(outline - np.array([x0, y0])).astype(np.int32))
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(inside, hull, (255,))
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)  # px to the hull, 0 outside
    return smoothstep(depth / max(inset, 1.0)).astype(np.float32)


def aligned_mouth(
    image: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    src_face: np.ndarray | None = None,
    dst_face: np.ndarray | None = None,
    box: Box | None = None,
) -> np.ndarray:
    """[S, S, 4] float in [0, 1]: ``image`` (uint8 [S, S, 3], a frame whose lips are at
    ``src_points`` [20, 2]) warped so its lips land on ``dst_points`` (:func:`lip_warp`), and
    the feathered mouth mask around ``dst_points``; the colour is zero outside the mask.

    With the face outlines of both frames (``src_face`` and ``dst_face`` [N, 2], the jaw and
    brow points), the mask also stays :data:`FACE_INSET` of the mouth's width inside both: the
    mouth region of another frame never brings that frame's cheek edge or background along, nor
    covers the wanted face's own edge.

    Only the pixels of :func:`mouth_box` are computed (a tenth of a 512² frame for a
    frame-filling face), the rest is zero; ``box`` sets another (the whole frame, say).
    """
    import cv2

    size = image.shape[0]
    box = box or mouth_box(dst_points, size)
    x0, y0, x1, y1 = box
    where = lip_warp(src_points, dst_points, size, box)
    # bicubic: bilinear resampling at sub-pixel shifts smooths away the fine detail the
    # reference is there for (German_20s: mouth sharpness ratio 0.63 bilinear, 0.90 bicubic)
    warped = cv2.remap(
        image, where[..., 0], where[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)
    mask = mouth_mask(dst_points, size, box)
    if src_face is not None and dst_face is not None:
        inset = _face_inset(dst_points)
        src_inside = face_mask(src_face, size, inset)  # read anywhere in the source frame
        src_there = cv2.remap(src_inside, where[..., 0], where[..., 1], cv2.INTER_LINEAR)
        mask *= face_mask(dst_face, size, inset, box) * src_there  # remap: 0 outside the frame
    out = np.zeros((size, size, 4), np.float32)
    out[y0:y1, x0:x1, :3] = warped * (mask / 255.0)[..., None]
    out[y0:y1, x0:x1, 3] = mask
    return out


class MouthReference:
    """The reference of :func:`aligned_mouth` for any frame of a subject (an LRU of decoded
    reference frames keeps playback from reading the same JPEG again)."""

    def __init__(self, subject: Subject, bank: MouthBank, cache: int = 16) -> None:
        self.subject = subject
        self.bank = bank
        self.cache = cache
        self._images: dict[int, np.ndarray] = {}

    def _image(self, frame: int) -> np.ndarray:
        img = self._images.pop(frame, None)
        if img is None:
            img = self.subject.load_frame(frame)
        self._images[frame] = img
        while len(self._images) > self.cache:
            self._images.pop(next(iter(self._images)))
        return img

    def source(
        self, landmarks: np.ndarray, exclude_near: int | None = None, radius: float | None = None
    ) -> int:
        """The training frame whose mouth serves ``landmarks`` [68, 3] (:meth:`MouthBank.nearest`)."""
        return self.bank.nearest(landmarks, exclude_near, radius)

    def plan(self, poses: Sequence[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
        """[T] sources (:meth:`MouthBank.plan`) for consecutive frames rendered from ``poses``
        with head-frame ``landmarks`` [T, 68, 3]."""
        lms = np.asarray(landmarks, np.float64)
        radii = [
            float(lip_radius(lip_points(self.subject, np.asarray(p, np.float64), lm)))
            for p, lm in zip(poses, lms, strict=True)
        ]
        return self.bank.plan(lms, np.asarray(radii))

    def __call__(
        self,
        pose: np.ndarray,
        landmarks: np.ndarray,
        exclude_near: int | None = None,
        source: int | None = None,
    ) -> np.ndarray:
        """[S, S, 4] reference for a frame rendered from ``pose`` with ``landmarks``, from the
        training frame ``source`` (planned by :meth:`plan`), else the frame's own pick."""
        dst = lip_points(self.subject, pose, landmarks)
        ref = source
        if ref is None:
            ref = self.source(landmarks, exclude_near, float(lip_radius(dst)))
        src = np.asarray(self.subject.tracks.lm2d[ref], np.float64)
        K = np.asarray(self.subject.meta.K, np.float64)
        face = project_head_points(K, np.asarray(pose, np.float64), landmarks[list(FACE)])
        return aligned_mouth(self._image(ref), src[list(MOUTH)], dst, src[list(FACE)], face)
