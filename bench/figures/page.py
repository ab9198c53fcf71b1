"""The status page of a pipeline with 1,000 runs (`bench/page.py`), against reading the records one by one.

It runs its own Azurite and devhost (one pipeline, seeded records), after the shared stack's figures.
"""

from __future__ import annotations

from typing import Any

from bench import page
from bench.figures import Row
from bench.stack import WORK, Stack

NAME = "page"


def prepare(stack: Stack) -> None:
    pass


def measure(stack: Stack) -> dict[str, Any]:
    return page.measure(WORK / "page")


def report(r: dict[str, Any]) -> list[str]:
    return [page.report(r)]


def summary(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"status page of a pipeline with {r['runs']} runs",
            f"{r['page_median_s']} s (max {r['page_max_s']} s)",
            "reported",
            f"reading the newest {r['runs']} records one by one: {r['baseline_record_by_record_s']} s",
            None,
        )
    ]
