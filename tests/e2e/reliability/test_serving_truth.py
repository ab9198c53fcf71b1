"""What the app says each target serves is what it serves, whatever cuts a rollout off or changes its target.

- a rollout cut off mid-canary (its orchestrations terminated, as a crash or a purge leaves them): the next
  rollout of the target undoes the orphan first; with no run coming, the daily sweep does;
- another writer's traffic split or batch default mid-rollout: reported and left (`yield`) or put back (`revert`);
- a target that fails after the canary moved: the canary goes back to the champion (`consistency: all`).

(devhost killed mid-canary: test_killed_host.py.)

Each reports to the reliability ledger; the autouse fixture of tests/e2e checks what serves against the records.
"""

from __future__ import annotations

import time

import pytest

from devhost.stack import LocalStack
from retraining.instances import queue_instance_id, rollout_instance_id, run_instance_id
from tests.emulator.aml import Aml

from ..aml_workspace import (
    BATCH,
    ONLINE,
    PIPELINE,
    canary_of,
    champion,
    deployments,
    endpoint,
    interrupted_record,
    target,
)
from ..helpers import (
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
from .ledger import Ledger


def _cut_off_mid_canary(stack: LocalStack, aml: Aml, share: int = 1) -> tuple[str, str, dict[str, int]]:
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


def test_a_rollout_cut_off_mid_canary_is_undone_before_the_next_one_acts(
    stack: LocalStack, aml: Aml, ledger: Ledger
) -> None:
    """The orphan canary a lost rollout leaves is never the next rollout's starting point."""
    ledger.scenarios.append("rollout cut off mid-canary, then the next run")
    ledger.extra_faults += 1
    run_id, canary, serving = _cut_off_mid_canary(stack, aml)
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


def test_the_daily_sweep_undoes_a_cut_off_rollout_when_no_run_comes(
    stack: LocalStack, aml: Aml, ledger: Ledger
) -> None:
    ledger.scenarios.append("rollout cut off at 100%, then the daily sweep")
    ledger.extra_faults += 1
    from azure.functions.timer import TimerRequest

    assert stack.host is not None
    run_id, canary, _ = _cut_off_mid_canary(stack, aml, share=100)  # cut off after its last traffic step
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
    stack: LocalStack, aml: Aml, ledger: Ledger, pipeline: str
) -> None:
    ledger.scenarios.append(f"another writer mid-canary ({pipeline})")
    ledger.extra_faults += 1
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
    stack: LocalStack, aml: Aml, ledger: Ledger
) -> None:
    """serving.consistency all: the online endpoint took the version, the batch endpoint could not; both serve the champion."""
    ledger.scenarios.append("a target failing after the canary (consistency all)")
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


def test_another_writers_batch_default_is_reported_and_left(stack: LocalStack, aml: Aml, ledger: Ledger) -> None:
    ledger.scenarios.append("another writer's batch default")
    ledger.extra_faults += 1
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
