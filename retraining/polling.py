"""When to look at a running training job next: pure arithmetic, safe to call from orchestrators.

Without history, each wait is a fixed share (`fraction`) of the time the job has run so far,
within `[first_s, max_s]`: the detection delay stays under that share of the job's length while
the number of polls grows only with the logarithm of the length. After a failed poll the next
wait is short and doubles with each further failure, so an outage is retried with back-off but
its end is noticed quickly.

With history (the durations of the pipeline's recent finished jobs, newest first), `PollPlanner`
expects the job to end inside a window `[lo, hi]` and spends its polls there:

- the window is the range of the recent durations once outliers are set aside (farther from the
  median than `OUTLIER_MADS` scaled median absolute deviations), and at least `PRIOR_SPREAD / n`
  of the median on either side for `n` durations, so one or two runs do not make it a point;
- before `lo`: a poll at `first_s` (a job that fails at once is still seen early), then `early_looks`
  cheap early looks, geometric from `EARLY_FROM` of the median (or `first_s`, if later) up to the
  window's first poll: each look is the same factor `1 + early_share` after the one before, so a job
  that ends early (a failure, less data), anywhere from `EARLY_FROM` of the median to the window, is
  noticed within `early_share` of its length. Six looks (five calls more than one look at `lo / 2`)
  give about 38% for a ±5% history; noticing every such job within 10% would take about 23 looks,
  since a status answer only says "not yet" (looks spaced by 1.1 from 0.1 to 0.96 of the median).
  Every job that runs into the window passes these looks, so they cost it `early_looks` calls;
- inside: the first poll is one step past `lo` (no job of the window has ended at `lo` itself), then
  each wait is `precision` of the elapsed time: a job still running at `t` lasts more than `t`, so it
  is noticed within `precision` of its length wherever in the window it ends. The polls this costs
  grow with log(hi / lo) / precision: with the spread, not with the length;
- past `hi`: the baseline schedule, so a late outlier is noticed as the baseline notices it.

A window wider than `MAX_WINDOW_POLLS` steps of `precision` is walked in longer steps; one that would
need steps longer than `fraction` (durations spread over two orders of magnitude) is no knowledge,
and the schedule is the baseline's. In the window no wait is shorter than `first_s * precision / fraction`
nor longer than `max_s`.

A status answer only says "not yet", so the window's width is what the calls pay for, and the early
looks what an early end's delay pays for; a service that announces completion removes both. The durations are detection times (what the
monitor measured), at most `precision` later than the jobs' ends once this schedule runs.

Everything is a function of its arguments (no clock, no randomness), so a replay plans the same waits.

`check_polling` is the one check of a pipeline's polling settings: the definitions loader runs it, so a
definition the planner would refuse never loads (and never submits a job whose monitor then fails).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from .errors import ConfigError
from .retry import Retry

PRECISION = 0.01  # in the window, each wait is this share of the elapsed time: detection within 1% of the job
EARLY_LOOKS = 6  # looks between first_s and the window, geometric: an early end is noticed within ~38% of it
EARLY_FROM = 0.1  # the early looks cover jobs ending from this share of the median on
MAX_HISTORY = 20  # newest durations used; older runs say little about the next one
OUTLIER_MADS = 3.0  # a duration farther from the median than this many scaled MADs is set aside
PRIOR_SPREAD = 0.25  # with one duration the window is ±25% of it; with n, at least ±25%/n
MAX_WINDOW_POLLS = 64  # a wider window gets longer steps, not more polls; one needing steps over `fraction`, none
_MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation


FRACTION_RANGE = f"expected a number from {PRECISION} to 1"  # below PRECISION the window could not be finer


def check_polling(first_s: float, max_s: float, fraction: float, where: str = "polling") -> None:
    """Refuse polling settings the planner cannot plan with: ConfigError naming the field under `where`.

    The fields are the definition's (`firstInterval`, `maxInterval`, `fraction`); the loader passes
    `where` as the file and JSON path of the pipeline's `polling` section, the planner leaves it `polling`.
    """
    if not (math.isfinite(first_s) and first_s > 0):
        raise ConfigError(f"{where}.firstInterval: must be longer than zero, got {first_s!r} s")
    if not (math.isfinite(max_s) and max_s >= first_s):
        raise ConfigError(f"{where}.maxInterval: must be at least firstInterval ({first_s:g} s), got {max_s:g} s")
    if isinstance(fraction, bool) or not (math.isfinite(fraction) and PRECISION <= fraction <= 1):
        raise ConfigError(f"{where}.fraction: {FRACTION_RANGE}, got {fraction!r}")


def next_poll_delay_s(elapsed_s: float, *, first_s: float, max_s: float, fraction: float) -> float:
    """Seconds to wait before the next status poll, without history."""
    return min(max_s, max(first_s, elapsed_s * fraction))


def poll_schedule(duration_s: float, *, first_s: float, max_s: float, fraction: float) -> list[float]:
    """The poll times (seconds after start) after the first, for a job lasting `duration_s`, without history."""
    return PollPlanner((), first_s=first_s, max_s=max_s, fraction=fraction).poll_times(duration_s)[1:]


def clean_history(history_s: Sequence[float], limit: int = MAX_HISTORY) -> tuple[float, ...]:
    """The newest `limit` usable durations: finite and positive (a corrupt record never steers polling)."""
    usable = []
    for value in history_s:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            continue
        usable.append(float(value))
        if len(usable) >= limit:
            break
    return tuple(usable)


def expected_window(history_s: Sequence[float]) -> tuple[float, float] | None:
    """`(lo, hi)`: where the next job should end, from cleaned durations; None without any."""
    if not history_s:
        return None
    median = statistics.median(history_s)
    floor = median * PRIOR_SPREAD / len(history_s)
    deviation = statistics.median(abs(h - median) for h in history_s)
    reach = max(OUTLIER_MADS * _MAD_TO_SIGMA * deviation, floor)
    kept = [h for h in history_s if abs(h - median) <= reach]
    return min(min(kept), median - floor), max(max(kept), median + floor)


class PollPlanner:
    """Chooses each wait from the elapsed time, the pipeline's recent job durations and failed polls."""

    def __init__(
        self,
        history_s: Sequence[float],
        *,
        first_s: float,
        max_s: float,
        fraction: float,
        precision: float = PRECISION,
        early_looks: int = EARLY_LOOKS,
    ) -> None:
        check_polling(first_s, max_s, fraction)
        if not (math.isfinite(precision) and 0 < precision <= fraction):
            raise ValueError(f"precision must be in (0, fraction], not {precision!r}")
        if isinstance(early_looks, bool) or not isinstance(early_looks, int) or early_looks < 0:
            raise ValueError(f"early_looks must be a whole number, 0 or more, not {early_looks!r}")
        self.history = clean_history(history_s)
        self.first_s = first_s
        self.max_s = max_s
        self.fraction = fraction
        # The shortest wait in the window: the baseline's first wait, scaled down as the precision is.
        self.min_s = first_s * precision / fraction
        self.window = expected_window(self.history)
        self.share = precision
        self.lead: tuple[float, ...] = ()  # the polls before the window, then the window's first
        self.early_share: float | None = None  # an early end from EARLY_FROM of the median on is seen within this
        if self.window is not None:
            lo, hi = self.window
            self.share = max(precision, (hi / lo) ** (1 / MAX_WINDOW_POLLS) - 1)
            if self.share > fraction:  # a history this spread cannot beat the baseline schedule
                self.window, self.share = None, precision
                return
            first_inside = lo + self._inside_s(lo)
            looks = self._early_looks(first_inside, early_looks)
            self.lead = (*sorted(t for t in (first_s, *looks) if first_s <= t < lo), first_inside)

    def _early_looks(self, until: float, count: int) -> list[float]:
        """`count` looks spaced by one factor from the early start to `until` (both excluded); never closer than
        the baseline schedule spaces its polls (`fraction`), so a short gap gets fewer looks."""
        start = max(self.first_s, EARLY_FROM * statistics.median(self.history))
        if until <= start:
            return []
        span = math.log(until / start)
        count = min(count, max(0, math.floor(span / math.log1p(self.fraction)) - 1))
        factor = math.exp(span / (count + 1))
        self.early_share = factor - 1
        return [start * factor**k for k in range(1, count + 1)]

    @property
    def expected_s(self) -> float | None:
        """The median of the recent job durations, if there are any."""
        return round(statistics.median(self.history), 3) if self.history else None

    @property
    def window_s(self) -> tuple[float, float] | None:
        """Where the job is expected to end (seconds after the first poll), if there is history."""
        return (round(self.window[0], 3), round(self.window[1], 3)) if self.window else None

    def next_delay_s(self, elapsed_s: float, *, failing_in_a_row: int = 0) -> float:
        if not math.isfinite(elapsed_s):
            raise ValueError(f"elapsed_s must be a number of seconds, not {elapsed_s!r}")
        delay = self._planned_s(max(0.0, elapsed_s))
        if failing_in_a_row:  # a failed poll is retried sooner: the retry policy's back-off from firstInterval
            delay = min(
                delay, Retry(first_s=self.first_s, max_s=max(self.max_s, self.first_s)).delay_s(failing_in_a_row)
            )
        return delay

    def _planned_s(self, elapsed_s: float) -> float:
        if self.window is None or elapsed_s >= self.window[1]:
            return next_poll_delay_s(elapsed_s, first_s=self.first_s, max_s=self.max_s, fraction=self.fraction)
        ahead = [t for t in self.lead if t >= elapsed_s + self.min_s]
        return ahead[0] - elapsed_s if ahead else self._inside_s(elapsed_s)

    def _inside_s(self, elapsed_s: float) -> float:
        return min(self.max_s, max(self.min_s, self.share * elapsed_s))

    def poll_times(self, duration_s: float, *, overhead_s: float = 0.0) -> list[float]:
        """Every poll's time (the first at 0) for a job lasting `duration_s`, each poll taking `overhead_s`."""
        times = [0.0]
        while times[-1] < duration_s:
            times.append(times[-1] + overhead_s + self.next_delay_s(times[-1] + overhead_s))
        return times
