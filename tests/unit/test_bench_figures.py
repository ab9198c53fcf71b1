"""The bench's pure arithmetic: a poll's overhead recovered from a monitor's record, and time split into parts."""

from __future__ import annotations

import pytest

from bench.figures.detection import poll_overhead, scaled_planner
from bench.figures.overhead import _measure, waits


@pytest.mark.parametrize("history_share", [0.05, 0.25, None])
@pytest.mark.parametrize("overhead", [0.0, 0.03, 0.12])
def test_poll_overhead_is_recovered_from_the_polls_and_the_elapsed_time(
    history_share: float | None, overhead: float
) -> None:
    planner = scaled_planner(history_share, offset=0.009)
    seen_at, polls = overhead, 1
    while seen_at < 57.0:  # each answer arrives `overhead` after its poll is due
        seen_at, polls = seen_at + overhead + planner.next_delay_s(seen_at), polls + 1
    assert poll_overhead(planner, polls, seen_at) == pytest.approx(overhead, abs=1e-6)


def test_measure_is_the_union_of_intervals_clipped() -> None:
    assert _measure([(0.0, 1.0), (0.5, 2.0), (3.0, 4.0)], 0.5, 3.5) == pytest.approx(2.0)
    assert _measure([], 0.0, 1.0) == 0.0


def test_a_guard_timer_beaten_by_something_else_is_not_a_wait() -> None:
    trace = [
        {"kind": "timer", "instance": "i", "start": 0.0, "end": 0.25, "at": 0.01},
        {"kind": "episode", "instance": "i", "start": 0.26},
        {"kind": "timer", "instance": "j", "start": 0.0, "end": 60.0, "at": 0.01},
        {"kind": "episode", "instance": "j", "start": 0.4},
    ]
    assert [t["instance"] for t in waits(trace)] == ["i"]
