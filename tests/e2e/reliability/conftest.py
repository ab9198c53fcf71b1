"""The reliability ledger: every scenario reports runs, faults and invariants into one summary line.

    reliability: S scenarios, F faults injected, R runs, 0 lost, 0 leaked, 0 duplicate jobs

`make reliability` prints it last (from `.reliability/summary.txt`); the suite fails if any
invariant broke (see test_zz_invariants.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.stack import LocalStack

from ..conftest import LogLines, emulator_state, run_records

SUMMARY = Path(".reliability") / "summary.txt"
OUR_LOGGERS = ("retraining", "activities", "orchestrators", "triggers", "devhost")


@dataclass
class Ledger:
    stack: LocalStack
    faults_at_start: int
    logs: LogLines
    scenarios: list[str] = field(default_factory=list)
    storage_restarts: int = 0
    bad_inputs: int = 0
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)

    def record_run(self, result: dict[str, Any] | None, context: str) -> None:
        """A run we started must have ended with a record in storage; otherwise it is lost."""
        if not isinstance(result, dict) or "run_id" not in result:
            self.lost.append(f"{context}: no result ({result!r})"[:200])
            return
        records = {r["run_id"]: r for r in run_records(self.stack, result["pipeline"])}
        if result["run_id"] not in records:
            self.lost.append(f"{context}: run {result['run_id']} has no run record")
        self.runs[result["run_id"]] = result

    @property
    def faults_injected(self) -> int:
        counters = emulator_state(self.emulator_url)["counters"]
        return int(counters.get("faults_injected", 0)) - self.faults_at_start + self.storage_restarts + self.bad_inputs

    @property
    def emulator_url(self) -> str:
        assert self.stack.emulator is not None
        return self.stack.emulator.http_base

    def duplicate_jobs(self) -> list[str]:
        """Runs for which the training service started more than one job."""
        started: Counter[str] = Counter()
        for job in emulator_state(self.emulator_url)["jobs"]:
            if job["started_at"] is None:
                continue  # submitted but never started (a retried submit): not a second training job
            for location in job.get("outputs", []):
                parts = location.split("/")
                if len(parts) >= 4 and parts[-1] == "model.ilearner":
                    started[parts[-2]] += 1
        return [run for run, count in started.items() if count > 1]

    def summary(self) -> str:
        return (f"reliability: {len(self.scenarios)} scenarios, {self.faults_injected} faults injected, {len(self.runs)} runs, "
                f"{len(self.lost)} lost, {len(self.leaked)} leaked, {len(self.duplicate_jobs())} duplicate jobs")


_LEDGER: list[Ledger] = []
_WRITTEN: list[str] = []


def write_summary(line: str) -> None:
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(line + "\n")
    _WRITTEN.append(line)


@pytest.fixture(scope="session")
def ledger(stack: LocalStack) -> Iterator[Ledger]:
    handler = LogLines()
    logging.getLogger().addHandler(handler)
    levels = {}
    for name in OUR_LOGGERS:
        levels[name] = logging.getLogger(name).level
        logging.getLogger(name).setLevel(logging.DEBUG)
    assert stack.emulator is not None
    counters = requests.get(f"{stack.emulator.http_base}/_emulator/state", timeout=10).json()["counters"]
    book = Ledger(stack, int(counters.get("faults_injected", 0)), handler)
    _LEDGER.append(book)
    yield book
    logging.getLogger().removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LEDGER and not _WRITTEN:  # the invariants test never ran: say so rather than guess numbers
        write_summary(f"reliability: incomplete ({len(_LEDGER[0].scenarios)} scenarios ran; the invariants were not checked)")
