"""Data Factory timespans (`[d.]hh:mm:ss`) as `timedelta`, strictly validated, and timer occurrences."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

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


# A timer may fire a little before its occurrence (clock skew, under a second in the host's own words).
_EARLY_FIRE = timedelta(minutes=1)


def occurrence(now: datetime, schedule_status: Mapping[str, Any] | None) -> datetime:
    """The schedule occurrence a timer fire stands for, to the minute, in UTC.

    The Functions host hands a monitored timer the status it held before the fire: `Next` is the
    occurrence being run, a missed one when the fire is past due. Every fire of one occurrence (a
    retry, a second instance, a restart before the host saved its status) names the same `Next`
    however late it runs. Without a usable `Next` (no monitor, a manual invoke, a future value)
    the fire stands for the minute it runs in.
    """
    moment = now
    text = (schedule_status or {}).get("Next")
    if isinstance(text, str):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            if parsed <= now + _EARLY_FIRE:
                moment = parsed
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
