"""A base for objects that hold a resource until :meth:`close` and close it on leaving a
``with`` block (decoders, trackers, segmenters)."""

from __future__ import annotations

from typing import Self


class Closes:
    """``with obj: ...`` closes ``obj`` at the end; subclasses define :meth:`close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
