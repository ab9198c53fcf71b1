"""The retrain app end to end: devhost runs function_app.py against Azurite and the emulator."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.stack import LocalStack

from .helpers import (
    DATA_CONTAINER,
    blob_request_url,
    emulator_state,
    record_of,
    request_url,
    run_records,
    run_to_end,
    served_versions,
    settle,
    start_run,
    wait_for_request,
)

pytestmark = pytest.mark.e2e


def rrs_scores(stack: LocalStack, endpoint_name: str = "endpoint2", rows: int = 25) -> tuple[str, list[str]]:
    endpoint = next(e for e in stack.services["webServices"][1]["endpoints"] if e["name"] == endpoint_name)
    names, values = breast_cancer().features(rows)
    response = requests.post(
        endpoint["rrsEndpoint"],
        json={"Inputs": {"input1": {"ColumnNames": names, "Values": values}}},
        headers={"Authorization": f"Bearer {endpoint['apiKey']}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.headers["x-ms-emulator-model-version"], [
        row[-1] for row in response.json()["Results"]["output1"]["value"]["Values"]
    ]


def test_happy_path_replaces_the_model_everywhere(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    version_before, scores_before = rrs_scores(stack)
    assert version_before == seeded

    result = run_to_end(stack, "weekly-retrain")

    assert result["status"] == "Succeeded"
    assert {t["target"]: t["state"] for t in result["targets"]} == {"endpoint2": "updated", "myWebService": "updated"}
    model_bytes = (
        stack.blob_service.get_blob_client(*result["model"]["location"].split("/", 1)).download_blob().readall()
    )
    assert hashlib.sha256(model_bytes).hexdigest() == result["model"]["sha256"]
    new_version = result["model"]["sha256"][:12]
    version_after, scores_after = rrs_scores(stack)
    assert version_after == new_version != seeded
    assert scores_after != scores_before  # the predictions now come from the retrained model
    assert served_versions(emulator_url)["myWebService"] == new_version
    assert served_versions(emulator_url)["default"] == seeded  # the default endpoint is never updated
    assert result["model"]["location"].startswith(f"trainingoutput/weekly-retrain/{result['run_id']}/")
    assert result["model"]["columns"][:2] == ["mean_radius", "mean_texture"] and result["model"]["label"] == "class"


def test_job_failed_keeps_the_served_model(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(
        f"{emulator_url}/_emulator/faults",
        json={"kind": "job", "target": training_id, "fail_details": "Module 'Train Model': out of memory"},
        timeout=10,
    )
    result = run_to_end(stack, "weekly-retrain")
    assert result["status"] == "Failed"
    assert "out of memory" in result["reason"]
    assert served_versions(emulator_url)["endpoint2"] == seeded and rrs_scores(stack)[0] == seeded
    assert any(r["run_id"] == result["run_id"] for r in run_records(stack, "weekly-retrain"))


def test_job_timeout_cancels_the_job(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(
        f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id, "duration_s": 60}, timeout=10
    )
    result = run_to_end(stack, "short-timeout")
    assert result["status"] == "TimedOut" and result["job"]["cancelled"] is True
    assert "cancelled" in result["reason"]
    job = next(j for j in emulator_state(emulator_url)["jobs"] if j["id"] == result["job_id"])
    assert job["status"] == "Cancelled"
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_gate_rejection_touches_no_endpoint(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    result = run_to_end(stack, "strict-gate")
    assert result["status"] == "Rejected"
    assert "AUC" in result["reason"] and "below the minimum 1.0100" in result["reason"]
    assert result["targets"] == []
    assert (
        served_versions(emulator_url)["endpoint2"] == seeded and served_versions(emulator_url)["myWebService"] == seeded
    )


def test_one_failing_target_does_not_stop_the_other(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    requests.post(
        f"{emulator_url}/_emulator/faults",
        json={
            "kind": "update",
            "target": "myWebService",
            "fail_message": "storage account unreachable",
            "remaining": None,
        },
        timeout=10,
    )
    result = run_to_end(stack, "weekly-retrain")
    assert result["status"] == "PartiallyUpdated"
    outcomes = {t["target"]: t for t in result["targets"]}
    assert outcomes["endpoint2"]["updated"] is True
    assert outcomes["myWebService"]["updated"] is False and "provisioning" in outcomes["myWebService"]["error"]
    assert outcomes["myWebService"]["state"] == "unconfirmed"  # the PATCH was accepted; provisioning failed
    assert served_versions(emulator_url)["endpoint2"] == result["model"]["sha256"][:12]
    assert served_versions(emulator_url)["myWebService"] == seeded

    # Later, once the web service is healthy again, the same model is promoted to it.
    requests.delete(f"{emulator_url}/_emulator/faults", timeout=10)
    assert stack.host is not None
    promote = requests.post(
        f"{stack.host.base_url}/api/pipelines/weekly-retrain/targets/myWebService/promote",
        json={"runId": result["run_id"]},
        headers={"x-functions-key": stack.host.function_key},
        timeout=30,
    )
    assert promote.status_code == 202, promote.text
    promoted = record_of(stack, wait_for_request(stack, promote.json()["statusUri"]))
    assert promoted["request"]["action"] == "promote" and promoted["request"]["source_run"] == result["run_id"]
    assert [(t["target"], t["updated"]) for t in promoted["targets"]] == [("myWebService", True)]
    assert served_versions(emulator_url)["myWebService"] == result["model"]["sha256"][:12]
    for run_id, status in (("20261122T030000Z-00000000", 404), ("no-such-run", 400)):
        unknown = requests.post(
            f"{stack.host.base_url}/api/pipelines/weekly-retrain/targets/myWebService/promote",
            json={"runId": run_id},
            headers={"x-functions-key": stack.host.function_key},
            timeout=30,
        )
        assert unknown.status_code == status and unknown.json()["error"]["field"] == "runId"


def test_dry_run_trains_but_updates_nothing(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    result = run_to_end(stack, "weekly-retrain", {"dryRun": True})
    assert result["status"] == "DryRun" and result["model"]["metrics"]["AUC"] > 0.9
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_triggers_during_a_run_leave_one_follow_up_on_the_newest(
    stack: LocalStack, seeded: str, emulator_url: str
) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(
        f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id, "duration_s": 2.0}, timeout=10
    )
    settle(stack)
    records_before = len(run_records(stack, "weekly-retrain"))
    first = start_run(stack, "weekly-retrain")
    time.sleep(0.5)
    second, third = start_run(stack, "weekly-retrain"), start_run(stack, "weekly-retrain")
    assert [r.json()["action"] for r in (first, second, third)] == ["queued"] * 3
    views = [wait_for_request(stack, r.json()["statusUri"]) for r in (first, second, third)]
    assert [v["state"] for v in views] == [
        "done",
        "superseded",
        "done",
    ]  # the newest runs; the older one is superseded by it
    assert views[1]["superseded_by"]["run_id"] == views[2]["run_id"]
    records = run_records(stack, "weekly-retrain")
    assert len(records) == records_before + 2  # one run plus exactly one follow-up, never three
    assert records[-1]["superseded"] == [second.json()["id"]]
    spans = sorted((r["started_at"], r["finished_at"]) for r in records)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), "runs of one pipeline overlapped"
    running = [
        j for j in emulator_state(emulator_url)["jobs"] if j["status"] in ("Running", "NotStarted") and j["started_at"]
    ]
    assert running == []


def test_blob_arrival_starts_a_run_on_that_blob(stack: LocalStack, seeded: str) -> None:
    uploaded = stack.blob_service.get_blob_client(DATA_CONTAINER, "incoming/week-47.arff").upload_blob(
        breast_cancer().to_arff(), overwrite=True
    )
    view = wait_for_request(
        stack,
        blob_request_url(stack, "weekly-retrain", DATA_CONTAINER, "incoming/week-47.arff", uploaded["etag"]),
        appear_within_s=30,
    )
    record = record_of(stack, view)
    assert record["request"]["trigger"]["kind"] == "blob"
    assert record["request"]["training_blob"] == f"{DATA_CONTAINER}/incoming/week-47.arff"
    assert record["status"] == "Succeeded"


def test_timer_starts_every_active_pipeline(stack: LocalStack, seeded: str) -> None:
    from azure.functions.timer import TimerRequest

    assert stack.host is not None
    timer = next(f for f in stack.host.app.timers if f.name == "scheduled_retrain")
    pipelines = json.loads(Path(stack.settings["RETRAIN_PIPELINES_FILE"]).read_text())["pipelines"]
    active = [p["name"] for p in pipelines if p.get("schedule", {}).get("enabled", True)]
    assert {"weekly-retrain", "strict-gate", "aml-retrain"} <= set(active) and "short-timeout" not in active
    for pipeline in active:
        settle(stack, pipeline)
    before = {p: len(run_records(stack, p)) for p in active}
    occurrence = {"Next": datetime.now(UTC).replace(second=0, microsecond=0).isoformat()}
    stack.host.fire(timer, TimerRequest(past_due=False, schedule_status=occurrence))
    time.sleep(1)  # a duplicate fire of the same occurrence, later (possibly in the next minute)
    stack.host.fire(timer, TimerRequest(past_due=True, schedule_status=occurrence))
    for pipeline in active:  # every run the timer started ends here, not in a later test
        settle(stack, pipeline)
    after = {p: run_records(stack, p)[before[p] :] for p in active}
    assert {p: len(r) for p, r in after.items()} == dict.fromkeys(active, 1)
    assert all(r[0]["request"]["trigger"]["kind"] == "schedule" for r in after.values())
    assert all(
        r["request"]["trigger"]["kind"] != "schedule" for r in run_records(stack, "short-timeout")
    )  # its schedule is disabled


def test_invalid_start_bodies_get_400_and_start_nothing(stack: LocalStack) -> None:
    for body, field in (
        ({"dryRun": "yes"}, "dryRun"),
        ({"trainingBlob": "../../etc/passwd"}, "trainingBlob"),
        ({"trainingBlob": "otherdata/x.arff"}, "trainingBlob"),
        ({"unexpected": 1}, "unexpected"),
    ):
        response = start_run(stack, "weekly-retrain", body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field
    assert start_run(stack, "no-such-pipeline").status_code == 404
    assert stack.host is not None
    raw = requests.post(
        f"{stack.host.base_url}/api/pipelines/weekly-retrain/runs",
        data=b"{oops",
        headers={"x-functions-key": stack.host.function_key},
        timeout=10,
    )
    assert raw.status_code == 400 and "Traceback" not in raw.text
    assert json.loads(raw.text)["error"]["field"] == "body"
    missing = requests.get(
        request_url(stack, "weekly-retrain", "0" * 32), headers={"x-functions-key": stack.host.function_key}, timeout=10
    )
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "request_id"


def test_an_idempotency_key_makes_a_retried_start_the_same_request(stack: LocalStack, seeded: str) -> None:
    settle(stack)
    first = start_run(stack, "weekly-retrain", {"dryRun": True}, headers={"Idempotency-Key": "nightly-2026-11-22"})
    again = start_run(stack, "weekly-retrain", {"dryRun": True}, headers={"Idempotency-Key": "nightly-2026-11-22"})
    assert (first.json()["action"], again.json()["action"]) == ("queued", "duplicate")
    assert first.json()["id"] == again.json()["id"]
    assert wait_for_request(stack, again.json()["statusUri"])["outcome"] == "DryRun"
