"""What every part's settings dataclass shares: one way to build, check, save and load it.

A part's config (``Stage1Config``, ``HeadConfig``, ``TorsoConfig``) is a dataclass that derives
from :class:`PartConfig` and names its ``PART`` and its ``ARCHITECTURE`` fields. Then:

- every instance is checked when it is made (``__post_init__``): each value must have its
  field's type (an int is accepted for a float) and the part's :meth:`~PartConfig.check` must
  pass; otherwise :class:`~talkstudio.core.errors.ConfigError` (a ``ValueError``) says which
  setting is wrong;
- :meth:`~PartConfig.from_preset` applies a preset of :mod:`core.presets` and the caller's
  overrides; :meth:`~PartConfig.replace` changes settings; an unknown or misspelt setting name
  in either is an error naming the settings that exist;
- :meth:`~PartConfig.to_dict` / :meth:`~PartConfig.from_dict` are the JSON form kept beside a
  checkpoint; ``from_dict`` ignores keys it does not know (a checkpoint of a later version)
  and raises :class:`~talkstudio.core.errors.CheckpointError` for bad values;
- :meth:`~PartConfig.architecture` is what a checkpoint must agree on to be resumed.

This module imports nothing heavy (no torch).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, Self, get_args, get_origin

from .errors import CheckpointError, ConfigError
from .presets import preset

_HINTS: dict[type, dict[str, Any]] = {}


class PartConfig:
    """Base of the parts' settings dataclasses (see the module docstring)."""

    PART: ClassVar[str]
    """The part: "stage1", "head" or "torso" (core.presets.PARTS)."""
    ARCHITECTURE: ClassVar[tuple[str, ...]] = ()
    """Fields that change the network's weights or their meaning: a checkpoint only resumes
    into a model whose values of these fields are the checkpoint's own."""

    def __post_init__(self) -> None:
        self._check_types()
        self.check()

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range (part-specific)."""

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The names of every setting, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def _require_known(cls, keys: Iterable[str], where: str) -> None:
        names = cls.setting_names()
        for key in keys:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"its settings are {names}"
                raise ConfigError(f"{where}: {cls.__name__} has no setting {key!r}; {hint}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Self:
        """The defaults with the ``name`` preset's changes for this part, then ``overrides``."""
        values = dict(preset(name).overrides(cls.PART))
        cls._require_known(values, f"preset {name!r}")
        cls._require_known(overrides, f"{cls.PART} setting")
        return cls(**(values | overrides))

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like a new config."""
        self._require_known(changes, f"{self.PART} setting")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    # -- the JSON form -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every setting by name, JSON-ready (tuples become lists)."""
        return {
            name: list(v) if isinstance(v := getattr(self, name), tuple) else v
            for name in self.setting_names()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The config of :meth:`to_dict`'s output; unknown keys are ignored (a later version
        wrote them), a missing key keeps its default, a bad value raises CheckpointError."""
        names = cls.setting_names()
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"the saved {cls.PART} config is malformed ({exc})") from exc

    def architecture(self) -> dict[str, Any]:
        """The :attr:`ARCHITECTURE` fields and their values."""
        data = self.to_dict()
        return {name: data[name] for name in self.ARCHITECTURE}

    # -- types -------------------------------------------------------------------------------
    @classmethod
    def _hints(cls) -> dict[str, Any]:
        if cls not in _HINTS:
            hints = typing.get_type_hints(cls)
            _HINTS[cls] = {name: hints[name] for name in cls.setting_names()}
        return _HINTS[cls]

    def _check_types(self) -> None:
        for name, hint in self._hints().items():
            value = getattr(self, name)
            if not _fits(value, hint):
                raise ConfigError(
                    f"{self.PART} setting {name} = {value!r} is not {_describe(hint)}"
                )


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the type ``hint`` (plain types, Literal, tuple[X, ...], unions)."""
    origin = get_origin(hint)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is Literal:
        return value in get_args(hint)
    if origin is tuple:
        item = get_args(hint)[0]
        return isinstance(value, tuple) and all(_fits(v, item) for v in value)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this check does not model: the part's check() covers it


_TYPE_WORDS = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}


def _describe(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if hint in _TYPE_WORDS:
        return _TYPE_WORDS[hint]
    if get_origin(hint) is tuple:
        return f"a list of {_describe(get_args(hint)[0]).removeprefix('a ')}s"
    return str(hint).replace("typing.", "")
