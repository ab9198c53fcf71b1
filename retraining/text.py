"""Validation of text that enters from outside: names, keys, paths, ids; and what of a URL a message may show.

Whatever is accepted here is stored by the task hub and shown by status APIs, so it must
round-trip as UTF-8 and print safely: no lone surrogates (they break every JSON encoder that
writes UTF-8), no control characters, and a bounded length. Errors name the field and never
echo more than a short, escaped excerpt of the value.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError


def excerpt(value: Any, limit: int = 40) -> str:
    """A short, printable rendering of a rejected value for an error message."""
    text = value if isinstance(value, str) else repr(value)
    shown = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    return repr(shown + ("..." if len(text) > limit else ""))


def is_clean(text: str) -> bool:
    """True when `text` encodes as UTF-8 and has no control characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


def clean_text(value: Any, where: str, *, max_length: int = 256, allow_empty: bool = False) -> str:
    """`value` if it is a clean string of at most `max_length` characters; else ConfigError naming `where`."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ConfigError(f"{where}: must not be empty")
    if len(value) > max_length:
        raise ConfigError(f"{where}: longer than {max_length} characters")
    if not is_clean(value):
        raise ConfigError(
            f"{where}: {excerpt(value)} has characters that are not allowed (control characters or invalid Unicode)"
        )
    return value


def origin(url: str) -> str:
    """What of a URL any message (record, note, error, log) may show: `scheme://host[:port]`, nothing else.

    User and password, path, query and fragment are dropped: each can carry a secret (`user:password@`,
    a webhook's token in its path, a SAS or `code=` in its query). A URL without a host shows as such.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        return "(a URL that cannot be read)"
    if not host:
        return "(a URL without a host)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")
