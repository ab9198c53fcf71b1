"""Values from outside that must not break or leak: non-finite metrics and settings, credentials in URLs, event
times far in the future, an Idempotency-Key reused with another body, and how a decision reads.

The trigger functions are called directly, their storage and Durable client replaced by small fakes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
import requests

from retraining import notify
from retraining.definitions import Notifications
from retraining.errors import ConfigError, ForeignLocationError, ResponseFormatError, RetrainingError
from retraining.http import ServiceClient
from retraining.models import BlobPath, Decision, DecisionAction, RunRequest
from retraining.policy import check_result_location, parse_metrics
from retraining.retry import Retry
from retraining.settings import Settings
from retraining.text import origin
from triggers import blob_arrival, decisions, http_start
from triggers.starter import Enqueued

SECRET_URL = "https://user:secret@hooks.example.com:8443/path?sig=abc"
LEAKS = ("user", "secret", "path", "sig", "abc")
RUN_ID = "20261122T030000Z-1a2b3c4d"


def user_code(function: Any) -> Any:
    """A trigger function as written, without the Functions and Durable decorators (which bind the client)."""
    return function._function.get_user_function().__wrapped__


# Metrics


@pytest.mark.parametrize(("cell", "said"), [("nan", "NaN"), ("inf", "infinite"), ("-Infinity", "infinite")])
def test_collect_refuses_a_non_finite_metric_naming_it(cell: str, said: str) -> None:
    with pytest.raises(ResponseFormatError, match=f"metric 'loss' is {said}"):
        parse_metrics(f"AUC,loss,Note\n0.91,{cell},diverged\n".encode())
    with pytest.raises(ResponseFormatError, match="metric 'loss' is infinite"):
        parse_metrics(b"AUC,loss\n0.91,1e999\n")  # too large for a float: read as infinity
    assert parse_metrics(b"AUC,loss\n0.91,1e300\n") == {"AUC": 0.91, "loss": 1e300}  # huge but finite: kept


# URLs in messages


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SECRET_URL, "https://hooks.example.com:8443"),
        ("https://HOOKS.example.com/services/T0/B0/XXXX", "https://hooks.example.com"),
        ("http://[::1]:8080/a?b=c", "http://[::1]:8080"),
        ("https://user@host", "https://host"),
        ("not a url", "(a URL without a host)"),
        ("https://host:port/", "(a URL that cannot be read)"),
    ],
)
def test_a_url_is_shown_as_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert origin(url) == shown


class Session:
    def __init__(self, answer: int | None) -> None:
        self.answer = answer

    def post(self, url: str, **_: Any) -> SimpleNamespace:
        if self.answer is None:
            raise requests.ConnectionError(f"cannot reach {url}")  # requests' own text holds the whole URL
        return SimpleNamespace(status_code=self.answer)


@pytest.mark.parametrize("answer", [None, 400, 503])
def test_a_webhook_with_credentials_in_its_url_leaks_nothing_into_the_error(
    monkeypatch: pytest.MonkeyPatch, answer: int | None
) -> None:
    monkeypatch.setattr(notify, "shared_session", lambda url: Session(answer))
    settings = Settings.from_env({"TrainingStorage": "UseDevelopmentStorage=true", "HOOK_KEY": "k"})
    payload = {"event": "run_not_succeeded", "pipeline": "p", "run_id": RUN_ID, "status": "Failed"}
    with pytest.raises(RetrainingError) as caught:
        notify.deliver(settings, Notifications(SECRET_URL, "HOOK_KEY"), payload)
    message = str(caught.value)
    assert "https://hooks.example.com:8443" in message
    assert not [word for word in LEAKS if word in message], message


def test_service_errors_and_retry_logs_show_the_origin_only(caplog: pytest.LogCaptureFixture) -> None:
    class Refusing:
        def request(self, *_: Any, **__: Any) -> Any:
            raise requests.ConnectionError("no")

    client = ServiceClient("svc", session=Refusing(), retry=Retry(attempts=2, first_s=0.0), sleep=lambda s: None)  # type: ignore[arg-type]
    with caplog.at_level("WARNING"), pytest.raises(RetrainingError) as caught:
        client.request("GET", SECRET_URL, headers={})
    shown = str(caught.value) + caplog.text
    assert "https://hooks.example.com:8443" in shown and not [word for word in LEAKS if word in shown], shown


def test_a_foreign_result_location_is_named_by_its_origin() -> None:
    with pytest.raises(ForeignLocationError) as caught:
        check_result_location(
            SECRET_URL,
            "trainingoutput/p/run/model.ilearner",
            account_url="http://127.0.0.1:10000/devstoreaccount1/",
            expected=BlobPath("trainingoutput", "p/run/model.ilearner"),
        )
    assert "https://hooks.example.com:8443" in str(caught.value)
    assert not [word for word in LEAKS if word in str(caught.value)]


# Settings


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
@pytest.mark.parametrize(
    "name",
    [
        "RETRAIN_HISTORY_RETENTION_DAYS",
        "RETRAIN_HTTP_TIMEOUT_SECONDS",
        "RETRAIN_UPDATE_WAIT_SECONDS",
        "RETRAIN_SAS_MINUTES_MARGIN",
    ],
)
def test_non_finite_numeric_settings_are_refused_naming_the_setting_not_its_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"TrainingStorage": "UseDevelopmentStorage=true", name: value})
    message = str(caught.value)
    assert name in message and "finite" in message
    assert value.lower() not in message.lower().replace(name.lower(), "")


# Event times


def test_an_event_time_in_the_future_is_replaced_by_the_arrival_time_and_noted() -> None:
    arrived = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    at, note = blob_arrival.event_time(datetime(9999, 12, 31, tzinfo=UTC), arrived)
    assert at == "2026-11-22T03:00:00Z" and "9999-12-31T00:00:00Z" in note and "future" in note
    ahead = arrived + timedelta(minutes=4)  # a clock a little ahead: its time is kept
    assert blob_arrival.event_time(ahead, arrived) == ("2026-11-22T03:04:00Z", "")
    assert blob_arrival.event_time(datetime(2026, 11, 22, 2, 0), arrived) == ("2026-11-22T02:00:00Z", "")
    assert blob_arrival.event_time(None, arrived) == ("2026-11-22T03:00:00Z", "")


def test_a_blob_event_from_the_year_9999_queues_a_request_ordered_by_arrival(monkeypatch: pytest.MonkeyPatch) -> None:
    account = "http://127.0.0.1:10000/devstoreaccount1"
    queued: list[RunRequest] = []

    async def enqueue(client: Any, settings: Any, request: RunRequest) -> Enqueued:
        queued.append(request)
        return Enqueued(request.pipeline, "id", True, "pending")

    pipeline = SimpleNamespace(name="weekly", watches=lambda container, name: True)
    monkeypatch.setattr(blob_arrival.Settings, "from_env", staticmethod(lambda *a: None))
    monkeypatch.setattr(blob_arrival, "storage", lambda settings: SimpleNamespace(account_url=account + "/"))
    monkeypatch.setattr(
        blob_arrival.operations, "definitions", lambda settings: SimpleNamespace(pipelines={"weekly": pipeline})
    )
    monkeypatch.setattr(blob_arrival, "enqueue", enqueue)
    event = func.EventGridEvent(
        id="e1",
        data={"url": f"{account}/labeledexamples/new.arff", "eTag": "0x1", "contentLength": 5},
        topic="t",
        subject="s",
        event_type=blob_arrival.BLOB_CREATED,
        event_time=datetime(9999, 12, 31, tzinfo=UTC),
        data_version="1",
    )
    before = datetime.now(UTC)
    asyncio.run(user_code(blob_arrival.training_data_arrived)(event, None))  # type: ignore[arg-type]
    (request,) = queued
    assert before - timedelta(seconds=1) <= request.trigger.moment <= datetime.now(UTC)
    assert request.trigger.detail.startswith("labeledexamples/new.arff (eventTime 9999-12-31")


# Idempotency-Key


def start_request(body: dict[str, Any], key: str = "k-1") -> func.HttpRequest:
    return func.HttpRequest(
        "POST",
        "http://localhost/api/pipelines/weekly/runs",
        headers={"Idempotency-Key": key},
        route_params={"pipeline": "weekly"},
        body=json.dumps(body).encode(),
    )


@pytest.fixture
def start_route(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The start route on an in-memory queue: a request is stored once per Idempotency-Key."""
    stored: dict[str, Any] = {}

    async def enqueue(client: Any, settings: Any, request: RunRequest) -> Enqueued:
        accepted = request.trigger.key not in stored
        stored.setdefault(request.trigger.key, SimpleNamespace(request=request))
        return Enqueued(request.pipeline, request.trigger.key, accepted, "pending")

    queue = SimpleNamespace(get=lambda pipeline, request_id: stored.get(request_id))
    pipeline = SimpleNamespace(name="weekly", data_container="labeledexamples")
    monkeypatch.setattr(http_start.Settings, "from_env", staticmethod(lambda *a: SimpleNamespace(easy_auth=False)))
    monkeypatch.setattr(http_start, "storage", lambda settings: None, raising=False)
    monkeypatch.setattr(
        http_start.operations,
        "definitions",
        lambda settings: SimpleNamespace(pipelines={"weekly": pipeline}, unavailable={}),
    )
    monkeypatch.setattr(http_start.operations, "run_queue", lambda settings, storage: queue)
    monkeypatch.setattr(http_start, "enqueue", enqueue)
    return stored


def start(req: func.HttpRequest) -> tuple[int, dict[str, Any]]:
    answer = asyncio.run(user_code(http_start.start_pipeline_run)(req, None))  # type: ignore[arg-type]
    return answer.status_code, json.loads(answer.get_body())


def test_an_idempotency_key_reused_with_another_blob_is_a_conflict_naming_the_field(
    start_route: dict[str, Any],
) -> None:
    first = {"trainingBlob": "labeledexamples/a.arff"}
    assert start(start_request(first))[0] == 202
    status, body = start(start_request(first))
    assert (status, body["action"]) == (202, "duplicate")  # a retry of the same call is still the same request
    status, body = start(start_request({"trainingBlob": "labeledexamples/b.arff"}))
    assert status == 409 and body["error"]["field"] == "trainingBlob", body
    assert body["error"]["code"] == "IdempotencyKeyReused"
    status, body = start(start_request(first | {"dryRun": True}))
    assert status == 409 and body["error"]["field"] == "dryRun", body
    assert [str(e.request.training_blob) for e in start_route.values()] == ["labeledexamples/a.arff"]
    assert start(start_request({"trainingBlob": "labeledexamples/b.arff"}, key="k-2"))[0] == 202


# Decisions


def test_a_conflicting_decision_reads_as_people_say_it(monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = Decision(DecisionAction.REJECT, "ana", "2026-11-22T04:00:00Z")

    async def no_refusal(*_: Any) -> None:
        return None

    store = SimpleNamespace(record=lambda pipeline, run_id, decision: (earlier, False))
    monkeypatch.setattr(decisions.Settings, "from_env", staticmethod(lambda *a: SimpleNamespace(easy_auth=False)))
    monkeypatch.setattr(decisions, "storage", lambda settings: None)
    monkeypatch.setattr(
        decisions.operations, "definitions", lambda settings: SimpleNamespace(pipelines={"weekly": object()})
    )
    monkeypatch.setattr(decisions.operations, "decisions", lambda settings, storage: store)
    monkeypatch.setattr(decisions, "_refusal", no_refusal)
    req = func.HttpRequest(
        "POST",
        f"http://localhost/api/pipelines/weekly/runs/{RUN_ID}/approve",
        route_params={"pipeline": "weekly", "run_id": RUN_ID},
        body=b"{}",
    )
    answer = asyncio.run(decisions.decide_run(req, None, DecisionAction.APPROVE))  # type: ignore[arg-type]
    message = json.loads(answer.get_body())["error"]["message"]
    assert answer.status_code == 409 and f"run {RUN_ID} was already rejected by ana" in message, message


def test_devhost_event_grid_refuses_too_deep_json_and_a_validation_event_without_a_code() -> None:
    from devhost.eventgrid import VALIDATION_EVENT, parse_events, validation_code

    with pytest.raises(ValueError, match="too deep"):  # a RecursionError before: the route answered 500
        parse_events(b"[" * 50_000 + b"]" * 50_000)
    (event,) = parse_events(b'[{"eventType": "%s", "data": "not an object"}]' % VALIDATION_EVENT.encode())
    assert validation_code(event) is None  # the route answers 400 (an AttributeError and 500 before)
    assert validation_code({"eventType": VALIDATION_EVENT, "data": {"validationCode": "abc"}}) == "abc"


def test_a_bes_endpoint_and_a_job_output_url_are_shown_by_origin_only() -> None:
    from retraining.errors import ConfigError
    from retraining.services.azure_ml.training import _shown
    from retraining.services.studio_classic.bes import jobs_url

    with pytest.raises(ConfigError) as refused:
        jobs_url("https://user:secret@bes.example.com:8443/not/a/service?api-version=2.0&sig=abc")
    assert "secret" not in str(refused.value) and "sig=" not in str(refused.value)
    assert "https://bes.example.com:8443/not/a/service" in str(refused.value)
    shown = _shown("https://acct.blob.core.windows.net/c/model?sv=2024&sig=SECRET")
    assert shown == "https://acct.blob.core.windows.net" and _shown(None) == "nowhere"
    assert _shown("azureml://datastores/x/paths/y") == "'azureml://datastores/x/paths/y'"


def test_json_answers_are_strict_json_whatever_a_stored_number_is() -> None:
    from triggers._http import json_answer

    body = {"metrics": {"AUC": 1e308, "Accuracy": float("nan")}, "points": [float("inf"), -1.5, float("-inf")]}
    text = json_answer(body).get_body().decode()

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    assert json.loads(text, parse_constant=refuse) == {
        "metrics": {"AUC": 1e308, "Accuracy": None},
        "points": [None, -1.5, None],
    }
    assert json_answer({"n": 1.5}).get_body() == b'{"n": 1.5}'  # finite bodies as they are
