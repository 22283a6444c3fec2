"""The Qt side of undo: the edit model's commands on a :class:`QUndoStack`.

The commands themselves (what a keyframe edit does and undoes, which ticks of a drag merge) are
Qt-free, in :mod:`talkstudio.core.edit_state` and :mod:`talkstudio.core.undo`.
:class:`UndoStackHistory` is the history that :class:`~.state.EditState` gives its model: each
command is wrapped in a :class:`QtCommand` and pushed on the stack, so the Undo/Redo actions,
their texts and the clean state come from Qt.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand, QUndoStack

from talkstudio.core.undo import EditCommand

MERGE_ID = 1001
"""Command id of mergeable commands, so that QUndoStack offers them for merging."""


class QtCommand(QUndoCommand):
    """A :class:`QUndoCommand` that runs an :class:`EditCommand`."""

    def __init__(self, command: EditCommand) -> None:
        super().__init__(command.text)
        self.command = command

    def id(self) -> int:
        return MERGE_ID if self.command.mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not (isinstance(other, QtCommand) and self.command.merge(other.command)):
            return False
        self.setText(self.command.text)
        return True

    def redo(self) -> None:
        self.command.redo()

    def undo(self) -> None:
        self.command.undo()


class UndoStackHistory:
    """An edit model's history kept on ``stack`` (see :class:`~talkstudio.core.undo.History`)."""

    def __init__(self, stack: QUndoStack) -> None:
        self.stack = stack

    def push(self, command: EditCommand) -> None:
        self.stack.push(QtCommand(command))

    def clear(self) -> None:
        self.stack.clear()
