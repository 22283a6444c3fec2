"""The engine: the one facade the studio, the CLI and the tests use.

    engine = Engine.open("subjects/anna")                # trained stage 1, head and torso
    engine.drive("speech.m4a")                           # stage 1 + the driving track
    frame = engine.render(10, alphas=(1, 1, 2), size=256)    # full frame (head NeRF + torso)
    fast = engine.render_fast(10, alphas=(1, 1, 1.5), size=256)  # edited head region only
    run_job(engine.export("out.mp4", edits, size=256))   # MP4 with the driving audio

Caching: per (frame, size, head motion) the landmark-free work of the head render (sample
positions, hash features) lives in an :class:`~talkstudio.core.head.edit_render.EditRenderer`;
the full frames of recent (frame, edit, size) requests are kept, so the torso of an unchanged
frame is never run twice, and a fast edit composites only the re-rendered head region over the
cached frame.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .driving import DrivingTrack, build_driving_track
from .edit import Edits, FrameEdit, frame_edit
from .errors import CheckpointError, TalkstudioError
from .geometry import scale_intrinsics
from .progress import Job, Progress
from .subject import MODEL_PARTS, Subject
from .timing import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, num_frames

if TYPE_CHECKING:
    import torch

    from .framing import Framing, Paster
    from .head.edit_render import EditRenderer
    from .head.model import HeadModel
    from .refiner.infer import Refiner
    from .stage1.model import Stage1Model
    from .torso.compose import Compositor

SOURCE_VIEW_SCALE = 2
"""A preview in the source framing has at most this many times the render's side in rows (and
at most the source's own): the face keeps about the detail of the square preview."""
View = Literal["crop", "source"]
"""How a preview shows a frame: the square render, or pasted back into its source video frame."""
FRAME_CACHE = 48
"""Full frames kept (most recently used first out)."""
EDITOR_CACHE = 4
"""Frames whose landmark-free head work is kept for fast edits."""


OPTIONAL_PARTS = ("refiner",)
"""Parts a subject can be edited and exported without (the engine falls back without them)."""


def missing_parts(subject: Subject) -> list[str]:
    """The parts ``subject`` has no trained model of, in training order (stage1, head, torso);
    optional parts (the refiner) are not listed."""
    return [
        part for part in MODEL_PARTS if part not in OPTIONAL_PARTS and not subject.has_model(part)
    ]


def untrained_message(subject: Subject) -> str | None:
    """Why ``subject`` cannot be opened for editing and which training step comes next (the
    first missing part in the order stage 1 → head → torso); None when head and torso exist."""
    missing = missing_parts(subject)
    if not {"head", "torso"} & set(missing):
        return None
    names = " and ".join(", ".join(missing).rsplit(", ", 1))
    return (
        f"subject {subject.root} is not fully trained: it has no {names} model yet. Parts are "
        f"trained in the order stage1 → head → torso; the next step is "
        f"`talkstudio train {missing[0]} {subject.root}` (in the studio: File ▸ Train or resume "
        "a subject…)"
    )


def check_trained(subject: Subject) -> None:
    """A :class:`CheckpointError` naming the next training step when ``subject`` lacks its head
    or torso model (see :func:`untrained_message`)."""
    message = untrained_message(subject)
    if message is not None:
        raise CheckpointError(message)


@dataclass
class RenderedFrame:
    """One rendered frame and what it cost."""

    rgb: np.ndarray  # [S, S, 3] uint8
    ms: float
    kind: str  # "full", "fast" or "cached"
    frame: int


class Engine:
    """A subject with its trained models, driven by one speech clip."""

    def __init__(
        self,
        subject: Subject,
        head: HeadModel,
        torso: Compositor,
        stage1: Stage1Model | None,
        device: torch.device,
    ) -> None:
        self.subject = subject
        self.head = head
        self.torso = torso
        self.stage1 = stage1
        self.device = device
        self.audio = np.zeros(0, np.float32)
        self.audio_source: Path | None = None
        """The driving file; exports encode its audio at its own rate and channels."""
        self.track: DrivingTrack | None = None
        self._backgrounds: dict[int, torch.Tensor] = {}
        self._frames: OrderedDict[tuple[int, FrameEdit, int], np.ndarray] = OrderedDict()
        """Full frames rendered with :meth:`render`, [S, S, 4] uint8: the square crop and the
        head's opacity (what :meth:`render_fast` edits over, and what paste-back blends with)."""
        self._paster: Paster | None = None
        """Paste-back into the source video for previews in the source framing (opened on the
        first such preview, see :meth:`_shown`)."""
        self._view_framing: Framing | None = None
        """:meth:`framing` for previews, found on the first preview in the source framing."""
        self._editors: OrderedDict[tuple[int, int, float], EditRenderer] = OrderedDict()
        self.refiner: Refiner | None = None
        """The subject's refiner (docs/design.md "Refiner"): when set, every full frame is the
        head rendered at the refiner's input size and refined to the subject's size (then
        resized to the requested size); None: the head at the requested size and the torso."""

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, subject_dir: str | os.PathLike[str], device: str = "auto", refine: bool = True
    ) -> Engine:
        """Open a subject with trained head and torso (and stage 1 when trained); with
        ``refine``, its refiner renders the final frames when one is trained."""
        from .head.model import HeadModel, resolve_device
        from .stage1.infer import load_stage1
        from .torso.compose import Compositor

        subject = Subject.open(Path(subject_dir))
        dev = resolve_device(device)
        check_trained(subject)
        head = HeadModel.load(subject.model_dir("head"), device=dev)
        torso = Compositor.load(subject.model_dir("torso"), device=dev)
        stage1 = load_stage1(subject).to(dev) if subject.has_model("stage1") else None
        engine = cls(subject, head, torso, stage1, dev)
        if refine and subject.has_model("refiner"):
            from .refiner.infer import Refiner

            engine.refiner = Refiner.load(subject.model_dir("refiner"), device=dev, subject=subject)
        engine.replay()
        return engine

    # -- driving -------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return 0 if self.track is None else self.track.num_frames

    def drive(
        self,
        audio: str | os.PathLike[str] | np.ndarray,
        still_head: bool = False,
        seed: int = 0,
    ) -> DrivingTrack:
        """Predict the mouth from ``audio`` (a file, or mono 16 kHz samples) and build the track."""
        from .stage1.features import load_driving_audio, prepare_audio
        from .stage1.infer import predict

        if self.stage1 is None:
            raise CheckpointError(
                f"subject {self.subject.root} has no trained stage-1 model, so it cannot be "
                f"driven by new speech: run `talkstudio train stage1 {self.subject.root}`"
            )
        if isinstance(audio, np.ndarray):
            samples = prepare_audio(audio)
            source = None
        else:
            samples = load_driving_audio(audio)
            source = Path(audio)
        mouth = predict(self.stage1, samples)  # [T, 37, 3]
        track = self._set_track(samples, mouth, still_head, seed)
        self.audio_source = source
        return track

    def replay(self, still_head: bool = False) -> DrivingTrack:
        """Drive the subject with its own training frames and speech (no stage 1 needed)."""
        meta = self.subject.meta
        count = meta.train_frames
        samples = np.zeros(count * SAMPLES_PER_FRAME, np.float32)
        if meta.has_audio:
            own = self.subject.load_audio()[: count * SAMPLES_PER_FRAME]
            samples[: len(own)] = own
        self.audio = samples
        self.audio_source = None
        self.track = build_driving_track(
            self.subject.tracks, meta.train_range, None, count=count, still_head=still_head
        )
        self._clear_caches()
        return self.track

    def _set_track(
        self, samples: np.ndarray, mouth: np.ndarray, still_head: bool, seed: int
    ) -> DrivingTrack:
        self.audio = samples.astype(np.float32)
        self.track = build_driving_track(
            self.subject.tracks,
            np.asarray(self.subject.steady_train_frames()),  # no frames of held poses
            mouth,
            still_head=still_head,
            seed=seed,
        )
        assert self.track.num_frames == num_frames(len(samples))
        self._clear_caches()
        return self.track

    def _clear_caches(self) -> None:
        self._frames.clear()
        self._editors.clear()

    # -- landmarks -----------------------------------------------------------------------------
    def _check_frame(self, frame: int) -> DrivingTrack:
        if self.track is None or not 0 <= frame < self.track.num_frames:
            raise TalkstudioError(f"frame {frame} is outside the clip (0..{self.num_frames - 1})")
        return self.track

    def landmarks(self, frame: int, alphas: Sequence[float] = (1, 1, 1)) -> np.ndarray:
        """Edited head-frame landmarks [68, 3] of ``frame``; ``alphas`` is (α1, α2, α3) or a whole
        :data:`~talkstudio.core.edit.FrameEdit` (brows, blinks and head motion too)."""
        track = self._check_frame(frame)
        return track.landmarks_at(frame, frame_edit(alphas))

    # -- rendering -----------------------------------------------------------------------------
    def _background(self, size: int) -> torch.Tensor:
        import cv2
        import torch

        if size not in self._backgrounds:
            plate = self.subject.load_background()
            interp = cv2.INTER_AREA if size < plate.shape[0] else cv2.INTER_LINEAR
            plate = cv2.resize(plate, (size, size), interpolation=interp)
            self._backgrounds[size] = torch.from_numpy(plate).float().div(255).to(self.device)
        return self._backgrounds[size]

    def _K(self, size: int) -> np.ndarray:
        return scale_intrinsics(self.subject.meta.K, self.subject.meta.size, size)

    def _pose(self, frame: int, edit: FrameEdit) -> np.ndarray:
        """The head pose of ``frame`` under ``edit``'s head motion."""
        return self._check_frame(frame).pose_at(frame, edit[6])

    def _editor(self, frame: int, size: int, edit: FrameEdit) -> EditRenderer:
        key = (frame, size, edit[6])
        editor = self._editors.pop(key, None)
        if editor is None:
            pose = self._pose(frame, edit)
            editor = self.head.editor(self._K(size), pose, self._background(size))
        self._editors[key] = editor
        while len(self._editors) > EDITOR_CACHE:
            self._editors.popitem(last=False)
        return editor

    def _finish(self, head_rgb: torch.Tensor, opacity: torch.Tensor, size: int) -> np.ndarray:
        """Torso network over the head (premultiplied [S, S, 3], opacity [S, S]) -> uint8 frame."""
        out = self.torso(
            self._background(size).permute(2, 0, 1), head_rgb.permute(2, 0, 1), opacity
        )  # [3, S, S]
        return _to_uint8(out.permute(1, 2, 0))

    def render(
        self,
        frame: int,
        alphas: Sequence[float] = (1, 1, 1),
        size: int = 256,
        view: View = "crop",
    ) -> RenderedFrame:
        """The full frame ``frame`` with edits ``alphas`` ((α1, α2, α3) or a whole
        :data:`~talkstudio.core.edit.FrameEdit`) at ``size`` x ``size``; ``view`` "source"
        shows it pasted back into the source video's frame (see :meth:`_shown`)."""
        t0 = time.perf_counter()
        edit = frame_edit(alphas)
        key = (frame, edit, size)
        kind = "cached"
        rgba = self._frames.get(key)
        if rgba is None:
            rgba = self._full_frame(frame, edit, size, keep=True, with_opacity=True)
            self._remember(key, rgba)
            kind = "full"
        self._frames.move_to_end(key)
        rgb = self._shown(rgba, frame, view)
        return RenderedFrame(rgb, (time.perf_counter() - t0) * 1e3, kind, frame)

    def render_once(
        self,
        frame: int,
        alphas: Sequence[float] = (1, 1, 1),
        size: int = 256,
        view: View = "crop",
    ) -> RenderedFrame:
        """The full frame ``frame`` rendered straight, keeping nothing (the preview's frame
        cache renders ahead with it: no edit cache is built for frames only played)."""
        t0 = time.perf_counter()
        edit = frame_edit(alphas)
        self._check_frame(frame)
        rgba = self._full_frame(frame, edit, size, keep=False, with_opacity=True)
        rgb = self._shown(rgba, frame, view)
        return RenderedFrame(rgb, (time.perf_counter() - t0) * 1e3, "full", frame)

    def _shown(self, rgba: np.ndarray, frame: int, view: View) -> np.ndarray:
        """What a preview shows of the square render ``rgba`` [S, S, 4] of ``frame``: the
        square's colour ("crop"), or ("source") the render pasted back into its source video
        frame as an export in the source framing writes it, at most :data:`SOURCE_VIEW_SCALE`
        times the render's side in rows.
        A subject whose source video cannot be used shows the crop."""
        if view == "crop":
            return np.ascontiguousarray(rgba[..., :3])
        import cv2

        from .framing import Paster, scaled_size

        if self._view_framing is None:
            self._view_framing = self.framing()  # probes the source video: once
        if self._view_framing.kind != "source":
            return np.ascontiguousarray(rgba[..., :3])
        if self._paster is None:
            self._paster = Paster(self.subject, self._view_framing)
        out = self._paster(rgba, int(self._check_frame(frame).ref_index[frame]))
        rows = min(out.shape[0], SOURCE_VIEW_SCALE * rgba.shape[0])
        width, height = scaled_size(out.shape[1], out.shape[0], rows)
        if (width, height) != (out.shape[1], out.shape[0]):
            out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(out)

    def close(self) -> None:
        """Release the source video a preview in the source framing reads (it reopens when
        needed)."""
        if self._paster is not None:
            self._paster.close()
            self._paster = None

    def _full_frame(
        self,
        frame: int,
        alphas: FrameEdit,
        size: int,
        keep: bool,
        with_opacity: bool = False,
    ) -> np.ndarray:
        """Head NeRF + torso of ``frame``; ``keep`` builds and keeps the frame's edit cache (for
        later fast edits), else the head is rendered straight (an export's one-off frames).
        ``with_opacity`` adds the head's opacity as a fourth channel ([S, S, 4] uint8: what
        paste-back blends with, core/paste_back.py)."""
        import torch

        if self.refiner is not None:
            return self._refined_frame(frame, alphas, size, keep, with_opacity)
        lms = torch.as_tensor(self.landmarks(frame, alphas), dtype=torch.float32).to(self.device)
        with torch.no_grad():
            if keep:
                head = self._editor(frame, size, alphas).render(lms)
            else:
                pose = self._pose(frame, alphas)
                head = self.head.render(self._K(size), pose, lms, self._background(size))
            rgb = self._finish(head.head, head.opacity, size)
        if with_opacity:
            return np.dstack([rgb, _to_uint8(head.opacity)])
        return rgb

    def _refined_frame(
        self, frame: int, edit: FrameEdit, size: int, keep: bool, with_opacity: bool
    ) -> np.ndarray:
        """:meth:`_full_frame` through the refiner: the head at its input size L, refined to the
        subject's size S, resized to ``size``; the opacity channel is the head's, upsampled."""
        import torch
        import torch.nn.functional as F

        assert self.refiner is not None
        low, side = self.refiner.input_size, self.refiner.output_size
        lms = torch.as_tensor(self.landmarks(frame, edit), dtype=torch.float32).to(self.device)
        pose = self._pose(frame, edit)
        with torch.no_grad():
            if keep:
                head = self._editor(frame, low, edit).render(lms)
            else:
                head = self.head.render(self._K(low), pose, lms, self._background(low))
            source = self.mouth_source(frame, edit)
            rgb = self.refiner.frame(head, pose, self.head.field.bbox, lms.cpu().numpy(), source)
            layers = [rgb.permute(2, 0, 1)]  # [3, S, S]
            if with_opacity:
                up = F.interpolate(head.opacity[None, None], size=(side, side), mode="bilinear")
                layers.append(up[0])
            out = torch.cat(layers)[None]
            if size != side:
                out = F.interpolate(out, size=(size, size), mode="bilinear", antialias=True)
        return _to_uint8(out[0].permute(1, 2, 0))

    def render_fast(
        self, frame: int, alphas: Sequence[float], size: int = 256, view: View = "crop"
    ) -> RenderedFrame:
        """A quick preview of an edit: only the head rays the changed landmarks reach are
        re-rendered and composited over the newest cached full frame of ``frame``; the torso
        network is not run. Falls back to :meth:`render` when nothing is cached yet. With a
        refiner the head is re-rendered at the refiner's input size and upsampled (the next
        full render refines it), and a refiner's mouth reference is laid over it as the full
        render will lay it."""
        import torch

        t0 = time.perf_counter()
        edit = frame_edit(alphas)
        base = next(
            (
                k
                for k in reversed(self._frames)
                if k[0] == frame and k[2] == size and k[1][6] == edit[6]  # same head pose
            ),
            None,
        )
        low = size if self.refiner is None else self.refiner.input_size  # the head's render
        if base is None or (frame, low, edit[6]) not in self._editors:
            return self.render(frame, edit, size, view)
        editor = self._editor(frame, low, edit)
        lms = torch.as_tensor(self.landmarks(frame, edit), dtype=torch.float32).to(self.device)
        base_lms = torch.as_tensor(self.landmarks(frame, base[1]), dtype=torch.float32)
        with torch.no_grad():
            rays = editor.affected_rays(base_lms.to(self.device), lms)  # None: every ray
            head = editor.render(lms)
        changed = torch.ones(low * low, dtype=torch.bool, device=self.device)
        if rays is not None:
            changed[:] = False
            changed[rays] = True
        changed = changed.reshape(low, low)
        layers = torch.cat([head.head, head.opacity[..., None], changed[..., None]], dim=-1)
        if low != size:  # the refiner's low-resolution head, upsampled for the preview
            layers = _resize_hwc(layers, size)
        cached = torch.from_numpy(self._frames[base][..., :3]).float().div(255).to(self.device)
        op = layers[..., 3:4]
        changed = layers[..., 4] > 0
        mixed = layers[..., :3] + (1 - op) * cached
        rgb = torch.where(changed[..., None], mixed, cached)
        if self.refiner is not None and self.refiner.reference is not None:
            # the real mouth the full render will show, so releasing the slider does not pop
            source = self.mouth_source(frame, edit)
            ref = self.refiner.mouth(self._pose(frame, edit), lms.cpu().numpy(), source)
            assert ref is not None
            if ref.shape[-1] != size:
                ref = torch.nn.functional.interpolate(
                    ref[None], size=(size, size), mode="bilinear", antialias=True
                )[0]
            from .refiner.net import colour_matched

            ref = ref.to(self.device)
            sigma = self.refiner.config.reference_colour_sigma * size / self.refiner.output_size
            ref = colour_matched(ref[None], rgb.permute(2, 0, 1)[None], sigma)[0]
            rgb = ref[:3].permute(1, 2, 0) + (1 - ref[3:].permute(1, 2, 0)) * rgb
        rgba = _to_uint8(torch.cat([rgb, op], dim=-1))
        shown = self._shown(rgba, frame, view)
        return RenderedFrame(shown, (time.perf_counter() - t0) * 1e3, "fast", frame)

    def mouth_source(self, frame: int, alphas: Sequence[float] = (1, 1, 1)) -> int | None:
        """The training frame whose real mouth the refiner lays on ``frame`` under the edit
        ``alphas``, or None without a refiner that reads one: planned over the frames
        :data:`~.refiner.reference.PLAN_REACH` either side under the same edit
        (:meth:`~.refiner.reference.MouthReference.plan`), so neighbouring frames share a source
        or play on through the training video instead of jumping, and every process rendering
        the frame (preview, export, export workers) picks the same one."""
        if self.refiner is None or self.refiner.reference is None:
            return None
        from .refiner.reference import PLAN_REACH

        edit = frame_edit(alphas)
        track = self._check_frame(frame)
        lo, hi = max(0, frame - PLAN_REACH), min(track.num_frames, frame + PLAN_REACH + 1)
        lms = track.landmarks_span(lo, hi, edit)
        poses = [track.pose_at(i, edit[6]) for i in range(lo, hi)]
        return int(self.refiner.reference.plan(poses, lms)[frame - lo])

    def _remember(self, key: tuple[int, FrameEdit, int], rgb: np.ndarray) -> None:
        self._frames[key] = rgb
        while len(self._frames) > FRAME_CACHE:
            self._frames.popitem(last=False)

    # -- export --------------------------------------------------------------------------------
    def framing(self, requested: str | None = None) -> Framing:
        """How an export with ``framing=requested`` is framed (see core/framing.py): "source"
        (the default for subjects made from a video) or "crop", with a notice when the source
        framing cannot be used."""
        from .framing import choose_framing

        return choose_framing(self.subject.meta, requested)

    def export(
        self,
        out: str | os.PathLike[str],
        edits: Edits | None = None,
        size: int = 256,
        start: int = 0,
        end: int | None = None,
        workers: int = 1,
        ray: str | None = None,
        threads: int | None = None,
        framing: str | None = None,
        height: int | None = None,
    ) -> Job[Path]:
        """Write frames [start, end) with ``edits`` and the matching audio to an MP4.

        A generator: it yields :class:`Progress` per frame and returns the path. Closing it (or
        an error) leaves no file under ``out``.

        ``workers`` > 1 renders the frames in that many local processes with ``threads`` torch
        threads each (default: this process's threads shared out); ``ray`` ("auto", "local" or
        a cluster address) renders them as Ray tasks of ``threads`` CPUs (default 1). Either
        way the frames come back in order into the one encoder here, so the video equals a
        serial export frame for frame (see core/parallel_export.py).

        ``framing`` "source" pastes each ``size`` render back into the source video's frame and
        writes the source's frame size; "crop" writes the ``size`` square; None picks "source"
        for subjects made from a video (see :meth:`framing`). When the source cannot be used
        the crop is written, and the first progress message carries the notice. ``height``
        scales a source-framed video to that many rows (the aspect kept, both sides even; None:
        the source's own size); the crop's size is ``size``.
        """
        import cv2

        from .framing import Paster, scaled_size
        from .media import Mp4Writer

        track = self._check_frame(start)
        end = track.num_frames if end is None else min(end, track.num_frames)
        if end <= start:
            raise TalkstudioError(f"nothing to export: frames {start}..{end} are empty")
        if size % 2:
            raise TalkstudioError(f"export size must be even for H.264, got {size}")
        if workers < 1:
            raise TalkstudioError(f"the number of export workers must be 1 or more, got {workers}")
        edits = edits or Edits()
        table = edits.frame_edits(end, track.blinks)
        wanted = {i: frame_edit(table[i]) for i in range(start, end)}
        if ray is not None:
            from .parallel_export import import_ray

            import_ray()  # a missing Ray is an error now, before the file is started
        frame_as = self.framing(framing)
        if frame_as.notice:
            yield Progress("export", 0, end - start, frame_as.notice)
        audio, rate = self._export_audio(start, end)
        t0 = time.perf_counter()
        paster = Paster(self.subject, frame_as) if frame_as.kind == "source" else None
        frames = self._export_frames(wanted, size, workers, ray, threads, paster is not None)
        source_w, source_h = frame_as.size(size)
        width, height = scaled_size(source_w, source_h, height if paster is not None else None)
        with (
            paster if paster is not None else contextlib.nullcontext(),
            contextlib.closing(frames) as rgbs,  # closed: every worker stopped
            Mp4Writer(out, width, height, audio=audio, sample_rate=rate) as writer,
        ):
            for done, rgb in enumerate(rgbs, 1):
                if paster is not None:
                    rgb = paster(rgb, int(track.ref_index[start + done - 1]))
                    if (width, height) != (source_w, source_h):
                        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
                writer.write(rgb)
                elapsed = time.perf_counter() - t0
                yield Progress(
                    "export",
                    done,
                    end - start,
                    f"frame {done}/{end - start}, {elapsed / done * 1e3:.0f} ms/frame",
                    preview=rgb if done % 25 == 1 else None,
                )
        return Path(out)

    def _export_frames(
        self,
        alphas: dict[int, FrameEdit],
        size: int,
        workers: int,
        ray: str | None,
        threads: int | None,
        with_opacity: bool = False,
    ) -> Generator[np.ndarray, None, None]:
        """The frames of an export in order: here (cached ones reused), or from workers;
        ``with_opacity``: [S, S, 4] with the head's opacity, always rendered."""
        if workers > 1 or ray is not None:
            from .parallel_export import RenderSpec, render_frames

            spec = RenderSpec.of(self, alphas, size, with_opacity)
            yield from render_frames(spec, sorted(alphas), workers, ray, threads)
            return
        for i, a in alphas.items():
            cached = self._frames.get((i, a, size))
            if cached is None:
                yield self._full_frame(i, a, size, keep=False, with_opacity=with_opacity)
            else:
                yield cached if with_opacity else cached[..., :3]

    def _export_audio(self, start: int, end: int) -> tuple[np.ndarray, int]:
        """The audio of frames [start, end) as float32 [C, S] and its rate: the driving file's
        own rate and channels (its 16 kHz mono copy is for stage 1), else the 16 kHz track."""
        if self.audio_source is not None:
            from .media import load_audio_native

            source, rate = load_audio_native(self.audio_source)  # [C, S]
        else:
            source, rate = self.audio[None], SAMPLE_RATE
        first = round(start * rate / FPS)
        audio = np.zeros((len(source), round(end * rate / FPS) - first), np.float32)
        piece = source[:, first : first + audio.shape[1]]
        audio[:, : piece.shape[1]] = piece
        return audio, rate


def _resize_hwc(x: torch.Tensor, size: int) -> torch.Tensor:
    """[H, W, C] → [size, size, C], bilinear."""
    import torch.nn.functional as F

    out = F.interpolate(x.permute(2, 0, 1)[None].float(), size=(size, size), mode="bilinear")
    return out[0].permute(1, 2, 0)


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1) * 255 + 0.5).to("cpu").numpy().astype(np.uint8)
