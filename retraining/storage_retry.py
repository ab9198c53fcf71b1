"""How our storage clients retry: at once for a dropped connection, then backing off for an outage.

azure-storage-blob retries with its own policy, which waits `initial_backoff + increment_base ** n`
seconds (18 s before the first retry, by default) and ignores azure-core's `retry_backoff_*`
settings. The likeliest first failure is a pooled connection the server closed as it was reused
(a keep-alive race); waiting 18 s for it stalled runs (a job's end was noticed 20 to 80 s late).
Imported when storage is first used.
"""

from __future__ import annotations

import random
from typing import Any

from azure.storage.blob import ExponentialRetry


class QuickRetry(ExponentialRetry):
    """The first retry after `first_s`, then `then_s` doubling up to `max_s`: 0.05, 1, 2, 4, 8, 16 s (31 s in all), ±20%."""

    def __init__(
        self, *, first_s: float = 0.05, then_s: float = 1.0, max_s: float = 16.0, retry_total: int = 6
    ) -> None:
        super().__init__(retry_total=retry_total)
        self.first_s, self.then_s, self.max_s = first_s, then_s, max_s

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        retry = settings["count"]  # 1 before the first retry
        wait = self.first_s if retry <= 1 else min(self.max_s, self.then_s * 2 ** (retry - 2))
        return random.uniform(0.8 * wait, 1.2 * wait)
