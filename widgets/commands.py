"""Undoable edits of the keyframes (QUndoCommand), pushed by :class:`~.state.EditState`.

Every command changes the state through its ``_put_key`` / ``_drop_key`` / ``_replace_keys``
methods, which emit the state's change signals, so undo and redo update every view the same way
an edit does. A live value change while a slider is dragged is one :class:`SetValueCommand`
per tick; ticks of one drag (same factor, frame and drag session) merge into one undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from .palette import ALPHA_LABELS

if TYPE_CHECKING:
    from .state import EditState

LIVE_VALUE_ID = 1001
"""Command id shared by live value changes so that QUndoStack offers them for merging."""


def _label(name: str) -> str:
    return ALPHA_LABELS.get(name, name)


class SetValueCommand(QUndoCommand):
    """Put a keyframe of ``name`` at ``frame`` with ``value`` (replacing one that is there).

    ``session`` >= 0 marks a live change: consecutive commands of the same session, factor and
    frame merge into one undo step. ``session`` < 0 never merges.
    """

    def __init__(
        self, state: EditState, name: str, frame: int, value: float, session: int = -1
    ) -> None:
        super().__init__(f"Set {_label(name)} to {value:.2f} at frame {frame}")
        self._state = state
        self.name = name
        self.frame = frame
        self.value = value
        self.session = session
        self._old = state.edits.track(name).keys.get(frame)  # None: no keyframe was there

    def id(self) -> int:
        return LIVE_VALUE_ID if self.session >= 0 else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not (
            isinstance(other, SetValueCommand)
            and other.session == self.session
            and other.name == self.name
            and other.frame == self.frame
        ):
            return False
        self.value = other.value
        self.setText(f"Set {_label(self.name)} to {self.value:.2f} at frame {self.frame}")
        return True

    def redo(self) -> None:
        self._state._put_key(self.name, self.frame, self.value)

    def undo(self) -> None:
        if self._old is None:
            self._state._drop_key(self.name, self.frame)
        else:
            self._state._put_key(self.name, self.frame, self._old)


class MoveKeyframeCommand(QUndoCommand):
    """Move the keyframe of ``name`` from frame ``old`` to ``new`` (overwriting one at ``new``)."""

    def __init__(self, state: EditState, name: str, old: int, new: int) -> None:
        super().__init__(f"Move {_label(name)} keyframe from frame {old} to {new}")
        self._state = state
        self.name = name
        self.old = old
        self.new = new
        keys = state.edits.track(name).keys
        self._value = keys[old]
        self._replaced = keys.get(new)  # a keyframe that the move overwrites, restored on undo

    def redo(self) -> None:
        self._state._drop_key(self.name, self.old, notify=False)
        self._state._put_key(self.name, self.new, self._value)

    def undo(self) -> None:
        if self._replaced is None:
            self._state._drop_key(self.name, self.new, notify=False)
        else:
            self._state._put_key(self.name, self.new, self._replaced, notify=False)
        self._state._put_key(self.name, self.old, self._value)


class DeleteKeyframeCommand(QUndoCommand):
    """Remove the keyframe of ``name`` at ``frame``."""

    def __init__(self, state: EditState, name: str, frame: int) -> None:
        super().__init__(f"Delete {_label(name)} keyframe at frame {frame}")
        self._state = state
        self.name = name
        self.frame = frame
        self._value = state.edits.track(name).keys[frame]

    def redo(self) -> None:
        self._state._drop_key(self.name, self.frame)

    def undo(self) -> None:
        self._state._put_key(self.name, self.frame, self._value)


class ClearKeyframesCommand(QUndoCommand):
    """Remove every keyframe of ``name``: the factor is back to 1 over the whole clip."""

    def __init__(self, state: EditState, name: str) -> None:
        super().__init__(f"Reset {_label(name)}")
        self._state = state
        self.name = name
        self._keys = dict(state.edits.track(name).keys)

    def redo(self) -> None:
        self._state._replace_keys(self.name, {})

    def undo(self) -> None:
        self._state._replace_keys(self.name, self._keys)
