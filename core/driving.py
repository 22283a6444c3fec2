"""The full driving track: stage 1's mouth and jaw joined with the subject's own motion.

docs/design.md "Driving track": stage 1 predicts the 37 jaw and lip points only. The head
pose, the other 31 points (brows, nose, eyes) and the eye ratios come from the subject's
*reference track* — its training frames — played back and forth so the head keeps moving
naturally. When the reference blinks too rarely, blinks are synthesised with a 9-frame lid
profile every 50–80 frames (the authors' schedule; :mod:`talkstudio.core.blinks`). A "still
head" option holds one pose; the ``head_motion`` edit scales the motion about the mean pose
instead (:meth:`DrivingTrack.pose_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .blinks import BLINK_GAP as BLINK_GAP
from .blinks import BLINK_PROFILE as BLINK_PROFILE
from .blinks import BlinkSchedule, blink_factors
from .edit import FrameEdit, TypicalOpening, apply_alphas, apply_frame_edit
from .landmarks import STAGE1_POINTS
from .subject import Tracks
from .timing import FPS

MIN_BLINKS_PER_MINUTE = 6.0
"""Below this rate in the reference, blinks are synthesised."""


@dataclass
class DrivingTrack:
    """Everything stage 2 needs per output frame."""

    lm_world: np.ndarray  # [T, 68, 3] head frame, before user edits
    pose: np.ndarray  # [T, 4, 4] head-to-camera
    eye_ratio: np.ndarray  # [T, 2] (left, right)
    ref_index: np.ndarray  # [T] reference frame each output frame borrows from
    typical: TypicalOpening | None = None
    """The subject's typical eye and mouth opening (over its reference frames): α > 1 opens a
    closed eye or mouth by it (see docs/edit.md)."""
    unblinked: np.ndarray | None = None
    """[T, 68, 3] ``lm_world`` before its synthesised blinks (None: it has none), which a chosen
    blink rate places its own blinks on."""
    blinks: BlinkSchedule = field(default_factory=lambda: BlinkSchedule(auto=False))
    """How this track synthesises blinks (``lm_world`` carries them at the automatic rate)."""
    _mean: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])

    def edited(self, alphas: np.ndarray) -> np.ndarray:
        """Landmarks [T, 68, 3] with per-frame ``alphas`` [T, 3] applied."""
        return apply_alphas(self.lm_world, alphas, self.typical)

    @property
    def before_blinks(self) -> np.ndarray:
        """[T, 68, 3] the landmarks before synthesised blinks."""
        return self.lm_world if self.unblinked is None else self.unblinked

    def landmarks_at(self, frame: int, edit: FrameEdit) -> np.ndarray:
        """Head-frame landmarks [68, 3] of ``frame`` moved by ``edit`` (docs/edit.md): on the
        track as built when its synthesised-blink opening is automatic (-1), else on the track
        before its blinks with that opening."""
        return self.landmarks_span(frame, frame + 1, edit)[0]

    def landmarks_span(self, start: int, stop: int, edit: FrameEdit) -> np.ndarray:
        """:meth:`landmarks_at` of frames ``start`` … ``stop - 1`` [n, 68, 3], edited at once."""
        base = self.lm_world if edit[4] < 0 else self.before_blinks
        return apply_frame_edit(base[start:stop], edit, self.typical)

    def mean_pose(self) -> np.ndarray:
        """[4, 4] the mean of the track's poses: mean rotation (chordal) and mean translation."""
        if self._mean is None:
            from scipy.spatial.transform import Rotation

            mean = np.eye(4)
            mean[:3, :3] = Rotation.from_matrix(self.pose[:, :3, :3]).mean().as_matrix()
            mean[:3, 3] = self.pose[:, :3, 3].mean(axis=0)
            self._mean = mean
        return self._mean

    def pose_at(self, frame: int, amplitude: float = 1.0) -> np.ndarray:
        """[4, 4] the pose of ``frame`` with its rotation and translation about the mean pose
        scaled by ``amplitude`` (the ``head_motion`` edit): 1 is the track's own pose, 0 the mean
        pose for every frame (a still head), 2 twice the motion."""
        pose = np.asarray(self.pose[frame], np.float64)
        if amplitude == 1.0:
            return pose
        from scipy.spatial.transform import Rotation

        mean = self.mean_pose()
        rel = Rotation.from_matrix(mean[:3, :3].T @ pose[:3, :3]).as_rotvec()
        out = np.eye(4)
        out[:3, :3] = mean[:3, :3] @ Rotation.from_rotvec(amplitude * rel).as_matrix()
        out[:3, 3] = mean[:3, 3] + amplitude * (pose[:3, 3] - mean[:3, 3])
        return out


def pingpong_indices(count: int, length: int, start: int = 0) -> np.ndarray:
    """Indices into a sequence of ``length`` for ``count`` frames, played forward then back."""
    if length <= 0:
        raise ValueError("the reference track is empty")
    if length == 1:
        return np.zeros(count, dtype=np.int64)
    period = 2 * (length - 1)
    k = (np.arange(count) + start) % period
    return np.where(k < length, k, period - k).astype(np.int64)


def count_blinks(eye_ratio: np.ndarray, threshold: float = 0.5) -> int:
    """Number of dips of the mean eye ratio [T, 2] below ``threshold``."""
    closed = eye_ratio.mean(axis=1) < threshold
    return int(np.sum(closed[1:] & ~closed[:-1]) + (1 if len(closed) and closed[0] else 0))


def build_driving_track(
    tracks: Tracks,
    reference: range | np.ndarray,
    mouth_points: np.ndarray | None,
    count: int | None = None,
    still_head: bool = False,
    seed: int = 0,
) -> DrivingTrack:
    """Join ``mouth_points`` [T, 37, 3] (stage 1, head frame) with the reference ``tracks``.

    ``reference`` holds the subject's frames to borrow from, in order (its training split, or
    for driven tracks :meth:`Subject.steady_train_frames
    <talkstudio.core.subject.Subject.steady_train_frames>`).
    Without ``mouth_points`` the reference's own 37 points are used (``count`` frames), which is
    the subject replaying itself.
    """
    if mouth_points is not None:
        count = len(mouth_points)
    if count is None:
        raise ValueError("give mouth_points or a frame count")
    ref = np.asarray(reference)
    if still_head:
        idx = np.full(count, ref[0], dtype=np.int64)
    else:
        idx = ref[pingpong_indices(count, len(ref))]
    lm = tracks.lm_world[idx].astype(np.float64)  # [T, 68, 3]
    if mouth_points is not None:
        lm[:, list(STAGE1_POINTS)] = mouth_points
    pose = tracks.pose[idx].astype(np.float64)
    eye_ratio = tracks.eye_ratio[idx].astype(np.float64)
    if still_head:
        # A still head keeps the reference's eyes open; blinks below keep it alive.
        eye_ratio = np.ones_like(eye_ratio) * np.median(tracks.eye_ratio[ref], axis=0)
    ref_minutes = len(ref) / FPS / 60.0
    rate = count_blinks(tracks.eye_ratio[ref]) / max(ref_minutes, 1e-9)
    auto = bool(still_head or rate < MIN_BLINKS_PER_MINUTE)
    unblinked = None
    if auto:
        factors = blink_factors(count, seed)
        alphas = np.stack([factors, factors, np.ones(count)], axis=1)
        unblinked = lm.astype(np.float32)
        lm = apply_alphas(lm, alphas)
        eye_ratio = eye_ratio * factors[:, None]
    return DrivingTrack(
        lm_world=lm.astype(np.float32),
        pose=pose.astype(np.float32),
        eye_ratio=eye_ratio.astype(np.float32),
        ref_index=idx,
        typical=TypicalOpening.of_track(tracks.lm_world[ref]),
        unblinked=unblinked,
        blinks=BlinkSchedule(auto=auto, seed=seed),
    )
