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

from .retry import QUICK_FIRST_S, STORAGE_RETRY, Retry


class QuickRetry(ExponentialRetry):
    """The SDK's retry loop with our policy's delays: the first retry at once (`QUICK_FIRST_S`), then
    `STORAGE_RETRY`'s: 0.05, 1, 2, 4, 8, 16 s (31 s in all), each ±20% so clients do not retry in step."""

    def __init__(self, policy: Retry = STORAGE_RETRY) -> None:
        super().__init__(retry_total=policy.attempts - 1)
        self.policy = policy

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        retry = settings["count"]  # 1 before the first retry
        wait = QUICK_FIRST_S if retry <= 1 else self.policy.delay_s(retry - 1)
        return random.uniform(0.8 * wait, 1.2 * wait)
