"""Runs under faults: failed, overlong and unreachable jobs, a status outage, a failing target, a storage restart,
a devhost that dies mid-run, an update that never lands (transient faults everywhere: test_transient_faults.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.stack import LocalStack

from ..helpers import (
    blob_request_url,
    emulator_state,
    record_of,
    request_url,
    served_versions,
    start_run,
    wait_for_phase,
    wait_for_request,
)
from .faults import clear_faults, fault, run, training_service_id
from .ledger import Ledger

pytestmark = pytest.mark.e2e


def test_failed_job_keeps_the_served_model_and_the_record(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("job failed")
    fault(
        emulator_url,
        kind="job",
        target=stack.services["webServices"][0]["id"],
        fail_details="ModuleExecutionError: Train Model ran out of memory",
    )
    result = run(stack, ledger)
    assert result["status"] == "Failed" and "ran out of memory" in result["reason"]
    assert (
        served_versions(emulator_url)["endpoint2"] == seeded and served_versions(emulator_url)["myWebService"] == seeded
    )


def test_overlong_job_is_cancelled(stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str) -> None:
    ledger.scenarios.append("job too long")
    fault(emulator_url, kind="job", target=stack.services["webServices"][0]["id"], duration_s=60)
    result = run(stack, ledger, "short-timeout")
    assert result["status"] == "TimedOut" and result["job"]["cancelled"] is True
    assert next(j for j in emulator_state(emulator_url)["jobs"] if j["id"] == result["job_id"])["status"] == "Cancelled"
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_a_ninety_second_status_outage_does_not_fail_the_run(
    stack: LocalStack, ledger: Ledger, emulator_url: str
) -> None:
    """BES answers no status call for 90 s in the middle of a job; the monitor keeps trying and the run succeeds."""
    ledger.scenarios.append("90 s status outage")
    fault(emulator_url, kind="job", target=stack.services["webServices"][0]["id"], duration_s=100)
    accepted = ledger.accept(start_run(stack, "storm", {"dryRun": True}))
    wait_for_phase(stack, accepted["statusUri"], "polling")
    time.sleep(3)  # a few good polls first
    fault(emulator_url, target=training_service_id(stack), op="status", remaining=None, status=503)
    faults_before = ledger.faults_injected
    time.sleep(90)
    clear_faults(emulator_url)
    record = record_of(stack, wait_for_request(stack, accepted["statusUri"], timeout_s=120))
    assert record["status"] == "DryRun", record.get("reason")
    assert record["job"]["failed_polls"] >= 10 and ledger.faults_injected - faults_before >= 40


def test_a_permanently_unreachable_status_ends_with_the_job_deleted(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("status unreachable for good")
    fault(emulator_url, kind="job", target=stack.services["webServices"][0]["id"], duration_s=60)
    fault(emulator_url, target=training_service_id(stack), op="status", remaining=None, drop=True)
    result = run(stack, ledger, "short-timeout")
    clear_faults(emulator_url)
    assert (
        result["status"] == "TimedOut"
        and result["job"]["status"] == "Unreachable"
        and result["job"]["cancelled"] is True
    )
    assert "could not be read" in result["reason"]
    assert next(j for j in emulator_state(emulator_url)["jobs"] if j["id"] == result["job_id"])["status"] == "Cancelled"


def test_permanently_failing_target_then_promote(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("one target fails")
    fault(emulator_url, kind="update", target="myWebService", fail_message="the web service is locked", remaining=None)
    result = run(stack, ledger)
    outcomes = {t["target"]: t for t in result["targets"]}
    assert (
        result["status"] == "PartiallyUpdated"
        and outcomes["endpoint2"]["updated"]
        and not outcomes["myWebService"]["updated"]
    )
    assert served_versions(emulator_url)["myWebService"] == seeded
    clear_faults(emulator_url)
    assert stack.host is not None
    promoted = ledger.accept(
        requests.post(
            f"{stack.host.base_url}/api/pipelines/weekly-retrain/targets/myWebService/promote",
            json={"runId": result["run_id"]},
            headers={"x-functions-key": stack.host.function_key},
            timeout=30,
        )
    )
    assert record_of(stack, wait_for_request(stack, promoted["statusUri"]))["status"] == "Succeeded"
    assert served_versions(emulator_url)["myWebService"] == result["model"]["sha256"][:12]


def test_an_update_that_never_shows_is_reported_at_the_timeout_and_nothing_lands_after(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("update timeout holds")
    fault(
        emulator_url,
        kind="update",
        target=stack.services["webServices"][1]["endpoints"][1]["service_id"],
        never_succeed=True,
        remaining=None,
    )
    result = run(stack, ledger, "short-timeout")
    outcome = next(t for t in result["targets"] if t["target"] == "endpoint2")
    assert outcome["state"] == "unconfirmed" and outcome["elapsed_s"] <= 5 + 2 + 2  # the target policy's timeout: 5 s
    patches = emulator_state(emulator_url)["counters"].get("classic_updates", 0)
    time.sleep(2)
    assert emulator_state(emulator_url)["counters"].get("classic_updates", 0) == patches  # no late PATCH
    clear_faults(emulator_url)


def test_storage_restart_in_the_middle_of_a_run(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("storage restart")
    assert stack.azurite is not None
    fault(emulator_url, kind="job", target=stack.services["webServices"][0]["id"], duration_s=1.5)
    accepted = ledger.accept(start_run(stack, "weekly-retrain"))
    wait_for_phase(stack, accepted["statusUri"], "polling")
    stack.azurite.stop()  # the job ends while storage is down: collecting its outputs must wait and retry
    ledger.extra_faults += 1
    time.sleep(3.0)
    stack.azurite.restart()
    record = record_of(stack, wait_for_request(stack, accepted["statusUri"], timeout_s=120))
    assert record["status"] == "Succeeded", record.get("reason")
    assert served_versions(emulator_url)["endpoint2"] == record["model"]["sha256"][:12]


def test_foreign_result_locations_are_refused(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("foreign locations")
    training_id = stack.services["webServices"][0]["id"]
    fault(emulator_url, kind="job", target=training_id, results_base_location="https://attacker.blob.core.windows.net/")
    result = run(stack, ledger)
    assert result["status"] == "Failed" and "outside our storage account" in result["reason"]
    fault(
        emulator_url,
        kind="job",
        target=training_id,
        results_relative_location="trainingoutput/weekly-retrain/other-run/model.ilearner",
    )
    result = run(stack, ledger)
    assert result["status"] == "Failed" and "not at the requested" in result["reason"]
    assert served_versions(emulator_url)["endpoint2"] == seeded


def test_a_devhost_killed_mid_run_runs_the_request_again_and_leaves_no_job_behind(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    """devhost dies while a job runs; the new devhost's startup sweep cancels that job and runs the request again."""
    ledger.scenarios.append("devhost killed mid-run")
    fault(emulator_url, kind="job", target=stack.services["webServices"][0]["id"], duration_s=30)
    accepted = ledger.accept(start_run(stack, "weekly-retrain", {"dryRun": True}))
    view = wait_for_phase(stack, accepted["statusUri"], "polling")
    first_job = view["progress"]["job_id"]
    stack.restart_host()  # the orchestrations in memory are gone, as when the process is killed
    ledger.extra_faults += 1
    record = record_of(
        stack, wait_for_request(stack, request_url(stack, "weekly-retrain", accepted["id"]), timeout_s=120)
    )
    assert record["status"] == "DryRun" and record["job_id"] != first_job
    assert next(j for j in emulator_state(emulator_url)["jobs"] if j["id"] == first_job)["status"] == "Cancelled"
    entry = ledger.queue.get("weekly-retrain", accepted["id"])
    assert entry is not None and entry.interrupted == (view["run_id"],)


def test_the_blob_watcher_survives_its_own_errors_and_failed_deliveries(stack: LocalStack, ledger: Ledger) -> None:
    """The watcher thread outlives an exception, retries a delivery the app failed, and reports its health."""
    ledger.scenarios.append("blob watcher survives")
    assert stack.host is not None
    host = stack.host
    scan, fire = host.scan_blobs_once, host.fire
    broken = {"scans": 1, "deliveries": 1}
    lock = threading.Lock()

    def failing_scan(*args: Any) -> int:
        with lock:
            if broken["scans"]:
                broken["scans"] -= 1
                raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "injected: a name the watcher cannot encode")
        return scan(*args)

    def failing_fire(function: Any, value: Any) -> Any:
        with lock:
            if function.name == "training_data_arrived" and broken["deliveries"]:
                broken["deliveries"] -= 1
                raise RuntimeError("injected: the event function is down")
        return fire(function, value)

    errors_before = host.health["blob-watcher"].errors
    host.scan_blobs_once, host.fire = failing_scan, failing_fire  # type: ignore[method-assign]
    try:
        uploaded = stack.blob_service.get_blob_client("labeledexamples", "storm/watcher.arff").upload_blob(
            breast_cancer().head(120).to_arff(), overwrite=True
        )
        url = blob_request_url(stack, "storm", "labeledexamples", "storm/watcher.arff", uploaded["etag"])
        view = wait_for_request(stack, url, timeout_s=90, appear_within_s=45)
    finally:
        host.scan_blobs_once, host.fire = scan, fire  # type: ignore[method-assign]
    ledger.extra_faults += 2
    ledger.expect("storm", view["id"])
    health = host.health["blob-watcher"]
    assert broken == {"scans": 0, "deliveries": 0} and view["state"] in ("done", "superseded")
    assert health.alive and health.errors == errors_before + 1 and health.restarts >= 1
    status = requests.get(
        f"{host.base_url}/admin/host/status", headers={"x-functions-key": host.master_key}, timeout=10
    ).json()
    assert status["background"]["blob-watcher"]["alive"] is True and status["background"]["blob-watcher"]["errors"] >= 1
