"""A base for objects that hold a resource until :meth:`close` and close it on leaving a
``with`` block (decoders, trackers, segmenters)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Closes(ABC):
    """``with obj: ...`` closes ``obj`` at the end; subclasses define :meth:`close`."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
