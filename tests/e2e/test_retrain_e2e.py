"""The retrain app end to end: devhost runs function_app.py against Azurite and the emulator."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.stack import LocalStack
from orchestrators.retrain_pipeline import instance_id_for

from .conftest import (
    DATA_CONTAINER,
    emulator_state,
    run_records,
    served_versions,
    start_run,
    status_url,
    wait_for_instance,
)

pytestmark = pytest.mark.e2e


def rrs_scores(stack: LocalStack, endpoint_name: str = "endpoint2", rows: int = 25) -> tuple[str, list[str]]:
    endpoint = next(e for e in stack.services["webServices"][1]["endpoints"] if e["name"] == endpoint_name)
    names, values = breast_cancer().features(rows)
    response = requests.post(endpoint["rrsEndpoint"], json={"Inputs": {"input1": {"ColumnNames": names, "Values": values}}},
                             headers={"Authorization": f"Bearer {endpoint['apiKey']}"}, timeout=30)
    response.raise_for_status()
    return response.headers["x-ms-emulator-model-version"], [row[-1] for row in response.json()["Results"]["output1"]["value"]["Values"]]


def run_to_end(stack: LocalStack, pipeline: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = start_run(stack, pipeline, body)
    assert response.status_code == 202, response.text
    assert response.json()["action"] == "started"
    return wait_for_instance(response.json()["statusQueryGetUri"] + "&showInput=true")


def test_happy_path_replaces_the_model_everywhere(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    version_before, scores_before = rrs_scores(stack)
    assert version_before == seeded

    status = run_to_end(stack, "weekly-retrain")

    assert status["runtimeStatus"] == "Completed", status
    result = status["output"]
    assert result["status"] == "Succeeded"
    assert {t["target"]: t["updated"] for t in result["targets"]} == {"endpoint2": True, "myWebService": True}
    model_bytes = stack.blob_service.get_blob_client(*result["model"]["model_blob"].split("/", 1)).download_blob().readall()
    assert hashlib.sha256(model_bytes).hexdigest() == result["model"]["sha256"]
    new_version = result["model"]["sha256"][:12]
    version_after, scores_after = rrs_scores(stack)
    assert version_after == new_version != seeded
    assert scores_after != scores_before  # the predictions now come from the retrained model
    assert served_versions(emulator_url)["myWebService"] == new_version
    assert served_versions(emulator_url)["default"] == seeded  # the default endpoint is never updated
    record = next(r for r in run_records(stack, "weekly-retrain") if r["run_id"] == result["run_id"])
    assert record["model"]["sha256"] == result["model"]["sha256"] and record["job_id"] == result["job_id"]
    assert result["model"]["model_blob"].startswith(f"trainingoutput/weekly-retrain/{result['run_id']}/")


def test_job_failed_keeps_the_served_model(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id,
                                                          "fail_details": "Module 'Train Model': out of memory"}, timeout=10)
    status = run_to_end(stack, "weekly-retrain")
    result = status["output"]
    assert result["status"] == "Failed"
    assert "out of memory" in result["reason"]
    assert served_versions(emulator_url)["endpoint2"] == seeded and rrs_scores(stack)[0] == seeded
    assert any(r["run_id"] == result["run_id"] for r in run_records(stack, "weekly-retrain"))


def test_job_timeout_cancels_the_job(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id, "duration_s": 60}, timeout=10)
    status = run_to_end(stack, "short-timeout")
    result = status["output"]
    assert result["status"] == "TimedOut"
    assert "cancelled" in result["reason"]
    job = next(j for j in emulator_state(emulator_url)["jobs"] if j["id"] == result["job_id"])
    assert job["status"] == "Cancelled"
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_gate_rejection_touches_no_endpoint(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    status = run_to_end(stack, "strict-gate")
    result = status["output"]
    assert result["status"] == "Rejected"
    assert "AUC" in result["reason"] and "below the minimum 1.0100" in result["reason"]
    assert result["targets"] == []
    assert served_versions(emulator_url)["endpoint2"] == seeded and served_versions(emulator_url)["myWebService"] == seeded


def test_one_failing_target_does_not_stop_the_other(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    requests.post(f"{emulator_url}/_emulator/faults", json={"kind": "update", "target": "myWebService",
                                                          "fail_message": "storage account unreachable", "remaining": None}, timeout=10)
    status = run_to_end(stack, "weekly-retrain")
    result = status["output"]
    assert result["status"] == "PartiallyUpdated"
    outcomes = {t["target"]: t for t in result["targets"]}
    assert outcomes["endpoint2"]["updated"] is True
    assert outcomes["myWebService"]["updated"] is False and "provisioning" in outcomes["myWebService"]["error"]
    assert served_versions(emulator_url)["endpoint2"] == result["model"]["sha256"][:12]
    assert served_versions(emulator_url)["myWebService"] == seeded

    # Later, once the web service is healthy again, the same model is promoted to it.
    requests.delete(f"{emulator_url}/_emulator/faults", timeout=10)
    assert stack.host is not None
    promote = requests.post(f"{stack.host.base_url}/api/pipelines/weekly-retrain/targets/myWebService/promote",
                            json={"runId": result["run_id"]}, headers={"x-functions-key": stack.host.function_key}, timeout=30)
    assert promote.status_code == 202, promote.text
    outcome = wait_for_instance(promote.json()["statusQueryGetUri"])["output"]
    assert outcome["updated"] is True and outcome["target"] == "myWebService"
    assert served_versions(emulator_url)["myWebService"] == result["model"]["sha256"][:12]
    unknown = requests.post(f"{stack.host.base_url}/api/pipelines/weekly-retrain/targets/myWebService/promote",
                            json={"runId": "no-such-run"}, headers={"x-functions-key": stack.host.function_key}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "runId"


def test_dry_run_trains_but_updates_nothing(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    status = run_to_end(stack, "weekly-retrain", {"dryRun": True})
    assert status["output"]["status"] == "DryRun" and status["output"]["model"]["metrics"]["AUC"] > 0.9
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_trigger_during_a_run_becomes_one_follow_up(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id, "duration_s": 2.0}, timeout=10)
    records_before = len(run_records(stack, "weekly-retrain"))
    first = start_run(stack, "weekly-retrain")
    assert first.json()["action"] == "started"
    time.sleep(0.5)
    second, third = start_run(stack, "weekly-retrain"), start_run(stack, "weekly-retrain")
    assert second.json()["action"] == "follow_up" and third.json()["action"] == "follow_up"
    assert second.json()["id"] == first.json()["id"] == instance_id_for("weekly-retrain")
    deadline = time.monotonic() + 90
    while len(run_records(stack, "weekly-retrain")) < records_before + 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    final = wait_for_instance(status_url(stack, instance_id_for("weekly-retrain")))
    time.sleep(1.0)
    records = run_records(stack, "weekly-retrain")
    assert len(records) == records_before + 2  # one run plus exactly one follow-up, never three
    assert final["output"]["request"]["trigger"]["kind"] == "http"
    running = [j for j in emulator_state(emulator_url)["jobs"] if j["status"] in ("Running", "NotStarted")]
    assert running == []


def test_blob_arrival_starts_a_run_on_that_blob(stack: LocalStack, seeded: str) -> None:
    stack.blob_service.get_blob_client(DATA_CONTAINER, "incoming/week-47.arff").upload_blob(breast_cancer().to_arff(), overwrite=True)
    deadline = time.monotonic() + 60
    record = None
    while record is None and time.monotonic() < deadline:
        record = next((r for r in run_records(stack, "weekly-retrain")
                       if r["request"]["training_blob"] == f"{DATA_CONTAINER}/incoming/week-47.arff"), None)
        time.sleep(0.3)
    assert record is not None, "no run started for the new blob"
    assert record["request"]["trigger"]["kind"] == "blob"
    assert record["status"] == "Succeeded"


def test_timer_starts_every_active_pipeline(stack: LocalStack, seeded: str) -> None:
    from azure.functions.timer import TimerRequest

    assert stack.host is not None
    timer = next(f for f in stack.host.app.timers if f.name == "scheduled_retrain")
    before = {p: len(run_records(stack, p)) for p in ("weekly-retrain", "strict-gate")}
    stack.host.fire(timer, TimerRequest(past_due=False))
    stack.host.fire(timer, TimerRequest(past_due=False))  # a duplicate fire in the same minute
    for pipeline in ("weekly-retrain", "strict-gate"):
        status = wait_for_instance(status_url(stack, instance_id_for(pipeline)))
        given = status["input"]  # JSON-encoded by the Python SDK's start; an object after a continue-as-new
        assert (json.loads(given) if isinstance(given, str) else given)["trigger"]["kind"] == "schedule"
    time.sleep(1.0)
    after = {p: len(run_records(stack, p)) for p in ("weekly-retrain", "strict-gate")}
    assert after == {p: n + 1 for p, n in before.items()}


def test_invalid_start_bodies_get_400_and_start_nothing(stack: LocalStack) -> None:
    for body, field in (({"dryRun": "yes"}, "dryRun"), ({"trainingBlob": "../../etc/passwd"}, "trainingBlob"),
                        ({"trainingBlob": "otherdata/x.arff"}, "trainingBlob"), ({"unexpected": 1}, "unexpected")):
        response = start_run(stack, "weekly-retrain", body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field
    assert start_run(stack, "no-such-pipeline").status_code == 404
    assert stack.host is not None
    raw = requests.post(f"{stack.host.base_url}/api/pipelines/weekly-retrain/runs", data=b"{oops",
                        headers={"x-functions-key": stack.host.function_key}, timeout=10)
    assert raw.status_code == 400 and "Traceback" not in raw.text
    assert json.loads(raw.text)["error"]["field"] == "body"
