"""Secrets never travel: after real runs, no key or SAS appears in logs, task hub, records or responses."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
import requests

from devhost.services import AZURITE_KEY
from devhost.stack import LocalStack
from tests.emulator.aml import Aml

from .helpers import LogLines, stack_secrets, start_run, wait_for_request

pytestmark = pytest.mark.e2e


@pytest.fixture
def all_logs() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def test_no_secret_in_logs_task_hub_records_or_responses(
    stack: LocalStack, seeded: str, emulator_url: str, all_logs: LogLines
) -> None:
    assert stack.host is not None
    secrets = stack_secrets(stack)
    assert (
        secrets["SCORING_API_KEY"] != "endpoint2Key" and secrets["storage account key"] != AZURITE_KEY
    )  # fresh for the session
    aml = Aml(stack.services["azureMl"]["workspaces"][0], stack.services["caFile"], emulator_url)
    secrets |= {f"online endpoint {kind}": key for kind, key in aml.keys("retrain-online").items()}
    responses: list[str] = []
    training_id = stack.services["webServices"][0]["id"]

    def run(pipeline: str, body: dict[str, object] | None = None) -> None:
        response = start_run(stack, pipeline, body)
        responses.append(response.text)
        responses.append(json.dumps(wait_for_request(stack, response.json()["statusUri"])))

    run("weekly-retrain")  # success: SAS tokens minted for inputs, outputs and both updates
    requests.post(
        f"{emulator_url}/_emulator/faults",
        json={"kind": "update", "target": "myWebService", "fail_message": "denied", "remaining": None},
        timeout=10,
    )
    run("weekly-retrain")  # one target fails: its error travels into the outcome
    requests.delete(f"{emulator_url}/_emulator/faults", timeout=10)
    requests.post(
        f"{emulator_url}/_emulator/faults",
        json={"kind": "job", "target": training_id, "fail_details": "bad data"},
        timeout=10,
    )
    run("weekly-retrain")  # the job fails
    responses.append(start_run(stack, "weekly-retrain", {"trainingBlob": "../x"}).text)
    run("aml-retrain")  # Azure ML: tokens for ARM, the endpoint's key for the smoke test and the health probes
    requests.post(
        f"{emulator_url}/_emulator/faults",
        json={"kind": "aml_deployment", "endpoint": "retrain-online", "error_rate": 0.5},
        timeout=10,
    )
    run("aml-retrain")  # a canary fails its health check and is rolled back: the failures travel into the outcome
    requests.delete(f"{emulator_url}/_emulator/faults", timeout=10)

    hub = []  # read in process: the system key stays out of even this test's own requests
    management = stack.host.management
    for state in stack.host.engine.client.get_all_orchestration_states():
        history = management.history(state.instance_id, with_output=True)
        hub.append(json.dumps(management.status_body(state, show_input=True, history=history)))
    assert any("ExecutionStarted" in h for h in hub) and len(hub) >= 3

    records = []
    for container in ("runrecords", "trainingoutput"):
        client = stack.blob_service.get_container_client(container)
        records += [
            client.download_blob(b.name).readall().decode() for b in client.list_blobs() if b.name.endswith(".json")
        ]
    assert records

    places = {
        "logs": "\n".join(all_logs.lines),
        "task hub": "\n".join(hub),
        "run records": "\n".join(records),
        "HTTP responses": "\n".join(responses),
    }
    assert "SubmittedJob" not in places["logs"]  # sanity: we captured the app's own log lines, not nothing
    assert any("submitted training job" in line for line in all_logs.lines)
    for place, text in places.items():
        for name, value in secrets.items():
            assert value not in text, f"{name} leaked into {place}"
        assert "sig=" not in text, f"a SAS signature leaked into {place}"
        assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ", text), f"a bearer token (JWT) leaked into {place}"
