"""Polling that learns: the expected window from history, its cost in calls, and never worse than the baseline past it."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retraining.errors import ConfigError
from retraining.polling import (
    EARLY_FROM,
    EARLY_LOOKS,
    MAX_HISTORY,
    MAX_WINDOW_POLLS,
    PRECISION,
    PollPlanner,
    check_polling,
    expected_window,
    next_poll_delay_s,
)

POLICY = {"first_s": 5.0, "max_s": 300.0, "fraction": 0.05}
MEDIAN = 6000.0  # a 100-minute job


def spread(share: float, n: int = 12, median: float = MEDIAN) -> list[float]:
    """`n` durations evenly across median ± share (newest first, in no particular order)."""
    return [median * (1 + share * (2 * i / (n - 1) - 1)) for i in range(n)]


def watch(planner: PollPlanner, duration: float) -> tuple[int, float]:
    """(status calls, detection delay) for a job lasting `duration`."""
    times = planner.poll_times(duration)
    return len(times), times[-1] - duration


def baseline_bound(duration: float) -> float:
    """The detection delay the baseline schedule guarantees for a job of this length."""
    return next_poll_delay_s(duration, **POLICY)


TODAY = PollPlanner((), **POLICY)
EXTRA = EARLY_LOOKS - 1  # the early looks' calls beyond the one look at lo / 2 before them: the budget is 5


def before_early_looks(history: list[float], duration: float) -> int:
    """The calls the learned schedule before early looks made (first_s, lo / 2, then the window): without early looks, plus lo / 2."""
    planner = PollPlanner(history, **POLICY, early_looks=0)
    lo = planner.window[0] if planner.window else math.inf
    return watch(planner, duration)[0] + (duration > lo / 2)


# ---- the detection figures ------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.95, 0.97, 1.0, 1.03, 1.05])
def test_a_job_within_5_percent_of_a_5_percent_history_is_seen_within_1_percent_in_15_calls(share: float) -> None:
    """The window's 15 calls, plus the early looks every job that reaches the window passes."""
    planner = PollPlanner(spread(0.05), **POLICY)
    duration = share * MEDIAN
    calls, delay = watch(planner, duration)
    assert delay <= 0.01 * duration + 1e-6
    assert calls <= 15 + EXTRA
    assert watch(PollPlanner(spread(0.05), **POLICY, early_looks=1), duration)[0] <= 15  # the figure before early looks


@pytest.mark.parametrize("share", [0.75, 0.8, 0.9, 1.0, 1.1, 1.2, 1.25])
def test_a_job_within_25_percent_of_a_25_percent_history_costs_about_the_window_over_1_percent(share: float) -> None:
    planner = PollPlanner(spread(0.25), **POLICY)
    lo, hi = expected_window(planner.history) or (0, 0)
    duration = share * MEDIAN
    calls, delay = watch(planner, duration)
    assert delay <= 0.01 * duration + 1e-6
    budget = (hi - lo) / (0.01 * MEDIAN) + 5  # 55 for a 100-minute job
    assert calls <= budget + EXTRA
    assert (
        watch(PollPlanner(spread(0.25), **POLICY, early_looks=1), duration)[0] <= budget
    )  # the figure before early looks


def test_without_history_the_schedule_is_the_baselines() -> None:
    for elapsed in (0.0, 3.0, 100.0, 1000.0, 6000.0, 1e6):
        assert TODAY.next_delay_s(elapsed) == next_poll_delay_s(elapsed, **POLICY)
    assert TODAY.window_s is None and TODAY.expected_s is None


def test_a_late_outlier_is_seen_as_by_the_baseline_and_costs_fewer_calls() -> None:
    planner = PollPlanner(spread(0.05), **POLICY)
    for share in (1.06, 1.2, 1.5, 2.0, 3.0):
        duration = share * MEDIAN
        calls, delay = watch(planner, duration)
        assert delay <= baseline_bound(duration) + 1e-6
        assert calls < watch(TODAY, duration)[0]


def test_the_early_looks_are_geometric_from_a_tenth_of_the_median_to_the_window() -> None:
    planner = PollPlanner(spread(0.05), **POLICY)
    lo, _ = planner.window or (0, 0)
    first, *looks, inside = planner.lead
    assert first == 5.0 and inside == pytest.approx(lo * 1.01) and len(looks) == EARLY_LOOKS
    steps = [b / a for a, b in zip([EARLY_FROM * MEDIAN, *looks], [*looks, inside], strict=True)]
    assert steps == pytest.approx([1 + (planner.early_share or 0)] * (EARLY_LOOKS + 1))
    assert watch(planner, 1.0) == (2, 4.0)  # a job that fails at once is seen at first_s, as the baseline does


EARLY_ENDS = [0.1 + 0.8 * k / 400 for k in range(401)]  # 0.1 to 0.9 of the median


@pytest.mark.parametrize("history_spread", [0.05, 0.25])
def test_an_early_finisher_is_seen_within_the_early_share_for_at_most_five_calls_more(history_spread: float) -> None:
    """A job ending at 0.1-0.9 of the median: 38% at worst (34% for ±25%), not 860% (seen at the window)."""
    history = spread(history_spread)
    planner = PollPlanner(history, **POLICY)
    assert planner.early_share is not None and planner.early_share <= 0.4
    for share in EARLY_ENDS:
        duration = share * MEDIAN
        calls, delay = watch(planner, duration)
        assert delay <= planner.early_share * duration + 1e-6
        assert calls <= before_early_looks(history, duration) + 5
    for share in (0.001, 0.95, 1.0, 1.05, 1.5, 3.0):  # every other job pays the looks it passes, at most 5 calls
        assert watch(planner, share * MEDIAN)[0] <= before_early_looks(history, share * MEDIAN) + 5


def test_within_10_percent_an_early_finisher_costs_about_23_looks() -> None:
    """A status answer only says "not yet": 10% from 0.1 to 0.96 of the median needs looks 1.1 apart (ln 9.6 / ln 1.1)."""
    history = spread(0.05)
    planner = PollPlanner(history, **POLICY, early_looks=23)
    assert planner.early_share is not None and planner.early_share <= 0.1
    for share in EARLY_ENDS:
        calls, delay = watch(planner, share * MEDIAN)
        assert delay <= 0.1 * share * MEDIAN + 1e-6
        assert calls <= before_early_looks(history, share * MEDIAN) + 22
    assert (PollPlanner(history, **POLICY, early_looks=22).early_share or 0) > 0.1  # 23 is the fewest


def test_early_looks_come_after_first_s_and_never_closer_than_the_baseline_schedule() -> None:
    short = PollPlanner([30.0] * 12, **POLICY)  # a half-minute job: 0.1 of it is before first_s
    lo, _ = short.window or (0, 0)
    assert short.lead[0] == 5.0 and all(5.0 < t < lo for t in short.lead[1:-1])
    assert short.lead[1] == pytest.approx(5.0 * (1 + (short.early_share or 0)))
    coarse = PollPlanner(
        spread(0.05), **(POLICY | {"fraction": 0.5})
    )  # the baseline's polls 1.5 apart: so are the looks
    assert len(coarse.lead) - 2 < EARLY_LOOKS and (coarse.early_share or 0) >= 0.5
    assert PollPlanner(spread(0.05), **POLICY, early_looks=0).lead == pytest.approx((5.0, 0.95 * MEDIAN * 1.01))


# ---- the window --------------------------------------------------------------------------------


def test_outliers_in_the_history_are_set_aside() -> None:
    history = spread(0.05)
    assert expected_window([*history[:-1], 3 * MEDIAN]) == expected_window([*history[:-1], history[-2]])
    assert expected_window([*history[:-1], 0.1 * MEDIAN]) == expected_window([*history[:-1], history[-2]])


def test_few_durations_give_a_wider_window() -> None:
    assert expected_window([MEDIAN]) == pytest.approx((0.75 * MEDIAN, 1.25 * MEDIAN))
    assert expected_window([MEDIAN] * 2) == pytest.approx((0.875 * MEDIAN, 1.125 * MEDIAN))
    assert expected_window([MEDIAN] * 20) == pytest.approx((0.9875 * MEDIAN, 1.0125 * MEDIAN))


def test_unusable_durations_are_ignored_and_only_the_newest_count() -> None:
    planner = PollPlanner([math.nan, -5.0, 0.0, math.inf, True, "600", MEDIAN], **POLICY)  # type: ignore[list-item]
    assert planner.history == (MEDIAN,)
    assert PollPlanner([math.nan, -1.0], **POLICY).window is None
    planner = PollPlanner([100.0] * MAX_HISTORY + [1e6] * 5, **POLICY)
    assert planner.history == (100.0,) * MAX_HISTORY


def test_a_wide_history_costs_at_most_the_window_cap_and_a_very_wide_one_gives_the_baseline_schedule() -> None:
    planner = PollPlanner([3000.0, 6000.0, 12000.0], **POLICY)
    lo, hi = planner.window or (0, 0)
    assert 0.01 < planner.share < 0.05
    assert watch(planner, hi)[0] <= 2 + len(planner.lead) + MAX_WINDOW_POLLS
    assert PollPlanner([100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0], **POLICY).window is None


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"first_s": 0.0}, "firstInterval"),
        ({"first_s": math.nan}, "firstInterval"),
        ({"max_s": 1.0}, "maxInterval"),
        ({"max_s": math.inf}, "maxInterval"),
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 0.005}, "fraction"),  # below the planner's precision
        ({"fraction": 1.5}, "fraction"),
        ({"first_s": 600.0, "max_s": 300.0}, "maxInterval"),  # firstInterval longer than maxInterval
    ],
)
def test_polling_settings_the_loader_refuses_are_refused_naming_the_field(bad: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^polling\.{field}: "):
        PollPlanner([MEDIAN], **(POLICY | bad))
    with pytest.raises(ConfigError, match=rf"^pipelines\.json: pipelines\[0\]\.polling\.{field}: "):
        check_polling(**(POLICY | bad), where="pipelines.json: pipelines[0].polling")


@pytest.mark.parametrize("bad", [{"precision": 0.0}, {"precision": 0.1}, {"early_looks": -1}, {"early_looks": 1.5}])
def test_invalid_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollPlanner([MEDIAN], **(POLICY | bad))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TODAY.next_delay_s(math.nan)


@settings(max_examples=300, deadline=None)
@given(
    first_s=st.floats(min_value=0.001, max_value=86400.0),
    longer_by=st.floats(min_value=0.0, max_value=86400.0),
    fraction=st.floats(min_value=PRECISION, max_value=1.0),
    history=st.lists(st.floats(min_value=1.0, max_value=1e6), max_size=8),
)
def test_every_accepted_setting_gives_a_planner_that_plans(
    first_s: float, longer_by: float, fraction: float, history: list[float]
) -> None:
    max_s = first_s + longer_by
    check_polling(first_s, max_s, fraction)
    planner = PollPlanner(history, first_s=first_s, max_s=max_s, fraction=fraction)
    for elapsed in (0.0, first_s, 60.0, 3600.0, 432000.0):
        delay = planner.next_delay_s(elapsed, failing_in_a_row=0)
        assert math.isfinite(delay) and delay > 0  # before the window one wait may pass max_s


def test_failed_polls_shorten_the_wait_as_the_baseline_does() -> None:
    planner = PollPlanner(spread(0.05), **POLICY)
    assert planner.next_delay_s(100.0) > 500.0  # before the window: a long wait to the first early look
    assert [planner.next_delay_s(100.0, failing_in_a_row=n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]


# ---- properties over any history and any job --------------------------------------------------

durations = st.floats(min_value=1.0, max_value=7 * 86400.0, allow_nan=False)
histories = st.lists(st.one_of(durations, st.sampled_from([math.nan, math.inf, -1.0, 0.0])), max_size=30)


@settings(max_examples=300, deadline=None)
@given(history=histories, duration=durations)
def test_from_the_window_on_a_job_is_never_seen_later_than_the_baseline_guarantees(
    history: list[float], duration: float
) -> None:
    planner = PollPlanner(history, **POLICY)
    lo = planner.window[0] if planner.window else 0.0
    calls, delay = watch(planner, duration)
    if duration >= lo:
        assert delay <= baseline_bound(duration) + 1e-6
    else:  # an early end: seen at the next lead check
        assert calls <= 2 + len(planner.lead)


@settings(max_examples=300, deadline=None)
@given(history=st.lists(durations, min_size=1, max_size=20), position=st.floats(0.0, 1.0))
def test_inside_the_window_a_job_is_seen_within_the_precision(history: list[float], position: float) -> None:
    planner = PollPlanner(history, **POLICY)
    if planner.window is None:  # too spread to learn from
        return
    lo, hi = planner.window
    duration = lo + position * (hi - lo)
    calls, delay = watch(planner, duration)
    assert delay <= max(planner.share * duration, planner.min_s) + 1e-6
    # the window costs at most MAX_WINDOW_POLLS steps, and max_s steps where those are shorter
    assert calls <= 2 + len(planner.lead) + MAX_WINDOW_POLLS + (hi - lo) / POLICY["max_s"]


@settings(max_examples=200, deadline=None)
@given(history=st.lists(st.floats(600.0, 7 * 86400.0), min_size=1, max_size=20), factor=st.floats(0.0, 3.0))
def test_for_jobs_of_ten_minutes_or_more_the_learned_schedule_calls_less_than_the_baseline(
    history: list[float], factor: float
) -> None:
    planner = PollPlanner(history, **POLICY)
    duration = max(1.0, factor * statistics.median(history))
    assert watch(planner, duration)[0] <= watch(TODAY, duration)[0]


def test_the_plan_is_a_function_of_its_inputs() -> None:
    """Replay safety: two planners from the same inputs plan the same waits."""
    a, b = PollPlanner(spread(0.25), **POLICY), PollPlanner(spread(0.25), **POLICY)
    assert [a.next_delay_s(t) for t in range(0, 9000, 37)] == [b.next_delay_s(t) for t in range(0, 9000, 37)]
