"""Payload round trips, BES status forms, start bodies and blob events."""

from __future__ import annotations

import json

import pytest

from retraining.bes import jobs_url, parse_state
from retraining.errors import ConfigError, ResponseFormatError
from retraining.models import (
    BlobPath,
    GateDecision,
    JobOutcome,
    JobState,
    ModelArtifact,
    RunRequest,
    RunResult,
    RunStatus,
    TargetOutcome,
    Trigger,
    TriggerKind,
)
from triggers.blob_arrival import blob_of_event
from triggers.http_start import parse_start_body


def test_run_result_round_trips_through_json() -> None:
    request = RunRequest("weekly-retrain", Trigger(TriggerKind.BLOB, "blob:data/x.arff:0x1", "2026-11-21T00:00:00Z", "data/x.arff"),
                         BlobPath("data", "x.arff"), dry_run=True)
    result = RunResult("r1", "weekly-retrain", RunStatus.PARTIALLY_UPDATED, request, "a", "b", "1 of 2 targets failed", "job",
                       JobOutcome("Finished", None, 3, 1.5), ModelArtifact(BlobPath("models", "m.ilearner"), 10, "ab", {"AUC": 0.9}),
                       GateDecision(True), (TargetOutcome("t1", "classic", True), TargetOutcome("t2", "arm", False, "boom")),
                       "runrecords/x.json", {"polling": 1.0})
    assert RunResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize("value, state", [("Finished", JobState.FINISHED), (4, JobState.FINISHED), ("0", JobState.NOT_STARTED),
                                          (3, JobState.CANCELLED), ("Cancelled", JobState.CANCELLED)])
def test_status_code_names_and_numbers(value: object, state: JobState) -> None:
    assert parse_state(value) is state


@pytest.mark.parametrize("value", ["Canceled", 5, -1, True, None, "finished", {"x": 1}])
def test_unknown_status_codes_are_refused(value: object) -> None:
    with pytest.raises(ResponseFormatError):
        parse_state(value)


@pytest.mark.parametrize("given", [
    "https://h/workspaces/w/services/s/jobs", "https://h/workspaces/w/services/s/jobs?api-version=2.0",
    "https://h/workspaces/w/services/s", "https://h/workspaces/w/services/s/jobs/",
])
def test_ml_endpoint_forms(given: str) -> None:
    assert jobs_url(given) == "https://h/workspaces/w/services/s/jobs"
    assert jobs_url(given.replace("/workspaces/", "/subscriptions/")) == "https://h/subscriptions/w/services/s/jobs"


def test_non_bes_ml_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        jobs_url("https://h/some/other/path")


def test_start_bodies() -> None:
    assert parse_start_body(b"") == (None, False)
    assert parse_start_body(b'{"trainingBlob": "labeledexamples/w47.arff", "dryRun": true}') == (BlobPath("labeledexamples", "w47.arff"), True)


@pytest.mark.parametrize("body, field", [
    (b"{", "body"), (b"[]", "body"), (b'{"dryRun": "yes"}', "dryRun"), (b'{"trainingBlob": "../x"}', "trainingBlob"),
    (b'{"trainingBlob": "c/../../x.arff"}', "trainingBlob"), (b'{"extra": 1}', "extra"), (b"x" * 20_000, "body"),
    (b'{"trainingBlob": 7}', "trainingBlob"),
])
def test_bad_start_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_start_body(body)
    assert str(caught.value).startswith(f"{field}: ") or str(caught.value).startswith(f"{field}:")


def test_blob_events_in_our_account_only() -> None:
    ours = "http://127.0.0.1:10000/devstoreaccount1/"
    event = {"url": ours + "labeledexamples/week%2047.arff", "eTag": "0x8"}
    assert blob_of_event("Microsoft.Storage.BlobCreated", event, ours) == (BlobPath("labeledexamples", "week 47.arff"), "0x8")
    assert blob_of_event("Microsoft.Storage.BlobDeleted", event, ours) is None
    assert blob_of_event("Microsoft.Storage.BlobCreated", {"url": "https://evil.example/devstoreaccount1/c/x.arff"}, ours) is None
    assert blob_of_event("Microsoft.Storage.BlobCreated", {"url": ours + "c/%2e%2e/x.arff"}, ours) is None
    assert blob_of_event("Microsoft.Storage.BlobCreated", "not a dict", ours) is None


def test_blob_path_parsing_refuses_traversal_and_control_characters() -> None:
    for bad in ("c", "/c/", "c//x", "c/../x", "c/x\\y", "c/\x00x", 5):
        with pytest.raises(ConfigError):
            BlobPath.parse(bad)
