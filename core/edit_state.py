"""The editing session's model without Qt: keyframed edits, the playhead, the driving track.

:class:`EditModel` owns the keyframed edits (:class:`~talkstudio.core.edit.Edits`: the three α,
brows, inserted blinks, head motion and the synthesised blinks' rate), the current
frame, the frame count, the base landmark track ``[T, 68, 3]`` (head frame, before edits) and
the driving audio ``[S]`` (mono float32, 16 kHz). It is *evented*: every change fires one of
the small callback lists in :attr:`EditModel.events`, so any front end (the studio's Qt views,
a script, a test) can follow it without polling and without Qt.

Every change of the keyframes is a command (:class:`SetValue`, :class:`MoveKeyframe`,
:class:`DeleteKeyframe`, :class:`ClearKeyframes`, :class:`SetBlinkRate`) handed to the model's history
(:mod:`talkstudio.core.undo`), which applies it and may take it back. By default that is the
plain Python :class:`~talkstudio.core.undo.UndoHistory`; the studio hands the model an adapter
over Qt's ``QUndoStack`` instead (``talkstudio.widgets.commands``), so the undo/redo menus and
the clean state come from Qt while the commands stay here. Loading a track, audio or a whole set of edits is not undoable: it replaces
the session's inputs and clears the history.

A live change while a slider is dragged is one :class:`SetValue` per tick; ticks of one drag
(same factor, frame and drag number) merge into one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVarTuple

import numpy as np

from .blinks import BlinkSchedule, check_blink_rate
from .edit import (
    CHANNEL_NAMES,
    EditError,
    Edits,
    FrameEdit,
    TypicalOpening,
    apply_frame_edit,
    check_value,
    frame_edit,
)
from .landmarks import NUM_LANDMARKS
from .timing import SAMPLE_RATE, num_frames
from .undo import EditCommand, History, UndoHistory

Args = TypeVarTuple("Args")

ALPHA_LABELS = {"left_eye": "α1 left eye", "right_eye": "α2 right eye", "mouth": "α3 mouth"}
"""Short human label of each factor (undo steps, sliders, timeline lanes), in ALPHA_NAMES order."""
CHANNEL_LABELS = {**ALPHA_LABELS, "brows": "brows", "blink": "blink", "head_motion": "head motion"}
"""Short human label of every channel, in CHANNEL_NAMES order."""


class Event(Generic[*Args]):
    """A list of callbacks, called in order of connection with the event's arguments."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[*Args], object]] = []

    def connect(self, callback: Callable[[*Args], object]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[*Args], object]) -> None:
        """Remove ``callback`` (a ValueError when it is not connected)."""
        self._callbacks.remove(callback)

    def emit(self, *args: *Args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class EditEvents:
    """The events of an :class:`EditModel`."""

    def __init__(self) -> None:
        self.frame_changed: Event[int] = Event()
        """The current frame changed (the new frame)."""
        self.keyframes_changed: Event[str] = Event()
        """The keyframes of one channel (its name in CHANNEL_NAMES) changed; a change of the
        blink rate is announced as a change of ``blink``."""
        self.alphas_changed: Event[()] = Event()
        """What the current frame is rendered with (its :data:`FrameEdit`) changed."""
        self.track_changed: Event[()] = Event()
        """The base landmark track (and with it possibly the frame count) changed."""
        self.audio_changed: Event[()] = Event()
        """The driving audio (and with it possibly the frame count) changed."""


class EditModel:
    """Keyframed edits, the playhead and the driving track of one editing session."""

    def __init__(self, edits: Edits | None = None, history: History | None = None) -> None:
        self.events = EditEvents()
        self.history: History = history if history is not None else UndoHistory()
        self._edits = edits if edits is not None else Edits()
        self._frame = 0
        self._track: np.ndarray | None = None  # [T, 68, 3] head frame
        self._typical: TypicalOpening | None = None  # what α > 1 opens a closed part by
        self._blinks: BlinkSchedule | None = None  # how the track synthesises blinks
        self._audio: np.ndarray | None = None  # [S] mono float32 at 16 kHz
        self._live_session = 0
        self._table: np.ndarray | None = None  # [T, 7] frame edits, made again after a change
        self._shown_edit = self.frame_edit(0)  # what alphas_changed announced last

    # --- reading -------------------------------------------------------------------------
    @property
    def edits(self) -> Edits:
        return self._edits

    @property
    def frame(self) -> int:
        return self._frame

    @property
    def num_frames(self) -> int:
        """Frames of the clip: the track's length, else ceil(samples / 640) of the audio, else 0."""
        if self._track is not None:
            return len(self._track)
        if self._audio is not None:
            return num_frames(len(self._audio))
        return 0

    @property
    def track(self) -> np.ndarray | None:
        """The base landmark track [T, 68, 3] (head frame, before edits), or None."""
        return self._track

    @property
    def audio(self) -> np.ndarray | None:
        """The driving audio [S] (mono float32 at 16 kHz), or None."""
        return self._audio

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def alphas_at(self, frame: float) -> np.ndarray:
        """(α1, α2, α3) at ``frame`` [3], interpolated between keyframes."""
        return self._edits.alphas_at(frame)

    def current_alphas(self) -> np.ndarray:
        """(α1, α2, α3) at the current frame [3]."""
        return self.alphas_at(self._frame)

    def value(self, name: str, frame: float | None = None) -> float:
        """Value of factor ``name`` at ``frame`` (default: the current frame)."""
        return self._edits.track(name).value_at(self._frame if frame is None else frame)

    def keyframes(self, name: str) -> list[tuple[int, float]]:
        """Keyframes of ``name`` as sorted (frame, value) pairs."""
        return sorted(self._edits.track(name).keys.items())

    def has_keyframe(self, name: str, frame: int | None = None) -> bool:
        return (self._frame if frame is None else frame) in self._edits.track(name).keys

    @property
    def blink_rate(self) -> float | None:
        """Synthesised blinks per minute; None: automatic."""
        return self._edits.blink_rate

    @property
    def blinks(self) -> BlinkSchedule | None:
        """How the driving track synthesises blinks (given with the track), or None."""
        return self._blinks

    def frame_edits(self) -> np.ndarray:
        """The :data:`FrameEdit` of every frame of the clip [T, 7] (kept until the next change)."""
        n = self.num_frames
        if self._table is None or len(self._table) != n:
            self._table = self._edits.frame_edits(n, self._blinks)
        return self._table

    def frame_edit(self, frame: int | None = None) -> FrameEdit:
        """What ``frame`` (default: the current frame) is rendered with, rounded as render
        requests carry it (the three α, brows, blinks, head motion)."""
        f = self._frame if frame is None else int(frame)
        if 0 <= f < self.num_frames:
            return frame_edit(self.frame_edits()[f])
        return frame_edit(self._edits.frame_edits(max(f, 0) + 1, self._blinks)[max(f, 0)])

    def edited_landmarks(self, frame: int | None = None) -> np.ndarray | None:
        """Landmarks [68, 3] of ``frame`` (default current) with its edits applied (α, brows,
        blinks); None without track."""
        if self._track is None or len(self._track) == 0:
            return None
        f = int(np.clip(self._frame if frame is None else frame, 0, len(self._track) - 1))
        edit = np.asarray(self.frame_edits()[f], dtype=np.float64).copy()
        if edit[4] < 0 and self._blinks is not None:  # the track's own automatic blinks
            edit[4] = self._blinks.factors(f + 1)[f]
        return apply_frame_edit(self._track[f], edit, self._typical)

    # --- loading (not undoable: these replace the session's inputs) -------------------------
    def set_track(
        self,
        track: np.ndarray | None,
        typical: TypicalOpening | None = None,
        blinks: BlinkSchedule | None = None,
    ) -> None:
        """Set the base landmark track [T, 68, 3] in the head frame (None to clear) and the
        subject's typical opening that α > 1 opens closed eyes and mouths by (docs/edit.md;
        the engine's ``DrivingTrack.typical``, so the landmarks shown match the render).

        With ``blinks`` (the engine's ``DrivingTrack.blinks``) the track is the one before its
        synthesised blinks (``DrivingTrack.before_blinks``), and the model adds them as the
        engine does, at the automatic or the chosen rate."""
        if track is not None:
            track = np.asarray(track)
            if track.ndim != 3 or track.shape[1:] != (NUM_LANDMARKS, 3):
                raise EditError(
                    f"a landmark track must have shape [frames, {NUM_LANDMARKS}, 3]; "
                    f"got {track.shape}"
                )
        self._track = track
        self._typical = typical if track is not None else None
        self._blinks = blinks if track is not None else None
        self._table = None
        self.events.track_changed.emit()
        self._clamp_frame()
        self._announce_alphas()

    def set_audio(self, samples: np.ndarray | None) -> None:
        """Set the driving audio [S] (mono, 16 kHz; None to clear)."""
        if samples is not None:
            samples = np.asarray(samples, dtype=np.float32)
            if samples.ndim != 1:
                raise EditError(f"driving audio must be mono [samples]; got shape {samples.shape}")
        self._audio = samples
        self._table = None
        self.events.audio_changed.emit()
        self._clamp_frame()

    def set_edits(self, edits: Edits) -> None:
        """Replace all keyframes (a loaded project); clears the undo history."""
        self._edits = edits
        self._table = None
        self.history.clear()
        for name in CHANNEL_NAMES:
            self.events.keyframes_changed.emit(name)
        self._announce_alphas(force=True)

    # --- the playhead ------------------------------------------------------------------------
    def set_frame(self, frame: int) -> None:
        """Move the playhead to ``frame`` (clamped to the clip)."""
        f = int(np.clip(int(frame), 0, max(self.num_frames - 1, 0)))
        if f == self._frame:
            return
        self._frame = f
        self.events.frame_changed.emit(f)
        self._announce_alphas()

    # --- edits (all undoable) ----------------------------------------------------------------
    def set_keyframe(self, name: str, frame: int, value: float) -> None:
        """Put a keyframe (one undo step)."""
        self._check(name, frame, value)
        self.history.push(SetValue(self, name, int(frame), float(value)))

    def set_value(self, name: str, value: float) -> None:
        """Set ``name`` to ``value`` at the current frame (a keyframe there; one undo step)."""
        self.set_keyframe(name, self._frame, value)

    def set_value_live(self, name: str, value: float) -> None:
        """Like :meth:`set_value`, for each tick of a drag: merged until :meth:`end_live_edit`."""
        self._check(name, self._frame, value)
        self.history.push(SetValue(self, name, self._frame, float(value), self._live_session))

    def end_live_edit(self) -> None:
        """Close the current drag: the next live change starts a new undo step."""
        self._live_session += 1

    def move_keyframe(self, name: str, old: int, new: int) -> None:
        """Move a keyframe to another frame (one undo step; a keyframe at ``new`` is replaced)."""
        new = int(np.clip(int(new), 0, max(self.num_frames - 1, 0)))
        if old not in self._edits.track(name).keys:
            raise EditError(f"no {name.replace('_', ' ')} keyframe at frame {old}")
        if new != old:
            self.history.push(MoveKeyframe(self, name, int(old), new))

    def delete_keyframe(self, name: str, frame: int) -> None:
        """Remove a keyframe (one undo step)."""
        if frame not in self._edits.track(name).keys:
            raise EditError(f"no {name.replace('_', ' ')} keyframe at frame {frame}")
        self.history.push(DeleteKeyframe(self, name, int(frame)))

    def reset(self, name: str) -> None:
        """Remove every keyframe of ``name`` (back to its neutral value everywhere; one undo
        step)."""
        if self._edits.track(name).keys:
            self.history.push(ClearKeyframes(self, name))

    def insert_blink(self, frame: int | None = None, depth: float = 1.0) -> None:
        """Insert a blink at ``frame`` (default: the current frame), fully closed there for depth
        1 (one undo step; a blink already there gets the new depth)."""
        self.set_keyframe("blink", self._frame if frame is None else frame, depth)

    def set_blink_rate(self, rate: float | None) -> None:
        """Synthesised blinks per minute (None: automatic; one undo step, none when unchanged)."""
        rate = check_blink_rate(rate)
        if rate != self._edits.blink_rate:
            self.history.push(SetBlinkRate(self, rate))

    # --- used by the commands only -------------------------------------------------------------
    def _put_key(self, name: str, frame: int, value: float, notify: bool = True) -> None:
        self._edits.track(name).set(frame, value)
        if notify:
            self._keys_changed(name)

    def _drop_key(self, name: str, frame: int, notify: bool = True) -> None:
        self._edits.track(name).keys.pop(frame, None)
        if notify:
            self._keys_changed(name)

    def _replace_keys(self, name: str, keys: dict[int, float]) -> None:
        self._edits.track(name).keys = dict(keys)
        self._keys_changed(name)

    def _put_blink_rate(self, rate: float | None) -> None:
        self._edits.blink_rate = rate
        self._keys_changed("blink")

    def _keys_changed(self, name: str) -> None:
        self._table = None
        self.events.keyframes_changed.emit(name)
        self._announce_alphas()

    def _check(self, name: str, frame: int, value: float) -> None:
        self._edits.track(name)  # unknown names raise EditError
        check_value(name, value)
        if frame < 0:
            raise EditError(f"keyframe frame must be >= 0, got {frame}")

    def _announce_alphas(self, force: bool = False) -> None:
        now = self.frame_edit()
        if force or now != self._shown_edit:
            self._shown_edit = now
            self.events.alphas_changed.emit()

    def _clamp_frame(self) -> None:
        last = max(self.num_frames - 1, 0)
        if self._frame > last:
            self.set_frame(last)


def _label(name: str) -> str:
    return CHANNEL_LABELS.get(name, name)


class SetValue(EditCommand):
    """Put a keyframe of ``name`` at ``frame`` with ``value`` (replacing one that is there).

    ``session`` >= 0 marks a live change: consecutive commands of the same session, factor and
    frame merge into one undo step. ``session`` < 0 never merges.
    """

    def __init__(
        self, model: EditModel, name: str, frame: int, value: float, session: int = -1
    ) -> None:
        self._model = model
        self.name = name
        self.frame = frame
        self.value = value
        self.session = session
        self._old = model.edits.track(name).keys.get(frame)  # None: no keyframe was there
        self.text = self._text()

    def _text(self) -> str:
        if self.name == "blink":
            depth = "" if self.value == 1.0 else f" of depth {self.value:.2f}"
            return f"Insert blink{depth} at frame {self.frame}"
        return f"Set {_label(self.name)} to {self.value:.2f} at frame {self.frame}"

    @property
    def mergeable(self) -> bool:
        return self.session >= 0

    def merge(self, other: EditCommand) -> bool:
        if not (
            isinstance(other, SetValue)
            and other.session == self.session
            and other.name == self.name
            and other.frame == self.frame
        ):
            return False
        self.value = other.value
        self.text = self._text()
        return True

    def redo(self) -> None:
        self._model._put_key(self.name, self.frame, self.value)

    def undo(self) -> None:
        if self._old is None:
            self._model._drop_key(self.name, self.frame)
        else:
            self._model._put_key(self.name, self.frame, self._old)


class MoveKeyframe(EditCommand):
    """Move the keyframe of ``name`` from frame ``old`` to ``new`` (overwriting one at ``new``)."""

    def __init__(self, model: EditModel, name: str, old: int, new: int) -> None:
        self._model = model
        self.name = name
        self.old = old
        self.new = new
        keys = model.edits.track(name).keys
        self._value = keys[old]
        self._replaced = keys.get(new)  # a keyframe that the move overwrites, restored on undo
        self.text = f"Move {_label(name)} keyframe from frame {old} to {new}"

    def redo(self) -> None:
        self._model._drop_key(self.name, self.old, notify=False)
        self._model._put_key(self.name, self.new, self._value)

    def undo(self) -> None:
        if self._replaced is None:
            self._model._drop_key(self.name, self.new, notify=False)
        else:
            self._model._put_key(self.name, self.new, self._replaced, notify=False)
        self._model._put_key(self.name, self.old, self._value)


class DeleteKeyframe(EditCommand):
    """Remove the keyframe of ``name`` at ``frame``."""

    def __init__(self, model: EditModel, name: str, frame: int) -> None:
        self._model = model
        self.name = name
        self.frame = frame
        self._value = model.edits.track(name).keys[frame]
        self.text = f"Delete {_label(name)} keyframe at frame {frame}"

    def redo(self) -> None:
        self._model._drop_key(self.name, self.frame)

    def undo(self) -> None:
        self._model._put_key(self.name, self.frame, self._value)


class ClearKeyframes(EditCommand):
    """Remove every keyframe of ``name``: the factor is back to 1 over the whole clip."""

    def __init__(self, model: EditModel, name: str) -> None:
        self._model = model
        self.name = name
        self._keys = dict(model.edits.track(name).keys)
        self.text = f"Reset {_label(name)}"

    def redo(self) -> None:
        self._model._replace_keys(self.name, {})

    def undo(self) -> None:
        self._model._replace_keys(self.name, self._keys)


class SetBlinkRate(EditCommand):
    """Set the rate of the synthesised blinks (blinks per minute; None: automatic)."""

    def __init__(self, model: EditModel, rate: float | None) -> None:
        self._model = model
        self.rate = rate
        self._old = model.edits.blink_rate
        self.text = (
            "Set blink rate to automatic" if rate is None else f"Set blink rate to {rate:g}/min"
        )

    def redo(self) -> None:
        self._model._put_blink_rate(self.rate)

    def undo(self) -> None:
        self._model._put_blink_rate(self._old)
