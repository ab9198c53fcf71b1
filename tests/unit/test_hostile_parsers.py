"""Hostile input to every parser that takes outside input, under hypothesis: pure functions, no servers.

A bad input must get a clear, typed refusal (a 4xx naming the field, a ConfigError, a
ResponseFormatError...), never a crash or a traceback. Each input refused counts as a bad input
tried in the reliability summary (tests/e2e/reliability/report.py) when this module runs in the
same session as the reliability suite; valid inputs the generators also produce are not counted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrators._common import failure_reason
from retraining.datasets import DataError, read_schema
from retraining.definitions import parse_definitions
from retraining.errors import ConfigError, ResponseFormatError, ServiceError
from retraining.http import ServiceClient, error_from_response
from retraining.models import BlobPath, RunInput, RunRequest, Trigger
from retraining.policy import parse_metrics
from retraining.queue import QueuedRequest
from retraining.retry import Retry
from retraining.services.studio_classic.bes import BatchExecutionClient
from retraining.services.studio_classic.endpoints import ClassicEndpointClient
from tests.e2e.reliability.report import Tally
from triggers._http import BadRequest, read_body
from triggers.blob_arrival import blob_of_event
from triggers.http_start import parse_start_body


@pytest.fixture(scope="session")
def refusals() -> Iterator[Tally]:
    """This process's count of refused inputs, reported when the session ends."""
    tally = Tally()
    yield tally
    tally.report().write()


@pytest.fixture(autouse=True)
def reported(request: pytest.FixtureRequest, refusals: Tally) -> None:
    refusals.tests.append(request.node.nodeid)


FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
HOSTILE_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40) | st.sampled_from(
    ["\ud800", "a\x00b", "../../etc/passwd", "x" * 5000, "labeledexamples/\udfff.arff", "c/\u2028/x", "%2e%2e/x", ""]
)


def refused(refusals: Tally, call: Any, *errors: type[BaseException]) -> bool:
    """Run `call`; a typed refusal counts as a bad input tried. Any other exception fails the test."""
    try:
        call()
    except errors:
        refusals.bad_inputs += 1
        return True
    return False


def http_request(body: bytes) -> func.HttpRequest:
    return func.HttpRequest("POST", "http://localhost/api/pipelines/p/runs", body=body, route_params={"pipeline": "p"})


@FAST
@given(body=JSON.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200))
def test_start_bodies(refusals: Tally, body: bytes) -> None:
    def parse() -> None:
        parse_start_body(read_body(http_request(body), {"trainingBlob", "dryRun"}))

    if not refused(refusals, parse, BadRequest):
        return
    with pytest.raises(BadRequest) as caught:
        parse()
    assert caught.value.field and caught.value.message and "Traceback" not in caught.value.message


@FAST
@given(text=HOSTILE_TEXT)
def test_blob_paths_and_events(refusals: Tally, text: str) -> None:
    if refused(refusals, lambda: BlobPath.parse(text), ConfigError):
        return
    path = BlobPath.parse(text)
    assert ".." not in path.name.split("/") and "\\" not in path.name and not path.name.startswith("/")
    path.name.encode("utf-8")
    account = "http://127.0.0.1:10000/devstoreaccount1/"
    found = blob_of_event("Microsoft.Storage.BlobCreated", {"url": account + text, "eTag": text}, account)
    assert found is None or (".." not in found[0].name.split("/") and found[1].encode("utf-8") is not None)


@FAST
@given(
    raw=st.fixed_dictionaries(
        {
            "pipeline": HOSTILE_TEXT,
            "trigger": st.fixed_dictionaries(
                {
                    "kind": st.sampled_from(["http", "blob", "fax"]),
                    "key": HOSTILE_TEXT,
                    "at": HOSTILE_TEXT | st.just("2026-11-22T03:00:00Z"),
                }
            ),
            "training_blob": st.none() | HOSTILE_TEXT,
            "action": st.sampled_from(["retrain", "promote", "drop"]),
            "source_run": st.none() | HOSTILE_TEXT,
        }
    )
    | JSON
)
def test_stored_requests_and_orchestration_inputs(refusals: Tally, raw: Any) -> None:
    """What the queue reads back from storage and what orchestrations get as input."""
    for parse in (
        lambda: RunRequest.from_dict(raw),
        lambda: RunInput.from_dict(raw),
        lambda: QueuedRequest.from_dict(raw),
        lambda: Trigger.from_dict(raw),
    ):
        with contextlib.suppress(ConfigError):
            parsed = parse()
            json.dumps(parsed.to_dict()).encode("utf-8")  # whatever is accepted can be stored and shown
            continue
        refusals.bad_inputs += 1


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


def _http(status: int, body: bytes) -> ServiceClient:
    session = requests.Session()
    session.mount("http://", _Canned(status, body))
    return ServiceClient("service", session=session, retry=Retry(attempts=1))


@FAST
@given(status=st.sampled_from([200, 200, 200, 201, 400, 401, 404, 409, 500, 503]), body=JSON | st.binary(max_size=120))
def test_service_answers_of_any_shape(refusals: Tally, status: int, body: Any) -> None:
    """BES and classic endpoint answers: typed outcomes or typed errors, nothing else."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    bes = BatchExecutionClient("http://bes/workspaces/w/services/s/jobs", "key", _http(status, raw))
    classic = ClassicEndpointClient("http://ws/workspaces/w/webservices/s/endpoints/e", "key", _http(status, raw))
    for call in (lambda: bes.get_status("job1"), lambda: bes.submit({}), lambda: classic.resource_location("m")):
        refused(refusals, call, ResponseFormatError, ServiceError)
    response = requests.Response()
    response.status_code, response._content = status, raw
    assert isinstance(error_from_response(response, "svc"), ServiceError)


@FAST
@given(
    data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
    name=st.sampled_from(["d.csv", "d.arff", "d.tsv", "d.bin"]),
)
def test_training_data_heads(refusals: Tally, data: bytes, name: str) -> None:
    refused(refusals, lambda: read_schema(data, name, None, complete=True), DataError)


@FAST
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_evaluation_tables(refusals: Tally, data: bytes) -> None:
    refused(refusals, lambda: parse_metrics(data), ResponseFormatError)


@FAST
@given(raw=JSON | st.fixed_dictionaries({"pipelines": st.lists(JSON, max_size=2)}))
def test_pipeline_definitions(refusals: Tally, raw: Any) -> None:
    """An operator's definitions file: every mistake is a ConfigError naming where."""

    def parse() -> None:
        parse_definitions(raw, {}, source="pipelines.json")

    if refused(refusals, parse, ConfigError):
        with pytest.raises(ConfigError, match=r"^pipelines\.json: "):
            parse()


@FAST
@given(text=st.text(max_size=300))
def test_failure_texts(refusals: Tally, text: str) -> None:
    reason = failure_reason(Exception(text))
    assert isinstance(reason, str) and len(reason) <= 500 and "\n" not in reason
    refusals.bad_inputs += 1
