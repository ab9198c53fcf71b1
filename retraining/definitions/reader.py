"""Reading one JSON definitions document: typed fields, `%SETTING%` references, and errors that say where.

Every error names the file and the JSON path, e.g.
`pipelines.json: pipelines[0].policy.timeout: '25:00:00' is out of range`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..timespans import parse_timespan

_SETTING_REF = re.compile(r"^%([A-Za-z_][A-Za-z0-9_.:]*)%$")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:]*$")


class UnsetSettingError(ConfigError):
    """A `%SETTING%` the definitions refer to is not set: that pipeline cannot run until it is."""


class Reader:
    """Validates one JSON document, keeping the file name and JSON path for every error."""

    def __init__(self, source: str, settings: Mapping[str, str]) -> None:
        self.source = source
        self.settings = settings
        self._referenced: dict[str, str] = {}  # value -> the app setting a `%SETTING%` took it from

    def show(self, value: str) -> str:
        """`value` quoted for an error message; a value taken from an app setting is never shown (it may be a
        secret referred to in the wrong field), the setting is named instead."""
        name = self._referenced.get(value)
        return repr(value) if name is None else f"the value of app setting {name!r} (not shown)"

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path or '(root)'}: {message}")

    def obj(self, value: Any, path: str, allowed: set[str], *, required: bool = True) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected an object, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.error(path, f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
        return value

    def list(self, value: Any, path: str, *, required: bool = False) -> list[Any]:
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise self.error(path, "expected a list")
        return value

    def text(self, value: Any, path: str, *, required: bool = True, default: str | None = None) -> str:
        if value is None:
            if required and default is None:
                raise self.error(path, "is required")
            return default or ""
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"expected a non-empty string, got {value!r}")
        match = _SETTING_REF.match(value)
        if match:
            resolved = self.settings.get(match.group(1))
            if not resolved:
                raise UnsetSettingError(
                    f"{self.source}: {path}: refers to app setting {match.group(1)!r}, which is not set"
                )
            self._referenced[resolved] = match.group(1)
            return resolved
        return value

    def optional_text(self, value: Any, path: str) -> str | None:
        return None if value is None else self.text(value, path)

    def setting_name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _SETTING_NAME.match(value):
            # Never echo the value: a secret pasted here by mistake must not reach logs or HTTP answers.
            raise self.error(
                path, "expected the name of an app setting holding the secret (the value given is not shown)"
            )
        return value

    def flag(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(path, "expected true or false")
        return value

    def integer(self, value: Any, path: str, default: int, minimum: int = 0, maximum: int = 1000) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.error(path, f"expected an integer from {minimum} to {maximum}, got {value!r}")
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        default: float | None = None,
    ) -> float:
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"expected a number, got {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(path, f"expected a number from {minimum} to {maximum}, got {value!r}")
        return float(value)

    def timespan(self, value: Any, path: str, default: timedelta, *, allow_zero: bool = False) -> timedelta:
        if value is None:
            return default
        try:
            parsed = parse_timespan(value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None
        if parsed < timedelta(0) or (parsed == timedelta(0) and not allow_zero):
            raise self.error(path, "must be longer than zero")
        return parsed

    def moment(self, value: Any, path: str) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(path, f"expected an ISO 8601 date-time, got {value!r}")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(path, f"{value!r} is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise self.error(path, f"{value!r} needs a time zone (for example a trailing Z)")
        return parsed

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        """One of `choices`; absent means the first."""
        if value is None:
            return choices[0]
        if value not in choices:
            raise self.error(path, f"expected one of {list(choices)}, got {value!r}")
        return str(value)

    def url(self, value: Any, path: str) -> str:
        url = self.text(value, path)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            # never the value itself: a URL may carry credentials or a token, even a wrong one
            if url in self._referenced:
                got = self.show(url)
            else:
                got = f"a value with scheme {parts.scheme!r}" if parts.scheme else "a value with no scheme"
            raise self.error(path, f"expected an http(s) URL with a host, got {got}")
        return url

    def container(self, value: Any, path: str) -> str:
        name = self.text(value, path)
        if not re.match(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$", name):
            raise self.error(path, f"{self.show(name)} is not a valid blob container name")
        return name

    def blob_name(self, value: Any, path: str) -> str:
        name = self.text(value, path)
        if name.startswith("/") or ".." in name.split("/") or len(name) > 1024 or "\\" in name:
            raise self.error(path, f"{self.show(name)} is not a safe blob name")
        return name

    def strings(self, value: Any, path: str) -> dict[str, str]:
        """An object of strings (each may be `%SETTING%`)."""
        raw = self.obj(value, path, set(value or {}) if isinstance(value, dict) else set(), required=False)
        for key, item in raw.items():
            if not isinstance(item, str):
                raise self.error(f"{path}.{key}", f"expected a string, got {item!r}")
        return {k: self.text(v, f"{path}.{k}") for k, v in raw.items()}
