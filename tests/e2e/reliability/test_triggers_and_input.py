"""Duplicate triggers give one run (plus at most one follow-up); bad input gets a clear error, never a crash."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.datasets import breast_cancer
from devhost.stack import LocalStack
from orchestrators.retrain_pipeline import instance_id_for
from retraining.bes import BatchExecutionClient
from retraining.errors import ConfigError, ResponseFormatError, ServiceError
from retraining.http import ServiceClient
from retraining.models import BlobPath
from triggers.blob_arrival import blob_of_event
from triggers.http_start import parse_start_body

from ..conftest import DATA_CONTAINER, run_records, start_run, status_url, wait_for_instance
from .conftest import Ledger

pytestmark = pytest.mark.e2e

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
                    max_leaves=12)


def settle(stack: LocalStack, pipeline: str = "weekly-retrain") -> dict[str, Any]:
    """Wait until the pipeline's instance has ended, then again in case a follow-up continued it."""
    wait_for_instance(status_url(stack, instance_id_for(pipeline)), timeout_s=180)
    time.sleep(0.5)
    return wait_for_instance(status_url(stack, instance_id_for(pipeline)), timeout_s=180)


def test_same_blob_event_twice_starts_one_run(stack: LocalStack, ledger: Ledger, seeded: str) -> None:
    ledger.scenarios.append("duplicate blob event")
    assert stack.host is not None
    settle(stack)
    before = len(run_records(stack, "weekly-retrain"))
    blob = stack.blob_service.get_blob_client(DATA_CONTAINER, "incoming/duplicate.arff")
    blob.upload_blob(breast_cancer().head(200).to_arff(), overwrite=True)
    listed = next(b for b in stack.blob_service.get_container_client(DATA_CONTAINER).list_blobs(name_starts_with="incoming/duplicate"))
    event = stack.host._blob_created_event(stack.blob_service, DATA_CONTAINER, listed)
    function = stack.host.app.event_grid[0]
    stack.host.fire(function, event)
    stack.host.fire(function, event)  # Event Grid delivers at least once: the same event again
    final = settle(stack)
    records = run_records(stack, "weekly-retrain")[before:]
    new = [r for r in run_records(stack, "weekly-retrain") if r["request"]["training_blob"] == f"{DATA_CONTAINER}/incoming/duplicate.arff"]
    assert len(new) == 1, [r["request"]["trigger"] for r in records]
    ledger.record_run(final["output"], "duplicate blob event")


def test_concurrent_http_starts_give_one_run_and_at_most_one_follow_up(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("concurrent HTTP starts")
    settle(stack)
    training_id = stack.services["webServices"][0]["id"]
    requests.post(f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id, "duration_s": 1.0, "remaining": 2}, timeout=10)
    before = len(run_records(stack, "weekly-retrain"))
    actions: list[str] = []

    def start() -> None:
        response = start_run(stack, "weekly-retrain")
        ledger.responses.append(response.text)
        actions.append(response.json()["action"])

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert actions.count("started") == 1, actions
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        settle(stack)
        if len(run_records(stack, "weekly-retrain")) >= before + 2:
            break
    time.sleep(1.0)
    new = run_records(stack, "weekly-retrain")[before:]
    assert len(new) == 2, f"expected one run plus one follow-up, got {len(new)}"
    for record in new:
        ledger.record_run(record, "concurrent HTTP starts")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON)
def test_start_bodies_never_crash(body: Any) -> None:
    try:
        parse_start_body(json.dumps(body).encode())
    except ValueError as exc:
        assert ": " in str(exc)  # names the field


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_blob_paths_and_events_never_escape(text: str) -> None:
    try:
        path = BlobPath.parse(text)
    except ConfigError:
        return
    assert ".." not in path.name.split("/") and "\\" not in path.name and not path.name.startswith("/")
    account = "http://127.0.0.1:10000/devstoreaccount1/"
    found = blob_of_event("Microsoft.Storage.BlobCreated", {"url": account + text}, account)
    assert found is None or ".." not in found[0].name.split("/")


class _Canned(requests.adapters.HTTPAdapter):
    """A transport that answers every request with one canned response (pure parsing under test)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.status, self.body = status, body

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        response = requests.Response()
        response.status_code, response._content, response.request = self.status, self.body, request
        response.headers["Content-Type"] = "application/json"
        return response


def _client(status: int, body: bytes) -> BatchExecutionClient:
    session = requests.Session()
    session.mount("http://", _Canned(status, body))
    return BatchExecutionClient("http://bes/workspaces/w/services/s/jobs", "key", ServiceClient("BES", session=session, max_attempts=1))


@settings(max_examples=150, deadline=None)
@given(status=st.sampled_from([200, 200, 200, 400, 404, 500, 503]), body=JSON | st.binary(max_size=80))
def test_bes_responses_of_any_shape_give_typed_outcomes(status: int, body: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    client = _client(status, raw)
    for call in (lambda: client.get_status("job1"), lambda: client.submit({})):
        with contextlib.suppress(ResponseFormatError, ServiceError):  # any other exception fails the test
            call()


def test_oversized_and_hostile_service_bodies_are_refused(ledger: Ledger) -> None:
    ledger.scenarios.append("bad input")
    cases = [b"[" * 10_000, b'{"StatusCode": "Finished", "Results": "x"}', b'{"StatusCode": 7}', b"\xff\xfe",
             json.dumps({"StatusCode": "Finished", "Results": {"output1": []}}).encode(), b"0" * 5_000_000]
    for body in cases:
        with pytest.raises((ResponseFormatError, ServiceError)):
            _client(200, body).get_status("job1")
        ledger.bad_inputs += 1


def test_bad_http_bodies_through_devhost_never_crash(stack: LocalStack, ledger: Ledger) -> None:
    assert stack.host is not None
    url = f"{stack.host.base_url}/api/pipelines/weekly-retrain/runs"
    headers = {"x-functions-key": stack.host.function_key, "Content-Type": "application/json"}
    for body in (b"{", b"null", b"[]", b'{"trainingBlob": "labeledexamples/\\u0000.arff"}', b'{"trainingBlob": "labeledexamples/' + b"a/" * 600 + b'x"}',
                 b'{"dryRun": 1}', "{\"trainingBlob\": \"labeledexamples/é/../../x\"}".encode(), b"x" * 100_000):
        response = requests.post(url, data=body, headers=headers, timeout=30)
        ledger.bad_inputs += 1
        assert response.status_code == 400, (body[:40], response.status_code, response.text[:200])
        assert "Traceback" not in response.text and response.json()["error"]["field"]
