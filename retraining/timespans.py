"""Data Factory timespans (`[d.]hh:mm:ss`) as `timedelta`, strictly validated."""

from __future__ import annotations

import re
from datetime import timedelta

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(\.\d{1,7})?$")


def parse_timespan(text: object) -> timedelta:
    """Parse `02:00:00`, `1.12:00:00` or `00:00:00.5`; raise ValueError for `25:00:00`, `1:60:00` or junk."""
    if not isinstance(text, str):
        raise ValueError(f"expected a timespan string like '02:00:00', got {text!r}")
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a timespan like '02:00:00' or '1.00:00:00'")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups()[:4])
    fraction = float(match.group(5) or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is out of range (hours < 24, minutes and seconds < 60)")
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds + fraction)


def format_timespan(value: timedelta) -> str:
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    prefix = f"{days}." if days else ""
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}"
