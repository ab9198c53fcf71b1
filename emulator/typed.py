"""Dataclasses from JSON, each field checked against its annotation (config files, fault bodies).

Nested dataclasses, `tuple[X, ...]` (from JSON lists), `dict[str, X]`, `X | None` and the JSON
scalars are understood; an int is accepted where a float is declared, a bool never counts as a
number. Anything else is passed through unchecked. Errors name the field's path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


class ShapeError(ValueError):
    """The JSON does not fit the dataclass; the message starts with the field's path."""


def build(cls: type, raw: Any, where: str) -> Any:
    """`cls(**raw)` with every field present in `cls`, of its annotated type, built recursively."""
    if not isinstance(raw, dict):
        raise ShapeError(f"{where}: expected an object")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ShapeError(f"{where}: unknown field(s) {unknown}")
    values = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(option, value, where)
            except ShapeError as exc:
                errors.append(str(exc))
        raise ShapeError(errors[0] if errors else f"{where}: must not be null")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ShapeError(f"{where}: expected a list")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected an object")
        item = typing.get_args(hint)[1]
        return {str(k): _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ShapeError(f"{where}: expected a number")
        return float(value)
    if hint in (int, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ShapeError(
            f"{where}: expected {'an integer' if hint is int else 'a string' if hint is str else 'true or false'}"
        )
    return value
