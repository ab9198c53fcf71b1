"""Typed reads of request bodies: each getter answers the value or raises a 400 naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import user_error

_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise user_error(f"{where} must be an object.")
    return value


def opt_obj(body: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = body.get(key)
    return None if value is None else obj(value, f"{where}.{key}")


def text(
    body: dict[str, Any], key: str, where: str, *, required: bool = False, default: str | None = None
) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise user_error(f"{where}.{key} is required.", "MissingRequiredField")
        return default
    if not isinstance(value, str) or (required and not value.strip()):
        raise user_error(f"{where}.{key} must be a{' non-empty' if required else ''} string.")
    return value


def required_text(body: dict[str, Any], key: str, where: str) -> str:
    value = text(body, key, where, required=True)
    assert value is not None
    return value


def str_map(body: dict[str, Any], key: str, where: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise user_error(f"{where}.{key} must map names to string values.")
    return dict(value)


def flag(body: dict[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise user_error(f"{where}.{key} must be true or false.")
    return value


def integer(
    body: dict[str, Any], key: str, where: str, *, minimum: int, default: int | None = None, coerce: bool = False
) -> int | None:
    """An integer >= minimum; with `coerce`, a string of digits counts (the batch REST sample sends those)."""
    value = body.get(key)
    if value is None:
        return default
    if coerce and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise user_error(f"{where}.{key} must be an integer of at least {minimum}.")
    return value


def duration(body: dict[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not _DURATION.match(value):
        raise user_error(f"{where}.{key} must be an ISO-8601 duration such as PT10S.")
    return value


def seconds(iso: str) -> float:
    m = _DURATION.match(iso)
    assert m is not None
    days = float((m[1] or "0D")[:-1])
    hours = float((m[3] or "0H")[:-1])
    minutes = float((m[4] or "0M")[:-1])
    secs = float((m[5] or "0S")[:-1])
    return days * 86400 + hours * 3600 + minutes * 60 + secs


def choice(
    body: dict[str, Any],
    key: str,
    where: str,
    allowed: Iterable[str],
    *,
    default: str | None = None,
    ignore_case: bool = False,
) -> str | None:
    """One of `allowed`, answered in its canonical spelling."""
    value = text(body, key, where, default=default)
    if value is None:
        return None
    options = list(allowed)
    for option in options:
        if value == option or (ignore_case and value.lower() == option.lower()):
            return option
    raise user_error(f"{where}.{key} must be one of {', '.join(options)}; got {value!r}.")
