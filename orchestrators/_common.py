"""Helpers shared by the orchestrators (pure, replay-safe)."""

from __future__ import annotations

from datetime import datetime

import azure.durable_functions as df


def retry_options(retries: int, interval_s: float) -> df.RetryOptions:
    """Durable retry options: `retries` retries after the first attempt."""
    return df.RetryOptions(first_retry_interval_in_milliseconds=max(1, int(interval_s * 1000)),
                           max_number_of_attempts=retries + 1)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def failure_reason(exc: BaseException) -> str:
    """The first line of an activity failure, as the Durable runtime surfaces it."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
