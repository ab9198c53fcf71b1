"""The reliability ledger: every scenario reports into one summary line, and the invariants are checked last.

    reliability: S scenarios, F faults injected, B bad inputs tried, R runs, 0 lost, 0 leaked, 0 duplicate jobs, 0 orphaned jobs

- faults: calls the emulator failed, stalled or dropped on purpose, plus storage and host restarts;
- bad inputs: hostile or malformed inputs a parser or route refused (counted apart from faults);
- runs: run records written while the suite ran;
- lost: an accepted request that never ended (run, or superseded by a run that ran), a run without a record;
- duplicate jobs: a run for which the service started more than one job, or two runs of a pipeline that overlapped;
- orphaned jobs: training jobs still running once every pipeline is idle;
- leaked: a key, a secret or a SAS signature in any log the stack wrote, the task hub, storage or an HTTP answer.

`make reliability` prints the line last (from `.reliability/summary.txt`); the suite fails if any
invariant broke (test_zz_invariants.py).
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
from retraining.queue import RequestState, RunQueue
from retraining.settings import Settings
from retraining.storage import TrainingStorage

from ..conftest import LogLines, emulator_state, run_records

SUMMARY = Path(".reliability") / "summary.txt"
OUR_LOGGERS = ("retraining", "activities", "orchestrators", "triggers", "devhost")
PIPELINES = (
    "weekly-retrain",
    "strict-gate",
    "short-timeout",
    "storm",
    "aml-retrain",
    "aml-strict-gate",
    "aml-short-timeout",
    "aml-events",
    "aml-direct",
)
AML_JOB_ENDED = ("Completed", "Failed", "Canceled")


@dataclass
class Ledger:
    stack: LocalStack
    faults_at_start: int
    records_at_start: int
    logs: LogLines
    scenarios: list[str] = field(default_factory=list)
    extra_faults: int = 0  # storage restarts, host restarts, faults injected in-process
    bad_inputs: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # request id -> pipeline
    lost: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)

    @property
    def emulator_url(self) -> str:
        assert self.stack.emulator is not None
        return self.stack.emulator.http_base

    @property
    def queue(self) -> RunQueue:
        return RunQueue(TrainingStorage.from_settings(Settings.from_env(self.stack.settings)), "runrecords")

    def accept(self, response: requests.Response) -> dict[str, Any]:
        """Keep an HTTP start's answer; a queued request must end, or it counts as lost."""
        self.responses.append(response.text)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        self.accepted[body["id"]] = body["pipeline"]
        return body

    def expect(self, pipeline: str, request_id: str) -> None:
        """A request accepted another way (a blob event, the timer) that must end too."""
        self.accepted[request_id] = pipeline

    @property
    def faults_injected(self) -> int:
        counters = emulator_state(self.emulator_url)["counters"]
        return int(counters.get("faults_injected", 0)) - self.faults_at_start + self.extra_faults

    def records(self) -> list[dict[str, Any]]:
        return [r for p in PIPELINES for r in run_records(self.stack, p)]

    def check_requests(self) -> None:
        """Every accepted request ended: done with a record, or superseded by a run that has one."""
        recorded = {r["run_id"] for r in self.records()}
        queue = self.queue
        for request_id, pipeline in self.accepted.items():
            entry = queue.get(pipeline, request_id)
            if entry is None:
                self.lost.append(f"{pipeline} request {request_id} is not in the store")
            elif not entry.state.finished:
                self.lost.append(f"{pipeline} request {request_id} never ended (still {entry.state.value})")
            elif entry.state is RequestState.DONE and entry.run_id not in recorded:
                self.lost.append(f"{pipeline} request {request_id}: run {entry.run_id} has no record")
            elif entry.state is RequestState.SUPERSEDED and entry.superseded_by_run not in recorded:
                self.lost.append(
                    f"{pipeline} request {request_id}: superseded by run {entry.superseded_by_run}, which has no record"
                )

    def duplicate_jobs(self) -> list[str]:
        """Runs for which the training service started more than one job; runs of one pipeline that overlapped."""
        started: Counter[str] = Counter()
        for job in emulator_state(self.emulator_url)["jobs"]:
            if job["started_at"] is None:
                continue  # submitted but never started (a retried submit): not a second training job
            for location in job.get("outputs", []):
                parts = location.split("/")
                if len(parts) >= 4 and parts[-1] == "model.ilearner":
                    started[parts[-2]] += 1
        for job in self.aml_jobs():  # Azure ML: the job's name is the run's, and its tags name the run as well
            if job["jobType"] == "Command":
                started[job["name"].rsplit("-", 2)[-2] + "-" + job["name"].rsplit("-", 1)[-1]] += 1
        duplicates = [f"run {run} started {count} jobs" for run, count in started.items() if count > 1]
        for pipeline in PIPELINES:
            spans = sorted((r["started_at"], r["finished_at"], r["run_id"]) for r in run_records(self.stack, pipeline))
            for (_, end, first), (begin, _, second) in zip(spans, spans[1:], strict=False):
                if begin < end:
                    duplicates.append(f"{pipeline}: runs {first} and {second} overlapped")
        return duplicates

    def orphaned_jobs(self) -> list[str]:
        """Training jobs still running although no run is in progress (call once every pipeline is idle)."""
        studio = [
            f"job {j['id']} is {j['status']}"
            for j in emulator_state(self.emulator_url)["jobs"]
            if j["status"] == "Running" or (j["status"] == "NotStarted" and (j.get("queued") or j["started_at"]))
        ]
        return studio + [
            f"Azure ML job {j['name']} is {j['status']}" for j in self.aml_jobs() if j["status"] not in AML_JOB_ENDED
        ]

    def aml_jobs(self) -> list[dict[str, Any]]:
        return [j for ws in emulator_state(self.emulator_url)["azureMl"]["workspaces"] for j in ws["jobs"]]

    def runs(self) -> int:
        return len(self.records()) - self.records_at_start

    def summary(self) -> str:
        return (
            f"reliability: {len(self.scenarios)} scenarios, {self.faults_injected} faults injected, "
            f"{self.bad_inputs} bad inputs tried, {self.runs()} runs, {len(self.lost)} lost, {len(self.leaked)} leaked, "
            f"{len(self.duplicate_jobs())} duplicate jobs, {len(self.orphaned_jobs())} orphaned jobs"
        )


_LEDGER: list[Ledger] = []
_WRITTEN: list[str] = []


def write_summary(line: str) -> None:
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(line + "\n")
    _WRITTEN.append(line)


@pytest.fixture(scope="session")
def ledger(stack: LocalStack) -> Iterator[Ledger]:
    handler = LogLines()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in (*OUR_LOGGERS, "urllib3", "azure")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    assert stack.emulator is not None
    counters = requests.get(f"{stack.emulator.http_base}/_emulator/state", timeout=10).json()["counters"]
    book = Ledger(stack, int(counters.get("faults_injected", 0)), 0, handler)
    book.records_at_start = len(book.records())
    _LEDGER.append(book)
    yield book
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LEDGER and not _WRITTEN:  # the invariants test never ran: say so rather than guess numbers
        write_summary(
            f"reliability: incomplete ({len(_LEDGER[0].scenarios)} scenarios ran; the invariants were not checked)"
        )
