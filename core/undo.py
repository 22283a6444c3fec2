"""Undoable edits without Qt: a command applies itself and takes itself back; a history keeps them.

:class:`EditCommand` is one undoable change (``redo`` applies it, ``undo`` takes it back; a
mergeable command may absorb the next one, so that the ticks of one slider drag are one step).
:class:`History` is what a model sends its commands to. :class:`UndoHistory` is the plain Python
history, with the rules of Qt's ``QUndoStack``, which the studio uses instead through an adapter
(``talkstudio.widgets.commands``): the commands are the same either way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol


class EditCommand(ABC):
    """One undoable change of the keyframes. ``redo`` applies it, ``undo`` takes it back."""

    text = ""
    """What the step does, for the Undo/Redo menu entries."""

    @abstractmethod
    def redo(self) -> None: ...

    @abstractmethod
    def undo(self) -> None: ...

    @property
    def mergeable(self) -> bool:
        """Whether a following command may be merged into this one (:meth:`merge`)."""
        return False

    def merge(self, other: EditCommand) -> bool:
        """Take ``other`` (already applied) into this step; False when they stay two steps."""
        return False


class History(Protocol):
    """Where a model (:class:`~talkstudio.core.edit_state.EditModel`) sends its commands."""

    def push(self, command: EditCommand) -> None:
        """Apply ``command`` and keep it for undo (merged into the last step where it may)."""

    def clear(self) -> None:
        """Forget every step."""


class UndoHistory:
    """A plain undo/redo list of :class:`EditCommand` (the same rules as Qt's QUndoStack).

    A pushed command is applied, drops the steps that were undone, and merges into the last
    step when both are mergeable, the last step agrees, and the last step is not the clean one
    (a saved state stays reachable by undo).
    """

    def __init__(self) -> None:
        self._steps: list[EditCommand] = []
        self._index = 0  # steps [0, index) are applied
        self._clean: int | None = 0

    def push(self, command: EditCommand) -> None:
        command.redo()
        del self._steps[self._index :]
        if self._clean is not None and self._clean > self._index:
            self._clean = None  # the saved state was undone and is now unreachable
        last = self._steps[-1] if self._steps else None
        if (
            last is not None
            and last.mergeable
            and command.mergeable
            and self._index != self._clean
            and last.merge(command)
        ):
            return
        self._steps.append(command)
        self._index += 1

    def undo(self) -> None:
        if self._index > 0:
            self._index -= 1
            self._steps[self._index].undo()

    def redo(self) -> None:
        if self._index < len(self._steps):
            self._steps[self._index].redo()
            self._index += 1

    def clear(self) -> None:
        self._steps.clear()
        self._index = 0
        self._clean = 0

    def set_clean(self) -> None:
        self._clean = self._index

    def is_clean(self) -> bool:
        return self._index == self._clean

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._steps)

    def count(self) -> int:
        return len(self._steps)

    def texts(self) -> list[str]:
        """What each step does, oldest first."""
        return [step.text for step in self._steps]
