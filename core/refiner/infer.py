"""Inference: the subject's frame at full resolution from the head's low-resolution render.

    refiner = Refiner.load(subject.model_dir("refiner"), device="cpu")
    frame = refiner(inputs)                        # [5, L, L] -> [3, S, S] over its plate
    for rgb in render_refined("subjects/anna", subject.meta.val_range):  # uint8 [S, S, 3]
        ...

``render_refined`` is the whole high-resolution path for frames of the subject's own track
(tracked landmarks and pose, or landmarks given per frame): what the fidelity benchmark and the
refiner's validation strip measure. The engine uses :class:`Refiner` the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_module
from ..errors import CheckpointError, TalkstudioError
from ..head.model import HeadModel
from ..head.renderer import HeadImage
from ..subject import Subject
from ..torso.compose import Compositor
from ..training import resolve_device
from .config import RefinerConfig
from .inputs import image_inputs, render_inputs, torso_plate
from .net import RefinerNet
from .reference import MouthReference
from .train import KIND, PLATE_FILE


class Refiner:
    """A trained :class:`RefinerNet` in inference mode on one device."""

    def __init__(
        self,
        net: RefinerNet,
        input_size: int,
        plate: torch.Tensor,
        device: str | torch.device = "cpu",
        compositor: Compositor | None = None,
        reference: MouthReference | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.config = net.config
        self.input_size = input_size
        """Side L of the head render it reads; it writes frames of side L · scale."""
        self.plate = plate.to(self.device, torch.float32)
        """[3, S, S] in [0, 1]: what it composes over unless a call gives another plate (with
        the plate "torso": the background the torso completes)."""
        if net.config.plate == "torso" and compositor is None:
            raise CheckpointError("a refiner trained over the torso's plate needs the torso")
        self.compositor = compositor
        """The subject's torso, for RefinerConfig.plate "torso"; else None."""
        if net.config.mouth_reference and reference is None:
            raise CheckpointError("a refiner trained with mouth references needs its subject")
        self.reference = reference
        """Where its mouth references come from (RefinerConfig.mouth_reference); else None."""

    @property
    def output_size(self) -> int:
        return self.input_size * self.config.scale

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        torso: str | os.PathLike[str] | None = None,
        subject: Subject | None = None,
    ) -> Refiner:
        """The refiner saved in ``folder`` (by core/refiner/train.py); one trained over the
        torso's plate also loads the torso from ``torso`` (default: the folder beside it, the
        subject's ``models/torso``), and one trained with mouth references takes them from
        ``subject``'s training frames (default: the subject ``folder`` belongs to)."""
        meta: dict[str, Any] = {}

        def build(cfg: RefinerConfig, _: object, saved: dict[str, Any]) -> RefinerNet:
            meta.update(saved)
            return RefinerNet(cfg)

        net = load_module(Path(folder), KIND, RefinerConfig, build)
        compositor = None
        if net.config.plate == "torso":
            torso = Path(folder).parent / "torso" if torso is None else Path(torso)
            if not (torso / "model.safetensors").is_file():
                raise CheckpointError(
                    f"the refiner in {folder} composes over the torso's completion of each "
                    f"frame, but {torso} holds no trained torso: run `talkstudio train torso` "
                    "for the subject (then train the refiner again)"
                )
            compositor = Compositor.load(torso, device=device)
        reference = None
        if net.config.mouth_reference:
            from .reference import MouthBank

            owner = subject if subject is not None else Subject.open(Path(folder).parents[1])
            frames = meta.get("reference_frames") or owner.steady_train_frames()
            reference = MouthReference(owner, MouthBank.build(owner, frames))
        return cls(
            net, int(meta["input_size"]), load_plate(Path(folder)), device, compositor, reference
        )

    @torch.no_grad()
    def __call__(
        self,
        inputs: torch.Tensor,  # [B, 5, L, L] | [5, L, L]
        plate: torch.Tensor | None = None,  # [B, 3, S, S] | [3, S, S] in [0, 1]; None: its own
        # (with the plate "torso", the background the torso completes around these heads)
        reference: torch.Tensor | None = None,  # [B, 4, S, S] | [4, S, S] mouth references
    ) -> torch.Tensor:  # [B, 3, S, S] | [3, S, S], clamped to [0, 1]
        single = inputs.ndim == 3
        x = (inputs[None] if single else inputs).to(self.device, torch.float32)
        plate = self.plate if plate is None else plate
        bg = (plate if plate.ndim == 4 else plate[None]).to(self.device, torch.float32)
        if x.shape[-1] != self.input_size or bg.shape[-1] != self.output_size:
            raise TalkstudioError(
                f"this refiner turns {self.input_size}² head renders into {self.output_size}² "
                f"frames; got inputs {tuple(inputs.shape)} and plate {tuple(plate.shape)}"
            )
        bg = bg.expand(len(x), -1, -1, -1)
        if self.compositor is not None:  # plate "torso": the background completed per frame
            bg = torso_plate(self.compositor, bg, x, self.config.scale)
        ref = None
        if reference is not None:
            ref = (reference if reference.ndim == 4 else reference[None]).to(self.device)
        out = self.net(x, bg, ref).frame.clamp(0.0, 1.0)
        return out[0] if single else out

    def mouth(
        self, pose: np.ndarray, landmarks: np.ndarray, source: int | None = None
    ) -> torch.Tensor | None:
        """The mouth reference [4, S, S] of a frame rendered from ``pose`` with head-frame
        ``landmarks`` [68, 3], taken from training frame ``source`` (a planned one,
        :meth:`MouthReference.plan`; None: the frame's own pick), or None for a refiner that
        reads none."""
        if self.reference is None:
            return None
        ref = self.reference(pose, np.asarray(landmarks, np.float64), source=source)
        return torch.from_numpy(ref).permute(2, 0, 1).float()

    def refine(
        self,
        inputs: torch.Tensor,
        pose: np.ndarray,
        landmarks: np.ndarray,
        source: int | None = None,
    ) -> torch.Tensor:  # [3, S, S] in [0, 1]
        """One frame's head render ``inputs`` [5, L, L] refined over its own plate, with the
        mouth reference of its ``pose`` and head-frame ``landmarks`` [68, 3] (from ``source``,
        see :meth:`mouth`) when it reads one."""
        return self(inputs, reference=self.mouth(pose, landmarks, source))

    def frame(
        self,
        image: HeadImage,
        pose: np.ndarray,
        bbox: torch.Tensor,
        landmarks: np.ndarray,
        source: int | None = None,
    ) -> torch.Tensor:
        """The frame [S, S, 3] of a head rendered at L (``image``, with its ``pose`` and its
        head-frame ``landmarks`` [68, 3]; ``source``: see :meth:`mouth`)."""
        inputs = image_inputs(image, pose, bbox.cpu())
        return self.refine(inputs, pose, landmarks, source).permute(1, 2, 0)


def load_plate(folder: Path) -> torch.Tensor:  # [3, S, S] in [0, 1]
    """The plate a refiner was trained over (``plate.png`` beside its weights)."""
    import cv2

    path = folder / PLATE_FILE
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CheckpointError(f"{path} is missing or damaged: train the refiner again")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def render_refined(
    subject_dir: str | os.PathLike[str],
    frames: Sequence[int],
    landmarks: Sequence[np.ndarray] | None = None,
    device: str = "cpu",
    with_opacity: bool = False,
) -> Iterator[np.ndarray]:
    """The refined frames ``frames`` of a subject with trained head and refiner, uint8 [S, S, 3]
    at the subject's size, in order: the head rendered at the refiner's input size from each
    frame's tracked pose and landmarks (or ``landmarks[k]`` [68, 3] for ``frames[k]``).
    ``with_opacity`` adds the head's opacity, upsampled, as a fourth channel (as the engine's
    frames for paste-back have it). The mouth references are planned along ``frames``
    (:meth:`MouthReference.plan`), as the engine plans them along a clip."""
    subject = Subject.open(Path(subject_dir))
    for part in ("head", "refiner"):
        if not subject.has_model(part):
            raise TalkstudioError(
                f"subject {subject.root} has no trained {part}: run "
                f"`talkstudio train {part} {subject.root}`"
            )
    dev = resolve_device(device)
    head = HeadModel.load(subject.model_dir("head"), device=dev)
    refiner = Refiner.load(subject.model_dir("refiner"), device=dev, subject=subject)
    if refiner.output_size != subject.meta.size:
        raise TalkstudioError(
            f"the refiner of {subject.root} makes {refiner.output_size}² frames but the subject "
            f"is {subject.meta.size}²: train it again"
        )
    wanted = [
        subject.tracks.lm_world[i] if landmarks is None else np.asarray(landmarks[k], np.float32)
        for k, i in enumerate(frames)
    ]
    poses = [subject.tracks.pose[i] for i in frames]
    sources: list[int | None] = [None] * len(wanted)
    if refiner.reference is not None:  # the mouths planned along the frames, as the engine does
        sources = [int(s) for s in refiner.reference.plan(poses, np.asarray(wanted))]
    for k, i in enumerate(frames):
        lms = None if landmarks is None else np.asarray(landmarks[k], np.float32)
        x = render_inputs(head, subject, i, refiner.input_size, lms)
        out = refiner.refine(x, poses[k], wanted[k], sources[k])  # [3, S, S]
        if with_opacity:
            side = out.shape[-1]
            up = F.interpolate(x[None, 3:4].float(), size=(side, side), mode="bilinear")
            out = torch.cat([out, up[0].to(out.device)])
        yield (out.clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
