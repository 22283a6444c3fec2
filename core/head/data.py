"""A subject's frames, masks and tracks at the head's working size, and random training patches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import scale_intrinsics
from ..landmarks import LEFT_EYE, RIGHT_EYE, mouth_opening
from ..subject import MASK_FACE, MASK_HEAD, MASK_LEFT_EYE, MASK_MOUTH, MASK_RIGHT_EYE, Subject


def resize_rgb(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Label bit masks resized by nearest neighbour (bits stay bits)."""
    import cv2

    if labels.shape[0] == size:
        return labels
    return cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)


@dataclass
class FrameSet:
    """Frames of a subject at ``size`` x ``size`` (uint8 tensors in memory) and their tracks."""

    indices: list[int]  # subject frame numbers
    size: int
    K: np.ndarray  # [3, 3] at size
    rgb: torch.Tensor  # [T, S, S, 3] uint8
    labels: torch.Tensor  # [T, S, S] uint8 bit field (core.subject.MASK_*)
    background: torch.Tensor  # [S, S, 3] float in [0, 1]
    pose: np.ndarray  # [T, 4, 4] head-to-camera
    landmarks: torch.Tensor  # [T, 68, 3] head frame
    eye_ratio: torch.Tensor  # [T, 2] (left, right)
    lm2d: np.ndarray  # [T, 68, 2] pixels at size

    @property
    def mouth_open(self) -> torch.Tensor:
        """[T] tracked mouth opening (inner-lip gap / mouth width, core.landmarks)."""
        return torch.from_numpy(mouth_opening(self.landmarks.numpy()))

    @classmethod
    def load(cls, subject: Subject, indices: Sequence[int], size: int) -> FrameSet:
        tracks = subject.tracks
        idx = list(indices)
        rgb = np.stack([resize_rgb(subject.load_frame(i), size) for i in idx])
        labels = np.stack([resize_labels(subject.load_mask(i), size) for i in idx])
        plate = resize_rgb(subject.load_background(), size).astype(np.float32) / 255.0
        scale = size / subject.meta.size
        return cls(
            indices=idx,
            size=size,
            K=scale_intrinsics(subject.meta.K, subject.meta.size, size),
            rgb=torch.from_numpy(rgb),
            labels=torch.from_numpy(labels),
            background=torch.from_numpy(plate),
            pose=np.asarray(tracks.pose[idx], np.float64),
            landmarks=torch.from_numpy(np.asarray(tracks.lm_world[idx], np.float32)),
            eye_ratio=torch.from_numpy(np.asarray(tracks.eye_ratio[idx], np.float32)),
            lm2d=np.asarray(tracks.lm2d[idx], np.float64) * scale,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, j: int) -> torch.Tensor:
        """Frame j as float [S, S, 3] in [0, 1]."""
        return self.rgb[j].float() / 255.0

    def head_mask(self, j: int) -> torch.Tensor:
        return (self.labels[j] & MASK_HEAD) > 0

    def backdrop(self, j: int) -> torch.Tensor:
        """What the head is composited over in frame j [S, S, 3]: the frame outside the head
        (torso, background), the background plate under the head."""
        head = self.head_mask(j)[..., None]
        return torch.where(head, self.background, self.image(j))

    def rotation(self, j: int) -> torch.Tensor:
        return torch.as_tensor(self.pose[j][:3, :3], dtype=torch.float32)


@dataclass
class Patch:
    """One training patch of frame ``j``: P x P pixel points and their targets, flattened."""

    j: int
    uv: torch.Tensor  # [P*P, 2] pixel points (u, v)
    target: torch.Tensor  # [P*P, 3] in [0, 1]
    backdrop: torch.Tensor  # [P*P, 3] in [0, 1]
    head: torch.Tensor  # [P*P] float 0/1 head mask
    face: torch.Tensor  # [P*P] bool
    eyes: torch.Tensor  # [P*P, 2] bool (left, right)
    mouth: torch.Tensor  # [P*P] bool, inside the outer lips
    size: int  # P


def sample_patch(
    frames: FrameSet,
    j: int,
    patch: int,
    scale_max: int,
    head_fraction: float,
    gen: torch.Generator,
) -> Patch:
    """A random ``patch`` x ``patch`` patch of frame j at a random integer pixel stride.

    With probability ``head_fraction`` the patch is centred on a random head pixel (clipped to
    the image); otherwise it lies anywhere. Stride s in 1..scale_max samples every s-th pixel.
    """
    size = frames.size
    p = min(patch, size)
    s_max = max(1, min(scale_max or size // p, size // p))
    s = int(torch.randint(1, s_max + 1, (1,), generator=gen))
    extent = s * p
    head = frames.head_mask(j)
    if float(torch.rand(1, generator=gen)) < head_fraction and bool(head.any()):
        ys, xs = head.nonzero(as_tuple=True)
        k = int(torch.randint(0, len(ys), (1,), generator=gen))
        x0 = int(xs[k]) - extent // 2
        y0 = int(ys[k]) - extent // 2
    else:
        x0 = int(torch.randint(0, size - extent + 1, (1,), generator=gen))
        y0 = int(torch.randint(0, size - extent + 1, (1,), generator=gen))
    return _patch_at(frames, j, x0, y0, p, s)


def _patch_at(frames: FrameSet, j: int, x0: int, y0: int, p: int, s: int) -> Patch:
    """The p x p patch of frame j at stride s whose top-left pixel is (x0, y0), moved inside."""
    extent = s * p
    x0 = min(max(x0, 0), frames.size - extent)
    y0 = min(max(y0, 0), frames.size - extent)
    offs = torch.arange(p) * s + s // 2
    rows, cols = torch.meshgrid(y0 + offs, x0 + offs, indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    labels = frames.labels[j][rows, cols]
    uv = torch.stack([cols.float() + 0.5, rows.float() + 0.5], dim=-1)
    return Patch(
        j=j,
        uv=uv,
        target=frames.image(j)[rows, cols],
        backdrop=frames.backdrop(j)[rows, cols],
        head=((labels & MASK_HEAD) > 0).float(),
        face=(labels & MASK_FACE) > 0,
        eyes=torch.stack([(labels & MASK_LEFT_EYE) > 0, (labels & MASK_RIGHT_EYE) > 0], dim=-1),
        mouth=(labels & MASK_MOUTH) > 0,
        size=p,
    )


EYES = (LEFT_EYE, RIGHT_EYE)
"""Landmark groups of the eyes, in the order of ``eye_ratio``'s columns (left, right)."""


def pick_frame(flagged: torch.Tensor, share: float, gen: torch.Generator) -> int:
    """A frame for a region patch: with probability ``share`` one of the ``flagged`` frames
    ([T] bool), otherwise one of the others (either group alone when the other is empty).

    The rare states of a region (a shut eye, a wide-open mouth) are a small part of a video's
    frames: drawn uniformly, the smooth-L1 loss fits the common state (open eye, nearly closed
    lips) and the NeRF renders it whatever the landmarks say. Drawing them at a set share
    makes them as frequent as the training needs.
    """
    want_flagged = float(torch.rand(1, generator=gen)) < share
    pool = flagged if want_flagged else ~flagged
    if not bool(pool.any()):
        pool = ~pool
    ids = pool.nonzero(as_tuple=True)[0]
    return int(ids[int(torch.randint(0, len(ids), (1,), generator=gen))])


def open_mouths(frames: FrameSet, quantile: float) -> torch.Tensor:
    """[T] bool: frames whose tracked mouth opening reaches its ``quantile`` over the frames
    (0.75: the most open quarter)."""
    opening = frames.mouth_open
    return opening >= torch.quantile(opening.double(), quantile).to(opening.dtype)


def sample_region_patch(
    frames: FrameSet, j: int, points: Sequence[int], patch: int, gen: torch.Generator
) -> Patch:
    """A ``patch`` x ``patch`` patch of frame j at stride 1 around a landmark group (an eye of
    ``EYES``, or ``core.landmarks.MOUTH``): centred on the mean of its points, shifted by up
    to patch/8 pixels."""
    p = min(patch, frames.size)
    cx, cy = np.rint(frames.lm2d[j][list(points)].mean(axis=0)).astype(int)
    jitter = max(1, p // 8)
    dx, dy = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
    return _patch_at(frames, j, int(cx) - p // 2 + dx, int(cy) - p // 2 + dy, p, 1)
