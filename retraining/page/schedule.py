"""The next fire time of a six-field NCRONTAB schedule (seconds first), as the Functions timer reads it.

A small pure function instead of a runtime dependency: the page only needs "when next", and the
syntax the timer accepts is small (numbers, `*`, ranges, steps, lists, and month and day names).
Day of month and day of week follow cron's rule: when both are restricted, either may match.
Times are UTC (the Functions default; WEBSITE_TIME_ZONE is not supported here).
"""

from __future__ import annotations

from datetime import datetime, timedelta

_MONTHS = {
    name: i
    for i, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
SEARCH_DAYS = 366 * 5


def _value(text: str, names: dict[str, int], what: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ValueError(f"{what}: {text!r} is not a number")
    return int(text)


def _field(text: str, what: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    """The values a field allows, and whether it is restricted (not `*`)."""
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _value(step_text, {}, what) if step_text else 1
        if step < 1:
            raise ValueError(f"{what}: the step must be at least 1")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, last = span.split("-", 1)
            start, end = _value(first, names, what), _value(last, names, what)
        else:
            start = _value(span, names, what)
            end = high if step_text else start
        if what == "day of week" and end == 7:  # 7 is Sunday too
            values.add(0)
            start, end = min(start, 6), 6
            if start == 6 and span.split("-")[0] == "7":
                continue
        if not low <= start <= end <= high:
            raise ValueError(f"{what}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values, text != "*"


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first fire time strictly after `after` (an aware UTC datetime); ValueError for a malformed schedule."""
    parts = schedule.split()
    if len(parts) != 6:
        raise ValueError(f"NCRONTAB schedules have six fields (seconds first), got {len(parts)}")
    (seconds, _), (minutes, _), (hours, _), (days, day_set), (months, _), (weekdays, weekday_set) = (
        _field(text, what, low, high, names) for text, (what, low, high, names) in zip(parts, _FIELDS, strict=True)
    )
    start = after.replace(microsecond=0) + timedelta(seconds=1)
    for offset in range(SEARCH_DAYS):
        day = (start + timedelta(days=offset)).date()
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday
        if day.month not in months:
            continue
        if day_set and weekday_set:
            if day.day not in days and weekday not in weekdays:
                continue
        elif day.day not in days or weekday not in weekdays:
            continue
        for hour in sorted(hours):
            for minute in sorted(minutes):
                for second in sorted(seconds):
                    moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=after.tzinfo)
                    if moment >= start:
                        return moment
    raise ValueError(f"{schedule!r} does not fire within {SEARCH_DAYS // 366} years")
