"""When to look at a running training job next: pure arithmetic, safe to call from orchestrators.

Without history, each wait is a fixed share (`fraction`) of the time the job has run so far,
within `[first_s, max_s]`: the detection delay stays under that share of the job's length while
the number of polls grows only with the logarithm of the length. After a failed poll the next
wait is short and doubles with each further failure, so an outage is retried with back-off but
its end is noticed quickly.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def next_poll_delay_s(elapsed_s: float, *, first_s: float, max_s: float, fraction: float) -> float:
    """Seconds to wait before the next status poll, without history."""
    return min(max_s, max(first_s, elapsed_s * fraction))


def poll_schedule(duration_s: float, *, first_s: float, max_s: float, fraction: float) -> list[float]:
    """The poll times (seconds after start) for a job lasting `duration_s`: for planning and tests."""
    times, elapsed = [], 0.0
    while True:
        elapsed += next_poll_delay_s(elapsed, first_s=first_s, max_s=max_s, fraction=fraction)
        times.append(elapsed)
        if elapsed >= duration_s:
            return times


class PollPlanner:
    """Chooses each wait from the elapsed time, the pipeline's recent job durations and failed polls."""

    def __init__(self, history_s: Sequence[float], *, first_s: float, max_s: float, fraction: float) -> None:
        self.history = tuple(h for h in history_s if h > 0)
        self.first_s = first_s
        self.max_s = max_s
        self.fraction = fraction

    @property
    def expected_s(self) -> float | None:
        """The median of the recent job durations, if there are any."""
        return round(statistics.median(self.history), 3) if self.history else None

    def next_delay_s(self, elapsed_s: float, *, failing_in_a_row: int = 0) -> float:
        delay = next_poll_delay_s(elapsed_s, first_s=self.first_s, max_s=self.max_s, fraction=self.fraction)
        if failing_in_a_row:
            delay = min(delay, self.first_s * 2 ** (failing_in_a_row - 1))
        return delay
