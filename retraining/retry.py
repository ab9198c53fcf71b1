"""The one retry policy: how many attempts, how long between them, and no attempt past a deadline.

Every retry loop in the app takes its delays from here: the orchestrators' activity calls (durable
timers), the rollout's steps (raced against the target's deadline), the HTTP client of the ML
services, and our storage clients (through the Azure SDK's policy class, `storage_retry`). A
policy is a value, so orchestrators may carry one: it reads no clock and draws no random number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Retry:
    """`attempts` in all, the n-th retry after `first_s * factor ** (n - 1)` seconds, at most `max_s`.

    `deadline` bounds it: no retry is started whose wait would end at or after it.
    """

    attempts: int = 4
    first_s: float = 2.0
    factor: float = 2.0
    max_s: float = 300.0
    deadline: datetime | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_s < 0 or self.factor < 1 or self.max_s < self.first_s:
            raise ValueError(f"not a retry policy: {self!r}")

    def delay_s(self, retry: int) -> float:
        """The wait before retry number `retry` (1: the first retry)."""
        return float(min(self.first_s * self.factor ** max(retry - 1, 0), self.max_s))

    def delays(self) -> list[float]:
        """Every wait, in order (one fewer than the attempts)."""
        return [self.delay_s(n) for n in range(1, self.attempts)]

    def gives_up(self, attempt: int, now: datetime | None = None, delay_s: float | None = None) -> bool:
        """After `attempt` failed (1: the first), whether to stop: out of attempts, or the next would start too late."""
        if attempt >= self.attempts:
            return True
        if self.deadline is None or now is None:
            return False
        wait = self.delay_s(attempt) if delay_s is None else delay_s
        return now + timedelta(seconds=wait) >= self.deadline

    def until(self, deadline: datetime) -> Retry:
        """The same policy, bounded by `deadline`."""
        return replace(self, deadline=deadline)


# Named policies, one definition each.
ACTIVITY_RETRY = Retry()  # an activity call, when the pipeline says nothing
CANCEL_RETRY = Retry(attempts=6, first_s=5.0, max_s=300.0)  # cancelling a training job: about 5 minutes
STORE_RETRY = Retry(attempts=6, first_s=2.0, max_s=60.0)  # the run queue's store
RECORD_RETRY = Retry(attempts=8, first_s=2.0, max_s=120.0)  # run records and serving records
SIGNALS_RETRY = Retry(attempts=4, first_s=2.0, max_s=30.0)  # operators' decisions
NOTIFY_RETRY = Retry(attempts=5, first_s=1.0, factor=3.0, max_s=300.0)  # a webhook: about two minutes in all
HTTP_RETRY = Retry(attempts=4, first_s=0.5, max_s=30.0)  # one ML service request, inside an activity
STORAGE_RETRY = Retry(attempts=7, first_s=1.0, max_s=16.0)  # one storage request: 1, 2, 4, 8, 16 s after a quick first
QUICK_FIRST_S = (
    0.05  # a dropped connection is retried at once: likeliest a pooled one the server closed as it was reused
)
