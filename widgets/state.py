"""The edit and playback state that every studio view watches (CONVENTIONS 3).

:class:`EditState` owns the keyframed edits (:class:`~talkstudio.core.edit.Edits`), the current
frame, the frame count, the base landmark track ``[T, 68, 3]`` (head frame, before edits), the
driving audio ``[S]`` (mono float32, 16 kHz) and a :class:`QUndoStack`. Views read it and
listen to its signals; they keep no copy. Every change of the keyframes goes through an undoable
command (:mod:`.commands`). :class:`PlaybackState` plays the frames at 25 fps. Both work without
any widget attached.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack

from talkstudio.core.edit import ALPHA_NAMES, EditError, Edits, apply_alphas, check_alpha
from talkstudio.core.landmarks import NUM_LANDMARKS
from talkstudio.core.timing import FPS, SAMPLE_RATE, num_frames

from .commands import (
    ClearKeyframesCommand,
    DeleteKeyframeCommand,
    MoveKeyframeCommand,
    SetValueCommand,
)


class EditState(QObject):
    """Keyframed α edits, the playhead and the driving track of one editing session."""

    frameChanged = Signal(int)  # noqa: N815 (Qt signal naming)
    """The current frame changed (new frame)."""
    keyframesChanged = Signal(str)  # noqa: N815 (Qt signal naming)
    """The keyframes of one factor (its name in ALPHA_NAMES) changed."""
    alphasChanged = Signal()  # noqa: N815 (Qt signal naming)
    """The (α1, α2, α3) values at the current frame changed."""
    trackChanged = Signal()  # noqa: N815 (Qt signal naming)
    """The base landmark track (and with it possibly the frame count) changed."""
    audioChanged = Signal()  # noqa: N815 (Qt signal naming)
    """The driving audio (and with it possibly the frame count) changed."""

    def __init__(self, edits: Edits | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._edits = edits if edits is not None else Edits()
        self._frame = 0
        self._track: np.ndarray | None = None  # [T, 68, 3] head frame
        self._audio: np.ndarray | None = None  # [S] mono float32 at 16 kHz
        self._undo = QUndoStack(self)
        self._live_session = 0
        self._shown_alphas = self.alphas_at(0)  # [3] last values announced by alphasChanged

    # --- reading -------------------------------------------------------------------------
    @property
    def edits(self) -> Edits:
        return self._edits

    @property
    def undo_stack(self) -> QUndoStack:
        return self._undo

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

    def edited_landmarks(self, frame: int | None = None) -> np.ndarray | None:
        """Landmarks [68, 3] of ``frame`` (default current) with its α applied; None without track."""
        if self._track is None or len(self._track) == 0:
            return None
        f = int(np.clip(self._frame if frame is None else frame, 0, len(self._track) - 1))
        return apply_alphas(self._track[f], self.alphas_at(f))

    # --- loading (not undoable: these replace the session's inputs) -------------------------
    def set_track(self, track: np.ndarray | None) -> None:
        """Set the base landmark track [T, 68, 3] in the head frame (None to clear)."""
        if track is not None:
            track = np.asarray(track)
            if track.ndim != 3 or track.shape[1:] != (NUM_LANDMARKS, 3):
                raise EditError(
                    f"a landmark track must have shape [frames, {NUM_LANDMARKS}, 3]; "
                    f"got {track.shape}"
                )
        self._track = track
        self.trackChanged.emit()
        self._clamp_frame()

    def set_audio(self, samples: np.ndarray | None) -> None:
        """Set the driving audio [S] (mono, 16 kHz; None to clear)."""
        if samples is not None:
            samples = np.asarray(samples, dtype=np.float32)
            if samples.ndim != 1:
                raise EditError(f"driving audio must be mono [samples]; got shape {samples.shape}")
        self._audio = samples
        self.audioChanged.emit()
        self._clamp_frame()

    def set_edits(self, edits: Edits) -> None:
        """Replace all keyframes (a loaded project); clears the undo history."""
        self._edits = edits
        self._undo.clear()
        for name in ALPHA_NAMES:
            self.keyframesChanged.emit(name)
        self._announce_alphas(force=True)

    # --- the playhead ------------------------------------------------------------------------
    def set_frame(self, frame: int) -> None:
        """Move the playhead to ``frame`` (clamped to the clip)."""
        f = int(np.clip(int(frame), 0, max(self.num_frames - 1, 0)))
        if f == self._frame:
            return
        self._frame = f
        self.frameChanged.emit(f)
        self._announce_alphas()

    # --- edits (all undoable) ----------------------------------------------------------------
    def set_keyframe(self, name: str, frame: int, value: float) -> None:
        """Put a keyframe (one undo step)."""
        self._check(name, frame, value)
        self._undo.push(SetValueCommand(self, name, int(frame), float(value)))

    def set_value(self, name: str, value: float) -> None:
        """Set ``name`` to ``value`` at the current frame (a keyframe there; one undo step)."""
        self.set_keyframe(name, self._frame, value)

    def set_value_live(self, name: str, value: float) -> None:
        """Like :meth:`set_value`, for each tick of a drag: merged until :meth:`end_live_edit`."""
        self._check(name, self._frame, value)
        cmd = SetValueCommand(self, name, self._frame, float(value), self._live_session)
        self._undo.push(cmd)

    def end_live_edit(self) -> None:
        """Close the current drag: the next live change starts a new undo step."""
        self._live_session += 1

    def move_keyframe(self, name: str, old: int, new: int) -> None:
        """Move a keyframe to another frame (one undo step; a keyframe at ``new`` is replaced)."""
        new = int(np.clip(int(new), 0, max(self.num_frames - 1, 0)))
        if old not in self._edits.track(name).keys:
            raise EditError(f"no {name.replace('_', ' ')} keyframe at frame {old}")
        if new != old:
            self._undo.push(MoveKeyframeCommand(self, name, int(old), new))

    def delete_keyframe(self, name: str, frame: int) -> None:
        """Remove a keyframe (one undo step)."""
        if frame not in self._edits.track(name).keys:
            raise EditError(f"no {name.replace('_', ' ')} keyframe at frame {frame}")
        self._undo.push(DeleteKeyframeCommand(self, name, int(frame)))

    def reset(self, name: str) -> None:
        """Remove every keyframe of ``name`` (back to 1 everywhere; one undo step)."""
        if self._edits.track(name).keys:
            self._undo.push(ClearKeyframesCommand(self, name))

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

    def _keys_changed(self, name: str) -> None:
        self.keyframesChanged.emit(name)
        self._announce_alphas()

    def _check(self, name: str, frame: int, value: float) -> None:
        self._edits.track(name)  # unknown names raise EditError
        check_alpha(name, value)
        if frame < 0:
            raise EditError(f"keyframe frame must be >= 0, got {frame}")

    def _announce_alphas(self, force: bool = False) -> None:
        now = self.current_alphas()
        if force or not np.array_equal(now, self._shown_alphas):
            self._shown_alphas = now
            self.alphasChanged.emit()

    def _clamp_frame(self) -> None:
        last = max(self.num_frames - 1, 0)
        if self._frame > last:
            self.set_frame(last)


class PlaybackState(QObject):
    """Plays an :class:`EditState`'s frames in real time at ``fps``.

    The clock is monotonic wall time from the moment playback (re)started at an anchor frame:
    frame = anchor + floor(elapsed · fps), so timer jitter never accumulates. A seek by anyone
    else while playing re-anchors and emits :attr:`seeked` (the audio player follows it).
    """

    playingChanged = Signal(bool)  # noqa: N815 (Qt signal naming)
    loopChanged = Signal(bool)  # noqa: N815 (Qt signal naming)
    seeked = Signal(int)
    """Playback (re)started from this frame: at play, at a loop wrap, after a seek while playing."""

    def __init__(self, edit: EditState, fps: int = FPS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._edit = edit
        self._fps = fps
        self._playing = False
        self._loop = False
        self._anchor = 0
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(max(1, 500 // fps))  # twice per frame
        self._timer.timeout.connect(self._tick)
        self._setting = False
        edit.frameChanged.connect(self._on_frame)

    @property
    def edit(self) -> EditState:
        return self._edit

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def loop(self) -> bool:
        return self._loop

    @property
    def fps(self) -> int:
        return self._fps

    def play(self) -> None:
        n = self._edit.num_frames
        if self._playing or n == 0:
            return
        if self._edit.frame >= n - 1:
            self._edit.set_frame(0)
        self._playing = True
        self._restart(self._edit.frame)
        self._timer.start()
        self.playingChanged.emit(True)

    def pause(self) -> None:
        if not self._playing:
            return
        self._playing = False
        self._timer.stop()
        self.playingChanged.emit(False)

    def toggle(self) -> None:
        self.pause() if self._playing else self.play()

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self._loop:
            self._loop = bool(loop)
            self.loopChanged.emit(self._loop)

    def step(self, delta: int) -> None:
        """Move the playhead by ``delta`` frames (pauses playback)."""
        self.pause()
        self._edit.set_frame(self._edit.frame + delta)

    def _restart(self, frame: int) -> None:
        self._anchor = frame
        self._clock.start()
        self.seeked.emit(frame)

    def _tick(self) -> None:
        n = self._edit.num_frames
        frame = self._anchor + int(self._clock.elapsed() * self._fps // 1000)
        if frame >= n:
            if self._loop and n > 0:
                self._set(0)
                self._restart(0)
                return
            self._set(n - 1)
            self.pause()
            return
        self._set(frame)

    def _set(self, frame: int) -> None:
        self._setting = True
        try:
            self._edit.set_frame(frame)
        finally:
            self._setting = False

    def _on_frame(self, frame: int) -> None:
        if self._playing and not self._setting:
            self._restart(frame)
