"""The Azure ML (v2) pipeline end to end: devhost runs function_app.py against the emulator's workspace and Azurite.

Each test drives a run over HTTP as a user would and checks what the workspace shows afterwards:
the job, the registered version and its tags, the endpoint's traffic, which deployment answers,
and the run record. The endpoint's state carries over from test to test, as it would in use, so
every test reads where things stand before it starts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from devhost.stack import LocalStack
from retraining.instances import queue_instance_id, rollout_instance_id, run_instance_id
from tests.emulator.aml import Aml

from .aml_workspace import (
    BATCH,
    MODEL,
    ONLINE,
    PIPELINE,
    canary_of,
    champion,
    deployments,
    endpoint,
    interrupted_record,
    target,
    versions,
)
from .helpers import (
    durable,
    record_of,
    run_records,
    run_to_end,
    serving_record,
    settle,
    start_run,
    wait_for_phase,
    wait_for_request,
)


def model_id(aml: Aml, version: str) -> str:
    return f"{aml.ws['resourceId']}/models/{MODEL}/versions/{version}"


class Prober:
    """Scores the endpoint without a deployment header all along a rollout, counting answers per deployment."""

    def __init__(self, aml: Aml) -> None:
        self.aml = aml
        self.key = aml.keys(ONLINE)["primaryKey"]
        self.answers: Counter[tuple[str, int]] = Counter()  # (deployment, status)
        self.unattributed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            response = self.aml.score(ONLINE, rows=1, key=self.key)
            served = response.headers.get("azureml-model-deployment")
            if served:
                self.answers[(served, response.status_code)] += 1
            else:
                self.unattributed += 1
            time.sleep(0.01)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def failures(self, deployment: str | None = None) -> int:
        return sum(
            n
            for (name, status), n in self.answers.items()
            if status != 200 and (deployment is None or name == deployment)
        )

    def served(self, deployment: str) -> int:
        return sum(n for (name, _), n in self.answers.items() if name == deployment)


def test_a_retrain_registers_a_version_and_rolls_it_out_in_canary_steps(stack: LocalStack, aml: Aml) -> None:
    before = set(versions(aml))
    with Prober(aml) as probes:
        record = run_to_end(stack, PIPELINE)
    assert record["status"] == "Succeeded", record
    version = record["model"]["version"]
    assert version not in before and version in versions(aml)

    registered = versions(aml)[version]
    job = record["job_id"]
    assert job == f"{PIPELINE}-{record['run_id']}" and registered["jobName"] == job
    assert registered["modelUri"] == record["model"]["location"]
    assert registered["tags"]["retrain.run_id"] == record["run_id"]
    assert registered["tags"]["retrain.sha256"] == record["model"]["sha256"]
    assert registered["tags"]["retrain.data"] == "mldata/breast-cancer.csv" and registered["tags"]["retrain.data_etag"]
    assert registered["tags"]["retrain.trigger"].startswith("http:")
    assert float(registered["tags"]["metric.AUC"]) == pytest.approx(record["model"]["metrics"]["AUC"], rel=1e-5)
    assert champion(aml) == version

    online = target(record, "online")
    new = online["progress"]["deployment"]
    assert online["state"] == "updated"
    assert online["steps"] == [
        "deploy",
        "provisioned",
        "smoke",
        "traffic_10",
        "check_10",
        "traffic_50",
        "check_50",
        "traffic_100",
        "check_100",
        "cleanup",
    ]
    assert endpoint(aml)["traffic"] == {new: 100}
    assert deployments(aml)[new]["model"] == model_id(aml, version)
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == target(record, "batch")["progress"]["deployment"]

    answer = aml.score(ONLINE, rows=3)
    assert answer.status_code == 200 and answer.headers["azureml-model-deployment"] == new
    assert probes.failures() == 0 and probes.unattributed == 0, probes.answers
    assert probes.served(new) > 0, "the new deployment took no live traffic during the rollout"


def test_an_unhealthy_canary_is_rolled_back_and_the_endpoint_keeps_answering(stack: LocalStack, aml: Aml) -> None:
    run_to_end(stack, PIPELINE)  # a known, healthy champion to fall back to
    serving, crowned = endpoint(aml)["traffic"], champion(aml)
    batch_default = endpoint(aml, batch=True)["defaults"]["deploymentName"]
    aml.fault({"kind": "aml_deployment", "endpoint": ONLINE, "error_rate": 0.3})
    with Prober(aml) as probes:
        record = run_to_end(stack, PIPELINE)
    online = target(record, "online")
    canary = online["progress"]["deployment"]
    assert online["state"] == "rolled_back", online
    assert "check_10" in online["error"] and "failed" in online["error"]
    # serving.consistency all: the batch endpoint waits for the canary, so it never takes the failed version
    assert record["status"] == "RolledBack", record
    assert target(record, "batch")["state"] == "failed" and "not rolled out" in target(record, "batch")["error"]
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == batch_default
    assert endpoint(aml)["traffic"] == serving and endpoint(aml)["mirrorTraffic"] == {}
    assert canary not in deployments(aml)
    assert champion(aml) == crowned
    old = next(iter(serving))
    assert probes.failures(old) == 0 and probes.unattributed == 0, probes.answers
    assert probes.failures() == probes.failures(canary)  # every failed probe was the canary's share
    assert probes.served(old) > 0


def test_a_deployment_that_fails_provisioning_changes_nothing(stack: LocalStack, aml: Aml) -> None:
    serving, crowned = endpoint(aml)["traffic"], champion(aml)
    aml.fault(
        {
            "kind": "aml_deployment",
            "endpoint": ONLINE,
            "fail_message": "ImagePullBackOff: the scoring image could not be pulled",
        }
    )
    record = run_to_end(stack, PIPELINE)
    online = target(record, "online")
    assert online["state"] == "rolled_back" and "ImagePullBackOff" in online["error"], online
    assert online["steps"] == ["deploy"]
    assert endpoint(aml)["traffic"] == serving
    assert online["progress"]["deployment"] not in deployments(aml)
    assert champion(aml) == crowned


def test_a_busy_endpoint_is_waited_for_not_failed(stack: LocalStack, aml: Aml) -> None:
    aml.settings(timings={"busy_after_s": 1.5})  # resources stay Updating 1.5 s after their operation succeeded
    response = start_run(stack, "aml-direct")
    assert response.status_code == 202
    touched = aml.set_traffic(
        ONLINE, endpoint(aml)["traffic"]
    )  # someone else's update: the endpoint is busy when the run comes
    assert touched.status_code in (200, 201), touched.text
    record = record_of(stack, wait_for_request(stack, response.json()["statusUri"]))
    assert record["status"] == "Succeeded", record
    online = target(record, "online")
    assert online["progress"].get("conflicts", 0) >= 1, online["progress"]
    assert endpoint(aml)["traffic"] == {online["progress"]["deployment"]: 100}


def test_a_failed_job_fails_the_run_with_the_services_reason(stack: LocalStack, aml: Aml) -> None:
    before = set(versions(aml))
    aml.fault({"kind": "aml_job", "fail_message": "ModuleNotFoundError: No module named 'sklearn'"})
    record = run_to_end(stack, PIPELINE)
    assert record["status"] == "Failed" and "No module named 'sklearn'" in record["reason"], record
    assert set(versions(aml)) == before


def test_a_job_past_its_timeout_is_cancelled(stack: LocalStack, aml: Aml) -> None:
    aml.fault({"kind": "aml_job", "duration_s": 30})
    record = run_to_end(stack, "aml-short-timeout")
    assert record["status"] == "TimedOut" and record["job"]["cancelled"] is True, record
    job = aml.ok("GET", f"/jobs/{record['job_id']}")
    assert job["properties"]["status"] in ("CancelRequested", "Canceled")


def test_a_rejected_candidate_is_not_registered_and_the_champion_stays(stack: LocalStack, aml: Aml) -> None:
    before, crowned, serving = set(versions(aml)), champion(aml), endpoint(aml)["traffic"]
    record = run_to_end(stack, "aml-strict-gate")
    assert record["status"] == "Rejected" and record["model"]["version"] is None
    assert set(versions(aml)) == before and champion(aml) == crowned and endpoint(aml)["traffic"] == serving


def test_a_completion_event_ends_the_wait_and_duplicates_change_nothing(stack: LocalStack, aml: Aml) -> None:
    aml.fault({"kind": "aml_job", "duration_s": 1.0})
    aml.fault({"kind": "aml_events", "action": "duplicate", "event_type": "*Run*", "remaining": None})
    started = time.monotonic()
    record = run_to_end(stack, "aml-events")
    assert record["status"] == "Succeeded" and record["job"]["woken_by_event"] is True, record
    assert record["job"]["polls"] == 2  # the first poll, and the one the event brought forward (polls are 8 s apart)
    assert time.monotonic() - started < 8
    jobs = [j for j in aml.ok("GET", "/jobs")["value"] if j["name"] == record["job_id"]]
    assert len(jobs) == 1


def test_a_lost_event_costs_only_time(stack: LocalStack, aml: Aml) -> None:
    aml.fault({"kind": "aml_events", "action": "drop", "event_type": "*Run*", "remaining": None})
    record = run_to_end(stack, "aml-events")
    assert record["status"] == "Succeeded" and record["job"]["woken_by_event"] is False, record
    assert record["job"]["polls"] >= 2  # found by a later poll (when depends on the pipeline's history of job lengths)


def test_rollback_on_demand_puts_the_previous_champion_back_on_every_target(stack: LocalStack, aml: Aml) -> None:
    first = run_to_end(stack, "aml-direct")
    second = run_to_end(stack, "aml-direct")
    assert first["status"] == second["status"] == "Succeeded"
    kept = target(first, "online")["progress"]["deployment"]
    assert kept in deployments(aml), "keepDeployments 1 keeps the previous deployment for a rollback"
    assert target(second, "online")["steps"][3:7] == ["mirror", "check_mirror", "traffic_100", "check_100"]
    assert endpoint(aml)["mirrorTraffic"] == {}  # the mirror ends when the deployment takes live traffic

    assert stack.host is not None
    response = requests.post(
        f"{stack.host.base_url}/api/pipelines/aml-direct/rollback",
        json={},
        headers={"x-functions-key": stack.host.function_key},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    view = wait_for_request(stack, response.json()["statusUri"])
    assert view["outcome"] == "Succeeded", view
    assert endpoint(aml)["traffic"] == {kept: 100}
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == target(first, "batch")["progress"]["deployment"]
    assert champion(aml) == first["model"]["version"]


def _cut_off_midcanary_of(stack: LocalStack, aml: Aml, share: int = 1) -> tuple[str, str, dict[str, int]]:
    """A run whose online canary holds `share`% or more when its rollout, run and queue are terminated: (run id,
    canary, serving)."""
    run_to_end(stack, PIPELINE)
    serving = {k: v for k, v in endpoint(aml)["traffic"].items() if v}
    first = start_run(stack, PIPELINE)
    assert first.status_code == 202, first.text
    run_id = wait_for_phase(stack, first.json()["statusUri"], "updating", timeout_s=120)["run_id"]
    canary = canary_of(aml, serving, timeout_s=60)
    deadline = time.monotonic() + 60
    while endpoint(aml)["traffic"].get(canary, 0) < share:
        assert time.monotonic() < deadline, f"the canary never took {share}%"
        time.sleep(0.02)
    run = run_instance_id(PIPELINE, run_id)
    # the batch rollout waits for the canary (serving.consistency: all), so it has not started
    for instance in (rollout_instance_id(run, "online"), run, queue_instance_id(PIPELINE)):
        durable(stack, lambda client, i=instance: client.terminate(i, "cut off, as a crash or a purge would"))
    time.sleep(1.5)
    assert endpoint(aml)["traffic"].get(canary), "the lost rollout left no canary to reconcile"
    return run_id, canary, serving


def test_a_rollout_cut_off_mid_canary_is_undone_before_the_next_one_acts(stack: LocalStack, aml: Aml) -> None:
    """Finding 1 of issue 25: the orphan canary a lost rollout leaves is never the next rollout's starting point."""
    run_id, canary, serving = _cut_off_midcanary_of(stack, aml)
    second = start_run(stack, PIPELINE)
    assert second.status_code == 202, second.text
    record = record_of(stack, wait_for_request(stack, second.json()["statusUri"], timeout_s=180))
    online = target(record, "online")
    assert run_id in str(online["progress"].get("reconciled")), online["progress"]
    assert canary not in deployments(aml)  # the orphan is gone, not carried along
    traffic = {k: v for k, v in endpoint(aml)["traffic"].items() if v}
    assert sum(traffic.values()) == 100
    if record["status"] == "Succeeded":
        assert traffic == {online["progress"]["deployment"]: 100}
    else:
        assert traffic == serving, record
    interrupted_record(stack, run_id)


def test_the_daily_sweep_undoes_a_cut_off_rollout_when_no_run_comes(stack: LocalStack, aml: Aml) -> None:
    from azure.functions.timer import TimerRequest

    assert stack.host is not None
    run_id, canary, _ = _cut_off_midcanary_of(stack, aml, share=100)  # cut off after its last traffic step
    before = {r["run_id"] for r in run_records(stack, PIPELINE)}
    sweep = next(f for f in stack.host.app.timers if f.name == "purge_old_history")
    stack.host.fire(sweep, TimerRequest(past_due=False))
    settle(stack, PIPELINE, timeout_s=240)  # the reconciliation, then the interrupted request run again
    runs = [r for r in run_records(stack, PIPELINE) if r["run_id"] not in before]
    (reconciled,) = [r for r in runs if r["request"]["action"] == "reconcile"]
    assert reconciled["status"] == "Succeeded", (reconciled["reason"], reconciled["targets"], reconciled["notes"])
    assert reconciled["request"]["trigger"]["kind"] == "sweep"
    assert run_id in str(target(reconciled, "online")["progress"].get("reconciled")), reconciled
    assert canary not in deployments(aml)
    assert sum(endpoint(aml)["traffic"].values()) == 100
    interrupted_record(stack, run_id)


@pytest.mark.parametrize("pipeline", ["aml-yield", "aml-revert"])
def test_another_writers_change_mid_canary_is_reported_and_never_silently_overwritten(
    stack: LocalStack, aml: Aml, pipeline: str
) -> None:
    run_to_end(stack, PIPELINE)
    serving = {k: v for k, v in endpoint(aml)["traffic"].items() if v}
    (old,) = serving
    response = start_run(stack, pipeline)
    assert response.status_code == 202, response.text
    canary = canary_of(aml, serving)
    while endpoint(aml)["provisioningState"] != "Succeeded":  # the app's 10% step has settled
        time.sleep(0.02)
    theirs = {old: 70, canary: 30}
    assert aml.set_traffic(ONLINE, theirs).status_code in (200, 201)
    started = time.monotonic()
    record = record_of(stack, wait_for_request(stack, response.json()["statusUri"], timeout_s=120))
    online = target(record, "online")
    change = online["progress"].get("changed_by_another_writer", {})
    assert change, online
    assert change["seen"]["traffic"] == theirs and change["seen_at"], change
    if pipeline == "aml-yield":
        assert online["state"] == "changed_by_another_writer", online
        assert "changed_by_another_writer" in online["error"]
        assert endpoint(aml)["traffic"] == theirs  # left as the other writer set it
        assert time.monotonic() - started < 30  # reported at the next step, not at the 300 s step timeout
        lineage = serving_record(stack, pipeline)
        assert "online" in lineage.get("unsettled", {}), lineage
    else:
        assert change.get("reverted") is True, change
        assert online["state"] == "updated", online  # put back, then the rollout went on
        assert {k: v for k, v in endpoint(aml)["traffic"].items() if v} == {online["progress"]["deployment"]: 100}
    aml.set_traffic(ONLINE, {old: 100} if pipeline == "aml-yield" else endpoint(aml)["traffic"])  # tidy for later tests


def test_a_target_that_fails_after_the_canary_sends_the_canary_back_to_the_champion(
    stack: LocalStack, aml: Aml
) -> None:
    """serving.consistency all: the online endpoint took the version, the batch endpoint could not; both serve the champion."""
    run_to_end(stack, PIPELINE)
    serving = {k: v for k, v in endpoint(aml)["traffic"].items() if v}
    batch_default, crowned = endpoint(aml, batch=True)["defaults"]["deploymentName"], champion(aml)
    aml.fault(
        {"kind": "aml_deployment", "endpoint": BATCH, "fail_message": "OutOfQuota: no cores left for the batch compute"}
    )
    record = run_to_end(stack, PIPELINE)
    assert record["status"] == "RolledBack", record
    online, batch = target(record, "online"), target(record, "batch")
    assert batch["state"] == "rolled_back" and "OutOfQuota" in batch["error"], batch
    assert online["state"] == "rolled_back" and "goes back to the champion" in online["error"], online
    assert {k: v for k, v in endpoint(aml)["traffic"].items() if v} == serving
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == batch_default
    assert champion(aml) == crowned


def test_another_writers_batch_default_is_reported_and_left(stack: LocalStack, aml: Aml) -> None:
    run_to_end(stack, "aml-batch-yield")
    run_to_end(stack, "aml-batch-yield")  # keepDeployments 1: a previous batch deployment stays
    current = endpoint(aml, batch=True)["defaults"]["deploymentName"]
    existing = [d["name"] for d in aml.ok("GET", f"/batchEndpoints/{BATCH}/deployments")["value"]]
    others = [d for d in existing if d != current]
    assert others, existing
    response = start_run(stack, "aml-batch-yield")
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 90
    while {d["name"] for d in aml.ok("GET", f"/batchEndpoints/{BATCH}/deployments")["value"]} <= set(existing):
        assert time.monotonic() < deadline, "the rollout never created its deployment"
        time.sleep(0.02)
    body = aml.ok("GET", f"/batchEndpoints/{BATCH}")
    body["properties"]["defaults"] = {"deploymentName": others[0]}  # someone else's choice, mid-rollout
    assert aml.call("PUT", f"/batchEndpoints/{BATCH}", body).status_code in (200, 201, 202)
    record = record_of(stack, wait_for_request(stack, response.json()["statusUri"], timeout_s=120))
    batch = target(record, "batch")
    assert batch["state"] == "changed_by_another_writer", batch
    assert batch["progress"]["changed_by_another_writer"]["seen"] == {"default": others[0]}
    deadline = time.monotonic() + 10
    while endpoint(aml, batch=True)["provisioningState"] != "Succeeded" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == others[0]  # left as the other writer set it
    assert "batch" in serving_record(stack, "aml-batch-yield").get("unsettled", {})
