"""Runs under faults: transient service errors, failed and overlong jobs, a failing target, storage restarts."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from devhost.stack import LocalStack

from ..conftest import emulator_state, served_versions, start_run, wait_for_instance
from .conftest import Ledger

pytestmark = pytest.mark.e2e


def fault(url: str, **rule: Any) -> None:
    requests.post(f"{url}/_emulator/faults", json=rule, timeout=10).raise_for_status()


def run(stack: LocalStack, ledger: Ledger, pipeline: str = "weekly-retrain", body: dict[str, Any] | None = None,
        context: str = "") -> dict[str, Any]:
    response = start_run(stack, pipeline, body)
    ledger.responses.append(response.text)
    assert response.status_code == 202, response.text
    status = wait_for_instance(response.json()["statusQueryGetUri"], timeout_s=180)
    result: dict[str, Any] = status["output"]
    ledger.record_run(result, context or pipeline)
    return result


def test_transient_faults_on_every_service_call(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """About 30% of calls to BES, the classic endpoint and the ARM service fail transiently; every run still succeeds."""
    ledger.scenarios.append("transient faults")
    monkeypatch.setenv("RETRAIN_HTTP_TIMEOUT_SECONDS", "1.5")
    training_sid = stack.services["webServices"][0]["endpoints"][0]["service_id"]
    endpoint2_sid = stack.services["webServices"][1]["endpoints"][1]["service_id"]
    for target in (training_sid, endpoint2_sid, "myWebService"):
        fault(emulator_url, target=target, remaining=None, probability=0.14)  # 503 RequestThrottled
        fault(emulator_url, target=target, remaining=None, probability=0.07, status=500, code="InternalError",
              detail_code="InternalError", message="transient")
        fault(emulator_url, target=target, remaining=None, probability=0.05, drop=True)
        fault(emulator_url, target=target, remaining=None, probability=0.05, fail=False, delay_s=2.0)  # slower than the client timeout
    faults_before = ledger.faults_injected
    results = [run(stack, ledger, context="transient faults") for _ in range(4)]
    assert [r["status"] for r in results] == ["Succeeded"] * 4, [r.get("reason") for r in results]
    assert ledger.faults_injected - faults_before >= 4  # the faults really fired
    assert not [j for j in emulator_state(emulator_url)["jobs"] if j["status"] == "Running"]
    assert served_versions(emulator_url)["endpoint2"] == results[-1]["model"]["sha256"][:12]


def test_failed_job_keeps_the_served_model_and_the_record(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("job failed")
    training_id = stack.services["webServices"][0]["id"]
    fault(emulator_url, kind="job", target=training_id, fail_details="ModuleExecutionError: Train Model ran out of memory")
    result = run(stack, ledger, context="job failed")
    assert result["status"] == "Failed" and "ran out of memory" in result["reason"]
    versions = served_versions(emulator_url)
    assert versions["endpoint2"] == seeded and versions["myWebService"] == seeded
    assert result["record"] and result["job_id"]


def test_overlong_job_is_cancelled(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("job too long")
    training_id = stack.services["webServices"][0]["id"]
    fault(emulator_url, kind="job", target=training_id, duration_s=60)
    result = run(stack, ledger, "short-timeout", context="job too long")
    assert result["status"] == "TimedOut"
    job = next(j for j in emulator_state(emulator_url)["jobs"] if j["id"] == result["job_id"])
    assert job["status"] == "Cancelled"
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_permanently_failing_target_then_promote(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("one target fails")
    fault(emulator_url, kind="update", target="myWebService", fail_message="the web service is locked", remaining=None)
    result = run(stack, ledger, context="one target fails")
    outcomes = {t["target"]: t for t in result["targets"]}
    assert result["status"] == "PartiallyUpdated"
    assert outcomes["endpoint2"]["updated"] and not outcomes["myWebService"]["updated"]
    assert served_versions(emulator_url)["myWebService"] == seeded
    requests.delete(f"{emulator_url}/_emulator/faults", timeout=10)
    assert stack.host is not None
    promoted = requests.post(f"{stack.host.base_url}/api/pipelines/weekly-retrain/targets/myWebService/promote",
                             json={"runId": result["run_id"]}, headers={"x-functions-key": stack.host.function_key}, timeout=30)
    assert wait_for_instance(promoted.json()["statusQueryGetUri"])["output"]["updated"] is True
    assert served_versions(emulator_url)["myWebService"] == result["model"]["sha256"][:12]


def test_storage_restart_in_the_middle_of_a_run(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("storage restart")
    assert stack.azurite is not None and stack.host is not None
    training_id = stack.services["webServices"][0]["id"]
    fault(emulator_url, kind="job", target=training_id, duration_s=1.5)
    response = start_run(stack, "weekly-retrain")
    status_url = response.json()["statusQueryGetUri"]
    deadline = time.monotonic() + 30
    while (requests.get(status_url, timeout=10).json().get("customStatus") or {}).get("phase") != "polling":
        assert time.monotonic() < deadline, "the run never reached polling"
        time.sleep(0.1)
    stack.azurite.stop()  # the job ends while storage is down: collecting its outputs must wait and retry
    ledger.storage_restarts += 1
    time.sleep(3.0)
    stack.azurite.restart()
    result = wait_for_instance(status_url, timeout_s=120)["output"]
    ledger.record_run(result, "storage restart")
    assert result["status"] == "Succeeded", result.get("reason")
    assert served_versions(emulator_url)["endpoint2"] == result["model"]["sha256"][:12]


def test_foreign_result_locations_are_refused(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("foreign locations")
    training_id = stack.services["webServices"][0]["id"]
    fault(emulator_url, kind="job", target=training_id, results_base_location="https://attacker.blob.core.windows.net/")
    result = run(stack, ledger, context="foreign locations")
    assert result["status"] == "Failed" and "outside our storage account" in result["reason"]
    assert served_versions(emulator_url)["endpoint2"] == seeded
    fault(emulator_url, kind="job", target=training_id, results_relative_location="trainingoutput/weekly-retrain/other-run/model.ilearner")
    result = run(stack, ledger, context="foreign locations")
    assert result["status"] == "Failed" and "not at the requested" in result["reason"]
    assert served_versions(emulator_url)["endpoint2"] == seeded
