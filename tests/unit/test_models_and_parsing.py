"""Payload round trips, validation of outside text, BES status forms, HTTP bodies, blob events, failure texts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from devhost.history import host_failure, sdk_exception
from orchestrators._common import failure_reason
from retraining.errors import ConfigError, ResponseFormatError
from retraining.models import (
    BlobPath,
    GateDecision,
    JobOutcome,
    JobState,
    ModelArtifact,
    RequestAction,
    RunInput,
    RunRequest,
    RunResult,
    RunStatus,
    TargetOutcome,
    TargetState,
    Trigger,
    TriggerKind,
)
from retraining.services.studio_classic.bes import jobs_url, parse_state
from triggers._http import BadRequest, read_body
from triggers.blob_arrival import blob_of_event
from triggers.http_start import parse_start_body

REQUEST = RunRequest(
    "weekly-retrain",
    Trigger(TriggerKind.BLOB, "blob:data/x.arff:0x1", "2026-11-21T00:00:00Z", "data/x.arff"),
    BlobPath("data", "x.arff"),
    dry_run=True,
)


def test_run_result_round_trips_through_json() -> None:
    result = RunResult(
        "20261121T000000Z-0a1b2c3d",
        "weekly-retrain",
        RunStatus.PARTIALLY_UPDATED,
        REQUEST,
        "a",
        "b",
        "1 of 2 targets failed",
        "job",
        JobOutcome("Finished", None, 3, 1.5, failed_polls=1),
        ModelArtifact("models/m.ilearner", 10, "ab", {"AUC": 0.9}, ("f1", "f2"), "class"),
        GateDecision(True, compared_with="20261114T000000Z-00000000"),
        (
            TargetOutcome("t1", "classic", True),
            TargetOutcome("t2", "arm", False, "boom", state=TargetState.UNCONFIRMED),
        ),
        "runrecords/x.json",
        {"polling": 1.0},
        "r" * 32,
        ("s" * 32,),
        ("cancelled training job j",),
    )
    assert RunResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_promote_requests_round_trip() -> None:
    request = RunRequest(
        "weekly-retrain",
        Trigger(TriggerKind.HTTP, "http:x", "2026-11-21T00:00:00Z"),
        action=RequestAction.PROMOTE,
        source_run="20261114T030000Z-1a2b3c4d",
        targets=("endpoint2",),
        force=True,
        requested_by="ops@contoso",
    )
    run = RunInput("a" * 32, "20261121T030000Z-deadbeef", request, ("b" * 32,))
    assert RunInput.from_dict(json.loads(json.dumps(run.to_dict()))) == run


@pytest.mark.parametrize(
    "field, value",
    [
        ("pipeline", "weekly\ud800"),
        ("trigger", {"kind": "http", "key": "k\x00", "at": "2026-11-21T00:00:00Z"}),
        ("trigger", {"kind": "http", "key": "k", "at": "yesterday"}),
        ("trigger", {"kind": "fax", "key": "k", "at": "2026-11-21T00:00:00Z"}),
        ("training_blob", "labeledexamples/\ud800.arff"),
        ("source_run", "../../etc"),
        ("action", "delete"),
        ("targets", "all"),
    ],
)
def test_requests_refuse_text_that_cannot_round_trip(field: str, value: Any) -> None:
    raw = REQUEST.to_dict() | {field: value}
    with pytest.raises(ConfigError) as caught:
        RunRequest.from_dict(raw)
    assert field.split("_")[0] in str(caught.value)
    str(caught.value).encode("utf-8")  # the message itself is always printable


@pytest.mark.parametrize(
    "value, state",
    [
        ("Finished", JobState.FINISHED),
        (4, JobState.FINISHED),
        ("0", JobState.NOT_STARTED),
        (3, JobState.CANCELLED),
        ("Cancelled", JobState.CANCELLED),
    ],
)
def test_status_code_names_and_numbers(value: object, state: JobState) -> None:
    assert parse_state(value) is state


@pytest.mark.parametrize("value", ["Canceled", 5, -1, True, None, "finished", {"x": 1}])
def test_unknown_status_codes_are_refused(value: object) -> None:
    with pytest.raises(ResponseFormatError):
        parse_state(value)


@pytest.mark.parametrize(
    "given",
    [
        "https://h/workspaces/w/services/s/jobs",
        "https://h/workspaces/w/services/s/jobs?api-version=2.0",
        "https://h/workspaces/w/services/s",
        "https://h/workspaces/w/services/s/jobs/",
    ],
)
def test_ml_endpoint_forms(given: str) -> None:
    assert jobs_url(given) == "https://h/workspaces/w/services/s/jobs"
    assert jobs_url(given.replace("/workspaces/", "/subscriptions/")) == "https://h/subscriptions/w/services/s/jobs"


def test_non_bes_ml_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        jobs_url("https://h/some/other/path")


def http(body: bytes) -> func.HttpRequest:
    return func.HttpRequest("POST", "http://localhost/api/pipelines/p/runs", body=body, route_params={"pipeline": "p"})


def start_body(body: bytes) -> tuple[BlobPath | None, bool]:
    return parse_start_body(read_body(http(body), {"trainingBlob", "dryRun"}))


def test_start_bodies() -> None:
    assert start_body(b"") == (None, False)
    assert start_body(b'{"trainingBlob": "labeledexamples/w47.arff", "dryRun": true}') == (
        BlobPath("labeledexamples", "w47.arff"),
        True,
    )


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{", "body"),
        (b"[]", "body"),
        (b'{"dryRun": "yes"}', "dryRun"),
        (b'{"trainingBlob": "../x"}', "trainingBlob"),
        (b'{"trainingBlob": "c/../../x.arff"}', "trainingBlob"),
        (b'{"extra": 1}', "extra"),
        (b"x" * 20_000, "body"),
        (b'{"trainingBlob": 7}', "trainingBlob"),
        (b'{"trainingBlob": "labeledexamples/\\ud800.arff"}', "body"),
        (b'{"dryRun": ' + b"[" * 50 + b"]" * 50 + b"}", "body"),
        (b"[" * 100_000, "body"),
        (b"\xff\xfe", "body"),
    ],
)
def test_bad_start_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        start_body(body)
    assert caught.value.field == field


def test_blob_events_in_our_account_only() -> None:
    ours = "http://127.0.0.1:10000/devstoreaccount1/"
    event = {"url": ours + "labeledexamples/week%2047.arff", "eTag": '"0x8"', "contentLength": 10}
    assert blob_of_event("Microsoft.Storage.BlobCreated", event, ours) == (
        BlobPath("labeledexamples", "week 47.arff"),
        "0x8",
    )
    assert blob_of_event("Microsoft.Storage.BlobDeleted", event, ours) is None
    assert (
        blob_of_event("Microsoft.Storage.BlobCreated", {"url": "https://evil.example/devstoreaccount1/c/x.arff"}, ours)
        is None
    )
    assert blob_of_event("Microsoft.Storage.BlobCreated", {"url": ours + "c/%2e%2e/x.arff"}, ours) is None
    assert blob_of_event("Microsoft.Storage.BlobCreated", "not a dict", ours) is None
    assert (
        blob_of_event("Microsoft.Storage.BlobCreated", {"url": ours + "labeledexamples/%ED%A0%80.arff"}, ours) is None
    )


def test_empty_blobs_from_adls_create_file_start_nothing() -> None:
    ours = "https://acct.blob.core.windows.net/"
    created = {"api": "CreateFile", "url": ours + "labeledexamples/w.arff", "contentLength": 0, "eTag": "0x1"}
    assert blob_of_event("Microsoft.Storage.BlobCreated", created, ours) is None
    assert blob_of_event("Microsoft.Storage.BlobCreated", created | {"api": "PutBlob"}, ours) is None
    flushed = created | {"api": "FlushWithClose", "contentLength": 4096}
    assert blob_of_event("Microsoft.Storage.BlobCreated", flushed, ours) == (
        BlobPath("labeledexamples", "w.arff"),
        "0x1",
    )


def test_blob_path_parsing_refuses_traversal_and_control_characters() -> None:
    for bad in ("c", "/c/", "c//x", "c/../x", "c/x\\y", "c/\x00x", 5, "abc/\ud800", "abc/x\x85"):
        with pytest.raises(ConfigError):
            BlobPath.parse(bad)


MESSAGE = "BES answered 503 ServiceUnavailable/RequestThrottled: Request was throttled."


@pytest.mark.parametrize(
    "exc",
    [
        sdk_exception(
            *host_failure("Activity", "submit_training_job", "retraining.errors.TransientServiceError", MESSAGE)
        ),
        Exception(
            "Activity function 'submit_training_job' failed:  TransientServiceError: "
            + MESSAGE
            + ' \n {"Message": "x"}'
        ),
        Exception(
            "Activity function 'x' failed:  \n "
            + json.dumps(
                {"Message": "Result: Failure\nException: ServiceError: " + MESSAGE + '\nStack:   File "x.py", line 1'}
            )
        ),
        Exception(
            "Activity function 'x' failed: Result: Failure\nException: ServiceError: " + MESSAGE + "\nStack: ..."
        ),
        Exception(f"Orchestrator function 'monitor_training_job' failed:  ValueError: {MESSAGE} \n {{}}"),
        Exception(MESSAGE),
    ],
)
def test_failure_reasons_in_every_runtime_format(exc: Exception) -> None:
    assert failure_reason(exc) == MESSAGE


def test_a_failure_without_text_is_named_by_its_type_or_says_no_reason() -> None:
    assert failure_reason(ValueError()) == "ValueError"
    assert failure_reason(Exception("Activity function 'x' failed: ")) == "no reason given"


@pytest.mark.parametrize("text", [" \n null", "None \n None", "\n", " \n ", "None \n null", ""])
def test_an_empty_reason_reads_no_reason_given_not_null(text: str) -> None:
    # the SDK raises Exception(f"{Reason} \n {Details}"); the Durable Task Scheduler may send neither
    assert failure_reason(Exception(text)) == "no reason given"


def test_the_host_text_of_a_failed_child_leaves_no_trailing_space() -> None:
    exc = Exception("Orchestrator function 'roll_out_target' failed: boom \nat line 3 \n null")
    assert failure_reason(exc) == "boom"


def test_orchestration_times_are_iso() -> None:
    assert Trigger(TriggerKind.HTTP, "k", "2026-11-21T03:00:00Z").moment == datetime(2026, 11, 21, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8"]
)
def test_a_body_a_cross_site_form_could_send_is_refused_even_when_empty(content_type: str) -> None:
    for body in (b"", b'{"dryRun": true}', b"a=b"):
        request = func.HttpRequest(
            "POST", "http://localhost/api/pipelines/p/runs?code=k", body=body, headers={"Content-Type": content_type}
        )
        with pytest.raises(BadRequest) as refused:
            read_body(request, {"dryRun"})
        assert refused.value.field == "Content-Type"
    json_request = func.HttpRequest(
        "POST", "http://localhost/api/x", body=b'{"dryRun": true}', headers={"Content-Type": "application/json"}
    )
    assert read_body(json_request, {"dryRun"}) == {"dryRun": True}


def test_the_principal_header_is_believed_only_with_easy_auth_in_front() -> None:
    from retraining.settings import Settings
    from triggers._http import requested_by

    storage = {"TrainingStorage": "UseDevelopmentStorage=true"}
    forged = func.HttpRequest(
        "POST", "http://localhost/api/x", body=b"{}", headers={"x-ms-client-principal-name": "the-ceo@contoso.com"}
    )
    assert requested_by(forged, Settings.from_env(storage)) == "function key"  # a caller's own word
    assert requested_by(forged, Settings.from_env(storage | {"RETRAIN_EASY_AUTH": "true"})) == "the-ceo@contoso.com"
    with pytest.raises(ConfigError, match="RETRAIN_EASY_AUTH must be true or false"):
        Settings.from_env(storage | {"RETRAIN_EASY_AUTH": "yes please"})
