"""The ledger each process's reliability tests report into, and the invariants it checks over that process's stack.

See report.py for the summary line the ledgers' reports are merged into.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devhost.stack import LocalStack
from retraining.queue import RequestState, RunQueue
from retraining.settings import Settings
from retraining.storage import TrainingStorage

from ..helpers import LogLines, emulator_state, run_records, settle, stack_secrets
from .report import Report

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
    "aml-yield",
    "aml-revert",
    "aml-batch-yield",
    "notified-slow",
)  # the pipelines the suite's tests run (each is settled and checked when the session ends)
AML_JOB_ENDED = ("Completed", "Failed", "Canceled")


@dataclass
class Ledger:
    stack: LocalStack
    faults_at_start: int
    logs: LogLines
    scenarios: list[str] = field(default_factory=list)
    extra_faults: int = 0  # storage restarts, host restarts, faults injected in-process
    bad_inputs: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # request id -> pipeline
    lost: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)  # the tests that reported
    service_faults: int = 0  # faults the emulator injected while a test of this suite ran
    runs: int = 0  # run records written while a test of this suite ran, or while the ledger settled

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
        """Faults injected since the ledger opened, by anyone (for a test to see its own faults fire)."""
        return self.emulator_faults() - self.faults_at_start + self.extra_faults

    def emulator_faults(self) -> int:
        return int(emulator_state(self.emulator_url)["counters"].get("faults_injected", 0))

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

    def close(self) -> Report:
        """Wait for every pipeline to be idle, check the invariants, scan everything for secrets: this process's report."""
        stack = self.stack
        assert stack.host is not None and stack.azurite is not None and stack.emulator is not None
        self.scenarios.append("secrets canary")
        records = len(self.records())
        for pipeline in PIPELINES:
            try:
                settle(stack, pipeline, timeout_s=240)
            except AssertionError as exc:  # a run that never ends is lost, not a reason to skip the count
                self.lost.append(str(exc))
        self.runs += len(self.records()) - records
        self.check_requests()

        host = stack.host
        secrets = stack_secrets(stack)
        hub = []
        for state in host.engine.client.get_all_orchestration_states():
            hub.append(
                json.dumps(
                    host.management.status_body(
                        state, show_input=True, history=host.management.history(state.instance_id, True)
                    )
                )
            )
        stored = []
        for container in ("runrecords", "trainingoutput"):
            client = stack.blob_service.get_container_client(container)
            if not client.exists():  # nothing ran that writes there (one module run alone)
                continue
            stored += [
                client.download_blob(b.name).readall().decode() for b in client.list_blobs() if b.name.endswith(".json")
            ]
        files = {"Azurite's log": stack.azurite.log_path, "the emulator's log": stack.emulator.log_path}
        places = {
            "the app's and devhost's logs": self.logs.lines,
            "task hub": hub,
            "storage (records, queue, lineage)": stored,
            "HTTP responses": self.responses,
        } | {name: [Path(path).read_text(errors="replace")] for name, path in files.items()}
        for place, texts in places.items():
            for text in texts:
                for name, value in secrets.items():
                    if value and value in text:  # reported with a little context, the secret itself masked
                        at = text.index(value)
                        self.leaked.append(
                            f"{name} in {place}: ...{text[max(0, at - 160) : at]}***"
                            f"{text[at + len(value) : at + len(value) + 40]}..."
                        )
                if "sig=" in text:
                    self.leaked.append(f"a SAS signature in {place}")
        return Report(
            "stack",
            tests=self.tests,
            scenarios=self.scenarios,
            faults=self.service_faults + self.extra_faults,
            bad_inputs=self.bad_inputs,
            runs=self.runs,
            lost=self.lost,
            leaked=sorted(set(self.leaked)),
            duplicate_jobs=self.duplicate_jobs(),
            orphaned_jobs=self.orphaned_jobs(),
            hub=len(hub),
            log_lines=len(self.logs.lines),
        )
