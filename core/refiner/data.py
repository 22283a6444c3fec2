"""Training crops of the refiner: cached low-resolution head renders → full-resolution frames.

The plate is one image [3, S, S] for every frame (RefinerConfig.plate "mean" or "background"),
or one per frame, [N, 3, S, S] uint8 ("torso": :func:`torso_plates`).

A crop is ``crop_size``² at the subject's resolution S and ``crop_size / scale``² at the render's
L, aligned so that one render pixel covers exactly scale × scale frame pixels. Its centre is the
mouth (a share ``mouth_fraction``), an eye (``eye_fraction``) or anywhere in the frame; mouth and
eye centres come from the frame's tracked 2-D landmarks, jittered by an eighth of the crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..fidelity import evenly_spaced
from ..landmarks import LEFT_EYE, MOUTH, RIGHT_EYE
from ..subject import MASK_PERSON, Subject
from ..torso.compose import Compositor
from ..torso.data import mean_frame, to_chw
from .config import RefinerConfig
from .inputs import torso_plate
from .net import upsample


@dataclass
class CropBatch:
    """Inputs and targets of one step, float in [0, 1]."""

    inputs: torch.Tensor  # [B, 5, p, p] head render (rgb premultiplied, opacity, depth feature)
    plate: torch.Tensor  # [B, 3, P, P] the plate, P = p · scale
    target: torch.Tensor  # [B, 3, P, P] the real frame
    person: torch.Tensor  # [B, 1, P, P] person mask {0, 1}
    reference: torch.Tensor | None = None  # [B, 4, P, P] aligned real mouth + mask, or None

    def to(self, device: torch.device | str) -> CropBatch:
        return CropBatch(
            self.inputs.to(device),
            self.plate.to(device),
            self.target.to(device),
            self.person.to(device),
            None if self.reference is None else self.reference.to(device),
        )


class TrainingReferences:
    """The mouth reference of each training frame (core/refiner/reference.py), taken from
    frames at least a second away, kept as uint8 [4, S, S] for the ``keep`` frames used last
    (1 MB each at 512²; making one again takes a few milliseconds)."""

    def __init__(self, subject: Subject, frames: Sequence[int], keep: int = 256) -> None:
        from .reference import MouthBank, MouthReference

        self.frames = list(frames)
        self.maker = MouthReference(subject, MouthBank.build(subject, self.frames))
        self.subject = subject
        self.keep = keep
        self._made: dict[int, torch.Tensor] = {}

    def __getitem__(self, k: int) -> torch.Tensor:  # [4, S, S] uint8
        made = self._made.pop(k, None)
        if made is None:
            i = self.frames[k]
            tracks = self.subject.tracks
            ref = self.maker(tracks.pose[i], tracks.lm_world[i], exclude_near=i)
            made = torch.from_numpy((ref * 255.0).round().astype(np.uint8)).permute(2, 0, 1)
        self._made[k] = made  # the newest last
        while len(self._made) > self.keep:
            self._made.pop(next(iter(self._made)))
        return made

    def crop(self, k: int, x0: int, y0: int, size: int) -> torch.Tensor:  # [4, P, P] float
        return self[k][:, y0 : y0 + size, x0 : x0 + size].float() / 255.0


def region_centres(subject: Subject, frame: int) -> np.ndarray:
    """Centres [3, 2] (x, y pixels at the subject's size) of the mouth, right and left eye."""
    pts = np.asarray(subject.tracks.lm2d[frame], np.float64)  # [68, 2]
    return np.stack([pts[list(idx)].mean(axis=0) for idx in (MOUTH, RIGHT_EYE, LEFT_EYE)])


def subject_plate(subject: Subject, kind: str, frames: Sequence[int]) -> torch.Tensor:
    """The refiner's plate [3, S, S] in [0, 1] (RefinerConfig.plate): the mean of ``frames``, or
    the subject's background plate (for "torso" too: the background the torso completes)."""
    if kind == "mean":
        return mean_frame(subject, frames, subject.meta.size)
    return to_chw(subject.load_background().astype(np.float32) / 255.0)


def torso_plates(
    compositor: Compositor,
    background: torch.Tensor,  # [3, S, S] in [0, 1]
    inputs: torch.Tensor,  # [N, 5, L, L] uint8
    scale: int,
    chunk: int = 16,
) -> torch.Tensor:  # [N, 3, S, S] uint8
    """The "torso" plate of every cached render (core/refiner/inputs.py :func:`torso_plate`)."""
    out = []
    for k in range(0, len(inputs), chunk):
        x = inputs[k : k + chunk].float() / 255.0
        plate = torso_plate(compositor, background, x, scale)
        out.append((plate.cpu() * 255.0).round().to(torch.uint8))
    return torch.cat(out)


TORSO_MARGIN_DB = 1.0
"""How much better (dB) the torso's composite must fit the training frames than the mean frame's
for "auto" to take it: the mean frame is sharp at full resolution and the torso's completion is
upsampled from its own size, so at equal fit the refiner learns more over the mean frame
(German_20s: 26.50 against 26.40 dB before training, 26.5 against 27.8 dB full-frame PSNR after;
TaoKai, whose speaker moves: 19.6 against 15.0 dB before, 19.5 against 15.0 dB after)."""


def choose_plate(
    subject: Subject,
    frames: Sequence[int],
    inputs: torch.Tensor,  # [N, 5, L, L] uint8
    mean: torch.Tensor,  # [3, S, S] the "mean" plate
    compositor: Compositor | None,
    scale: int,
    count: int = 24,
) -> tuple[str, str]:
    """RefinerConfig.plate "auto": ``("mean" | "torso", note)``. Over each plate the upsampled
    head is composed (what the untrained refiner outputs) and scored against ``count`` of the
    training ``frames``, spread evenly (median PSNR); "torso" when it beats the mean frame by
    :data:`TORSO_MARGIN_DB`, else "mean" (also without a trained torso)."""
    if compositor is None:
        return "mean", "plate: the mean frame (no trained torso to compare it with)"
    from .. import metrics

    picks = evenly_spaced(len(frames), count)
    x = inputs[picks].float() / 255.0
    up = upsample(x[:, :4], scale).clamp(0.0, 1.0)  # [n, 4, S, S]
    background = subject_plate(subject, "background", frames).to(mean.device)
    torso = torso_plate(compositor, background, x, scale)  # [n, 3, S, S]
    truths = [subject.load_frame(frames[k]).astype(np.float64) / 255.0 for k in picks]
    scores = {}
    for name, plates in (("mean", mean.expand_as(torso)), ("torso", torso)):
        base = (up[:, :3] + (1.0 - up[:, 3:]) * plates).clamp(0.0, 1.0)
        hwc = base.permute(0, 2, 3, 1).double().cpu().numpy()  # [n, S, S, 3]
        scores[name] = float(np.median([metrics.psnr(hwc[j], t) for j, t in enumerate(truths)]))
    best = "torso" if scores["torso"] >= scores["mean"] + TORSO_MARGIN_DB else "mean"
    note = (
        f"plate: {'the torso' if best == 'torso' else 'the mean frame'} (before training, on "
        f"{len(picks)} training frames: over the torso {scores['torso']:.2f} dB, over the mean "
        f"frame {scores['mean']:.2f} dB)"
    )
    return best, note


def frame_plate(plate: torch.Tensor, k: int) -> torch.Tensor:
    """The float [3, S, S] plate of the ``k``-th frame: ``plate`` itself when it is shared
    ([3, S, S]), else its ``k``-th uint8 image ([N, 3, S, S])."""
    if plate.ndim == 3:
        return plate
    return plate[k].float() / 255.0


def full_batch(
    subject: Subject,
    frames: Sequence[int],
    inputs: torch.Tensor,
    plate: torch.Tensor,
    scale: int,
    references: TrainingReferences | None = None,
) -> CropBatch:
    """Whole frames: ``inputs`` [N, 5, L, L] (uint8 or float) of ``frames`` with their targets,
    over ``plate`` ([3, S, S] shared, or [N, 3, S, S] uint8 per frame); with ``references``
    (made for these ``frames``), their mouth references too."""
    x = inputs.float() / 255.0 if inputs.dtype == torch.uint8 else inputs.float()
    targets = [to_chw(subject.load_frame(i).astype(np.float32) / 255.0) for i in frames]
    persons = [
        to_chw(((subject.load_mask(i) & MASK_PERSON) > 0).astype(np.float32)) for i in frames
    ]
    side = x.shape[-1] * scale
    if plate.shape[-1] != side:
        raise ValueError(
            f"the subject's frames are {plate.shape[-1]}², not {scale} × {x.shape[-1]}"
        )
    plates = torch.stack([frame_plate(plate, k) for k in range(len(frames))])
    refs = None
    if references is not None:
        refs = torch.stack([references.crop(k, 0, 0, side) for k in range(len(frames))])
    return CropBatch(x, plates, torch.stack(targets), torch.stack(persons), refs)


class CropSampler:
    """Random crops from the cached renders ``inputs`` [N, 5, L, L] uint8 of ``frames``, over
    ``plate`` ([3, S, S] shared, or [N, 3, S, S] uint8 per frame)."""

    def __init__(
        self,
        subject: Subject,
        frames: Sequence[int],
        inputs: torch.Tensor,
        plate: torch.Tensor,
        config: RefinerConfig,
        scale: int,
    ) -> None:
        self.subject = subject
        self.frames = list(frames)
        self.inputs = inputs
        self.config = config
        self.scale = scale
        self.low = int(inputs.shape[-1])
        self.side = self.low * scale
        self.plate = plate  # [3, S, S] float | [N, 3, S, S] uint8
        if self.plate.shape[-1] != self.side:
            raise ValueError(
                f"the subject's frames are {self.plate.shape[-1]}², not {scale} × {self.low}"
            )
        self.crop = min(config.crop_size, self.side)
        self.centres = np.stack([region_centres(subject, i) for i in self.frames])  # [N, 3, 2]
        self.references = (
            TrainingReferences(subject, self.frames) if config.mouth_reference else None
        )

    def _origin(self, centre: np.ndarray) -> tuple[int, int]:
        """Top-left corner (x, y) in render pixels of the crop around ``centre`` (frame pixels)."""
        p = self.crop // self.scale
        x0 = round(float(centre[0]) / self.scale - p / 2)
        y0 = round(float(centre[1]) / self.scale - p / 2)
        return min(max(x0, 0), self.low - p), min(max(y0, 0), self.low - p)

    def sample(self, batch_size: int, generator: torch.Generator) -> CropBatch:
        """``batch_size`` crops: mouth-, eye-centred or anywhere, per the config's shares."""
        cfg, p, s = self.config, self.crop // self.scale, self.scale
        picks = torch.randint(len(self.frames), (batch_size,), generator=generator).tolist()
        u = torch.rand(batch_size, 4, generator=generator).numpy()  # kind, eye, jitter x, y
        xs, plates, targets, persons, refs = [], [], [], [], []
        for b, k in enumerate(picks):
            jitter = (u[b, 2:] - 0.5) * self.crop / 4.0
            if u[b, 0] < cfg.mouth_fraction:
                centre = self.centres[k, 0] + jitter
            elif u[b, 0] < cfg.mouth_fraction + cfg.eye_fraction:
                centre = self.centres[k, 1 + int(u[b, 1] < 0.5)] + jitter
            else:
                centre = (u[b, 2:] * self.side).astype(np.float64)
            x0, y0 = self._origin(centre)
            X0, Y0, P = x0 * s, y0 * s, p * s
            frame = self.subject.load_frame(self.frames[k])[Y0 : Y0 + P, X0 : X0 + P]
            mask = self.subject.load_mask(self.frames[k])[Y0 : Y0 + P, X0 : X0 + P]
            xs.append(self.inputs[k, :, y0 : y0 + p, x0 : x0 + p].float() / 255.0)
            plates.append(frame_plate(self.plate[..., Y0 : Y0 + P, X0 : X0 + P], k))
            targets.append(to_chw(frame.astype(np.float32) / 255.0))
            persons.append(to_chw(((mask & MASK_PERSON) > 0).astype(np.float32)))
            if self.references is not None:
                refs.append(self.references.crop(k, X0, Y0, P))
        return CropBatch(
            torch.stack(xs),
            torch.stack(plates),
            torch.stack(targets),
            torch.stack(persons),
            torch.stack(refs) if refs else None,
        )
