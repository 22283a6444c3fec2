"""The edit and playback state that every studio view watches (docs/design.md "Widgets are views").

:class:`EditState` is the Qt face of :class:`~talkstudio.core.edit_state.EditModel`, which owns
the keyframed edits, the current frame, the frame count, the base landmark track ``[T, 68, 3]``
(head frame, before edits) and the driving audio ``[S]`` (mono float32, 16 kHz). The model's
events become Qt signals here, and its undo history is a :class:`QUndoStack`
(:class:`~.commands.UndoStackHistory`). Views read the state and listen to its signals; they
keep no copy. :class:`PlaybackState` plays the frames at 25 fps. Both work without any widget
attached.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack

from talkstudio.core.blinks import BlinkSchedule
from talkstudio.core.edit import Edits, FrameEdit, TypicalOpening
from talkstudio.core.edit_state import EditModel
from talkstudio.core.timing import FPS

from .commands import UndoStackHistory


class EditState(QObject):
    """Keyframed α edits, the playhead and the driving track of one editing session.

    Reads and edits go to :attr:`model`; its events arrive here as signals.
    """

    frameChanged = Signal(int)  # noqa: N815 (Qt signal naming)
    """The current frame changed (new frame)."""
    keyframesChanged = Signal(str)  # noqa: N815 (Qt signal naming)
    """The keyframes of one channel (its name in CHANNEL_NAMES) changed, or the blink rate
    (announced as ``blink``)."""
    alphasChanged = Signal()  # noqa: N815 (Qt signal naming)
    """What the current frame is rendered with changed (its α, brows, blinks or head motion)."""
    trackChanged = Signal()  # noqa: N815 (Qt signal naming)
    """The base landmark track (and with it possibly the frame count) changed."""
    audioChanged = Signal()  # noqa: N815 (Qt signal naming)
    """The driving audio (and with it possibly the frame count) changed."""

    def __init__(self, edits: Edits | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._undo = QUndoStack(self)
        self.model = EditModel(edits, UndoStackHistory(self._undo))
        events = self.model.events
        events.frame_changed.connect(self.frameChanged.emit)
        events.keyframes_changed.connect(self.keyframesChanged.emit)
        events.alphas_changed.connect(self.alphasChanged.emit)
        events.track_changed.connect(self.trackChanged.emit)
        events.audio_changed.connect(self.audioChanged.emit)

    # --- reading -------------------------------------------------------------------------
    @property
    def edits(self) -> Edits:
        return self.model.edits

    @property
    def undo_stack(self) -> QUndoStack:
        return self._undo

    @property
    def frame(self) -> int:
        return self.model.frame

    @property
    def num_frames(self) -> int:
        """Frames of the clip: the track's length, else ceil(samples / 640) of the audio, else 0."""
        return self.model.num_frames

    @property
    def track(self) -> np.ndarray | None:
        """The base landmark track [T, 68, 3] (head frame, before edits), or None."""
        return self.model.track

    @property
    def audio(self) -> np.ndarray | None:
        """The driving audio [S] (mono float32 at 16 kHz), or None."""
        return self.model.audio

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def alphas_at(self, frame: float) -> np.ndarray:
        """(α1, α2, α3) at ``frame`` [3], interpolated between keyframes."""
        return self.model.alphas_at(frame)

    def current_alphas(self) -> np.ndarray:
        """(α1, α2, α3) at the current frame [3]."""
        return self.model.current_alphas()

    def frame_edit(self, frame: int | None = None) -> FrameEdit:
        """What ``frame`` (default: the current frame) is rendered with (see
        :meth:`EditModel.frame_edit`)."""
        return self.model.frame_edit(frame)

    def frame_edits(self) -> np.ndarray:
        """The frame edit of every frame of the clip [T, 7]."""
        return self.model.frame_edits()

    @property
    def blink_rate(self) -> float | None:
        """Synthesised blinks per minute; None: automatic."""
        return self.model.blink_rate

    def value(self, name: str, frame: float | None = None) -> float:
        """Value of factor ``name`` at ``frame`` (default: the current frame)."""
        return self.model.value(name, frame)

    def keyframes(self, name: str) -> list[tuple[int, float]]:
        """Keyframes of ``name`` as sorted (frame, value) pairs."""
        return self.model.keyframes(name)

    def has_keyframe(self, name: str, frame: int | None = None) -> bool:
        return self.model.has_keyframe(name, frame)

    def edited_landmarks(self, frame: int | None = None) -> np.ndarray | None:
        """Landmarks [68, 3] of ``frame`` (default current) with its α applied; None without track."""
        return self.model.edited_landmarks(frame)

    # --- loading (not undoable: these replace the session's inputs) -------------------------
    def set_track(
        self,
        track: np.ndarray | None,
        typical: TypicalOpening | None = None,
        blinks: BlinkSchedule | None = None,
    ) -> None:
        """Set the base landmark track [T, 68, 3] in the head frame (None to clear), the
        subject's typical opening and how the track synthesises blinks (see
        :meth:`EditModel.set_track`)."""
        self.model.set_track(track, typical, blinks)

    def set_audio(self, samples: np.ndarray | None) -> None:
        """Set the driving audio [S] (mono, 16 kHz; None to clear)."""
        self.model.set_audio(samples)

    def set_edits(self, edits: Edits) -> None:
        """Replace all keyframes (a loaded project); clears the undo history."""
        self.model.set_edits(edits)

    # --- the playhead ------------------------------------------------------------------------
    def set_frame(self, frame: int) -> None:
        """Move the playhead to ``frame`` (clamped to the clip)."""
        self.model.set_frame(frame)

    # --- edits (all undoable) ----------------------------------------------------------------
    def set_keyframe(self, name: str, frame: int, value: float) -> None:
        """Put a keyframe (one undo step)."""
        self.model.set_keyframe(name, frame, value)

    def set_value(self, name: str, value: float) -> None:
        """Set ``name`` to ``value`` at the current frame (a keyframe there; one undo step)."""
        self.model.set_value(name, value)

    def set_value_live(self, name: str, value: float) -> None:
        """Like :meth:`set_value`, for each tick of a drag: merged until :meth:`end_live_edit`."""
        self.model.set_value_live(name, value)

    def end_live_edit(self) -> None:
        """Close the current drag: the next live change starts a new undo step."""
        self.model.end_live_edit()

    def move_keyframe(self, name: str, old: int, new: int) -> None:
        """Move a keyframe to another frame (one undo step; a keyframe at ``new`` is replaced)."""
        self.model.move_keyframe(name, old, new)

    def delete_keyframe(self, name: str, frame: int) -> None:
        """Remove a keyframe (one undo step)."""
        self.model.delete_keyframe(name, frame)

    def reset(self, name: str) -> None:
        """Remove every keyframe of ``name`` (back to its neutral value; one undo step)."""
        self.model.reset(name)

    def insert_blink(self, frame: int | None = None, depth: float = 1.0) -> None:
        """Insert a blink at ``frame`` (default: the current frame; one undo step)."""
        self.model.insert_blink(frame, depth)

    def set_blink_rate(self, rate: float | None) -> None:
        """Synthesised blinks per minute, None for automatic (one undo step when it changes)."""
        self.model.set_blink_rate(rate)


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
