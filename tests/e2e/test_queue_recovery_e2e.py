"""A run queue terminated by hand while its run goes on: no second queue, and so no second run, until that run ends."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from devhost.stack import LocalStack
from retraining.instances import queue_instance_id, run_instance_id

from .helpers import durable, record_of, run_records, settle, start_run, wait_for_phase, wait_for_request

pytestmark = pytest.mark.e2e
PIPELINE = "weekly-retrain"


def status(stack: LocalStack, instance: str) -> Any:
    return durable(stack, lambda client: client.get_status(instance))


def test_a_fresh_queue_waits_for_the_run_a_terminated_queue_left_going(stack: LocalStack, seeded: str) -> None:
    assert stack.host is not None and stack.emulator is not None
    settle(stack, PIPELINE)
    training_id = stack.services["webServices"][0]["id"]
    requests.post(
        f"{stack.emulator.http_base}/_emulator/faults",
        json={"kind": "job", "target": training_id, "duration_s": 12},
        timeout=10,
    )
    first = start_run(stack, PIPELINE).json()
    run_id = wait_for_phase(stack, first["statusUri"], "polling")["run_id"]
    durable(stack, lambda client: client.terminate(queue_instance_id(PIPELINE), "terminated by hand, as an operator"))

    # A new trigger finds the queue gone but its run still going: no fresh queue is started for now.
    second = start_run(stack, PIPELINE)
    assert second.status_code == 202, second.text
    time.sleep(2)
    assert status(stack, queue_instance_id(PIPELINE)).runtime_status is OrchestrationRuntimeStatus.Terminated
    assert status(stack, run_instance_id(PIPELINE, run_id)).runtime_status is OrchestrationRuntimeStatus.Running

    deadline = time.monotonic() + 90
    while status(stack, run_instance_id(PIPELINE, run_id)).runtime_status is not OrchestrationRuntimeStatus.Completed:
        assert time.monotonic() < deadline, "the orphaned run did not finish"
        time.sleep(0.5)

    # Once it has ended, the next trigger starts a fresh queue: it finishes that request from its record.
    third = start_run(stack, PIPELINE)
    assert third.status_code == 202, third.text
    ended = wait_for_request(stack, first["statusUri"])
    assert ended["state"] == "done" and ended["run_id"] == run_id
    old = record_of(stack, ended)
    assert old["status"] == "Succeeded"
    newest = record_of(stack, wait_for_request(stack, third.json()["statusUri"]))
    records = [r for r in run_records(stack, PIPELINE) if r["run_id"] in (run_id, newest["run_id"])]
    assert sorted(r["run_id"] for r in records) == sorted({run_id, newest["run_id"]})  # each ran once
    assert newest["started_at"] >= old["finished_at"]  # no overlap
