"""Checked conversion of typed payloads to and from the plain JSON the task hub keeps.

A payload is a frozen dataclass that subclasses `Payload`. Its `to_dict` writes each field under its
own name; its `from_dict` reads them back and checks each against the field's annotation, naming
the wrong field (`rollout step.model.size: expected int, got str`). The field names are the wire
format: an orchestration started before an upgrade replays with the inputs it was given, so a
renamed field is a missing field, refused with that name, never a KeyError deep in an activity.
Fields the class no longer has are ignored, and fields it gained need a default to read old input.

Supported annotations: str, int, float, bool, None unions, StrEnum types, tuple[X, ...],
Mapping/dict[str, X], Any, and any class with `from_dict`/`to_dict` (other payloads, the models)
or with `parse`/`__str__` (`BlobPath`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any, Self, Union

from .errors import ConfigError
from .text import excerpt

_SCALARS: dict[type, tuple[type, ...]] = {str: (str,), bool: (bool,), int: (int,), float: (int, float)}


class Payload:
    """Base of the typed payloads: `to_dict`/`from_dict` from the dataclass fields, checked."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: encode(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, raw: Any, where: str | None = None) -> Self:
        where = where or _label(cls)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
        hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if field.name in raw:
                values[field.name] = decode(raw[field.name], hints[field.name], f"{where}.{field.name}")
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing field {field.name!r}")
        return cls(**values)


def _label(cls: type) -> str:
    """`RolloutStepInput` -> `rollout step input`: how errors name a payload."""
    words, word = [], ""
    for char in cls.__name__:
        if char.isupper() and word:
            words.append(word)
            word = ""
        word += char.lower()
    return " ".join([*words, word])


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def encode(value: Any) -> Any:
    """A payload value as plain JSON."""
    if isinstance(value, Enum):
        return value.value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if hasattr(type(value), "parse"):  # BlobPath and its kind: written as their text
        return str(value)
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any, hint: Any, where: str) -> Any:
    """`value` read as `hint`; ConfigError naming `where` if it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"{where}: unions of several types are not supported")
        return decode(value, kinds[0], where)
    if hint in _SCALARS:
        if not isinstance(value, _SCALARS[hint]) or (hint is not bool and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
        return float(typing.cast(float, value)) if hint is float else value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(decode(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
        inner = args[1] if args else Any
        return {_key(k, where): decode(v, inner, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise ConfigError(f"{where}: {excerpt(value)} is not one of {[k.value for k in hint]}") from None
    if isinstance(hint, type) and issubclass(hint, Payload):
        return hint.from_dict(value, where)
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
        try:
            return hint.from_dict(value)
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: not a {_label(hint)} ({type(exc).__name__}: {excerpt(str(exc))})") from None
    if isinstance(hint, type) and hasattr(hint, "parse"):
        return hint.parse(value, where)
    raise TypeError(f"{where}: cannot read a {hint!r}")


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ConfigError(f"{where}: keys must be strings")
    return key
