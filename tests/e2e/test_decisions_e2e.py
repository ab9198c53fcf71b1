"""Approve, reject, expiry, cancel and webhook notifications, end to end on devhost."""

from __future__ import annotations

import json

import pytest
import requests

from devhost.stack import LocalStack
from retraining.notify import verify

from .helpers import (
    WEBHOOK_SECRET,
    api,
    awaiting,
    record_of,
    recorded_deliveries,
    served_versions,
    settle,
    start_run,
    wait_for_phase,
    wait_for_request,
)
from .receiver import Receiver

pytestmark = pytest.mark.e2e


def test_an_approved_run_rolls_out_and_the_record_says_who(
    stack: LocalStack, seeded: str, emulator_url: str, webhook: Receiver
) -> None:
    uri, view = awaiting(stack)
    run_id = view["run_id"]
    assert view["progress"]["expires_at"] > view["progress"]["asked_at"]
    listed = api(stack, "pipelines/approval/runs?limit=5").json()
    assert [(i["run_id"], i["progress"]["phase"]) for i in listed["in_progress"]] == [(run_id, "awaiting_approval")]

    approved = api(stack, f"pipelines/approval/runs/{run_id}/approve", "POST", {"comment": "AUC holds"})
    assert approved.status_code == 202, approved.text
    assert approved.json()["decision"]["by"] == "function key" and approved.json()["run_woken"] is True
    record = record_of(stack, wait_for_request(stack, uri))
    assert record["status"] == "Succeeded", record
    decision = record["approval"]["decision"]
    assert (decision["action"], decision["by"], decision["comment"]) == ("approve", "function key", "AUC holds")
    assert served_versions(emulator_url)["endpoint2"] == record["model"]["sha256"][:12] != seeded
    again = api(stack, f"pipelines/approval/runs/{run_id}/reject", "POST")
    assert again.status_code == 409 and again.json()["error"]["code"] == "RunEnded"
    notified = webhook.delivered("approval", "awaiting_approval", run_id)
    assert [d.answered for d in notified] == [503, 200]  # retried after a failure


def test_a_rejected_run_touches_nothing(stack: LocalStack, seeded: str, emulator_url: str) -> None:
    uri, view = awaiting(stack)
    rejected = api(stack, f"pipelines/approval/runs/{view['run_id']}/reject", "POST", {"comment": "drift in week 47"})
    assert rejected.status_code == 202, rejected.text
    record = record_of(stack, wait_for_request(stack, uri))
    assert (
        record["status"] == "Rejected"
        and "rejected by function key" in record["reason"]
        and "drift in week 47" in record["reason"]
    )
    assert record["targets"] == [] and served_versions(emulator_url)["endpoint2"] == seeded


def test_no_answer_in_time_expires(stack: LocalStack, seeded: str, emulator_url: str, webhook: Receiver) -> None:
    settle(stack, "approval-expiring")
    record = record_of(stack, wait_for_request(stack, start_run(stack, "approval-expiring").json()["statusUri"]))
    assert record["status"] == "Expired" and record["approval"]["decision"] is None and record["targets"] == []
    assert served_versions(emulator_url)["endpoint2"] == seeded
    assert any(d.answered == 200 for d in webhook.delivered("approval-expiring", "run_not_succeeded", record["run_id"]))


def test_decisions_on_runs_that_cannot_take_them_are_refused(stack: LocalStack) -> None:
    assert api(stack, "pipelines/approval/runs/20261122T030000Z-00000000/approve", "POST").status_code == 404
    assert api(stack, "pipelines/approval/runs/not-a-run/approve", "POST").json()["error"]["field"] == "run_id"
    assert api(stack, "pipelines/nope/runs/20261122T030000Z-00000000/approve", "POST").status_code == 404
    bad = api(stack, "pipelines/approval/runs/20261122T030000Z-00000000/approve", "POST", {"comment": 5})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "comment"
    finished = record_of(stack, wait_for_request(stack, start_run(stack, "strict-gate").json()["statusUri"]))
    refused = api(stack, f"pipelines/strict-gate/runs/{finished['run_id']}/approve", "POST")
    assert refused.status_code == 409 and "Rejected" in refused.json()["error"]["message"]


def test_webhook_deliveries_are_signed_retried_and_carry_no_secret(
    stack: LocalStack, seeded: str, webhook: Receiver
) -> None:
    record = record_of(stack, wait_for_request(stack, start_run(stack, "notified").json()["statusUri"]))
    assert record["status"] == "Rejected"
    mine = webhook.delivered("notified", "run_not_succeeded", record["run_id"])
    assert [d.answered for d in mine] == [503, 200]
    for delivery in mine:
        assert verify(WEBHOOK_SECRET, delivery.body, delivery.headers["x-retrain-signature-256"])
        assert not verify("another secret", delivery.body, delivery.headers["x-retrain-signature-256"])
    message = json.loads(mine[-1].body)
    assert (message["pipeline"], message["run_id"], message["status"]) == ("notified", record["run_id"], "Rejected")
    assert message["links"]["page"].endswith(f"/api/status/notified#run-{record['run_id']}")
    text = mine[-1].body.decode()
    assert WEBHOOK_SECRET not in text and "sig=" not in text and stack.settings["TRAINING_API_KEY"] not in text
    assert not any("notification" in note for note in record["notes"])  # started: nothing to note
    deliveries = recorded_deliveries(stack, "notified", record["run_id"])
    assert [(d["event"], d["delivered"], d["attempts"]) for d in deliveries] == [("run_not_succeeded", True, 2)]


def test_a_running_job_and_a_pending_request_can_be_cancelled(
    stack: LocalStack, seeded: str, emulator_url: str
) -> None:
    training_id = stack.services["webServices"][0]["id"]
    requests.post(
        f"{emulator_url}/_emulator/faults", json={"kind": "job", "target": training_id, "duration_s": 60}, timeout=10
    )
    settle(stack)
    first = start_run(stack, "weekly-retrain").json()
    view = wait_for_phase(stack, first["statusUri"], "polling")
    second = start_run(stack, "weekly-retrain").json()  # waits behind the first
    cancelled_request = api(stack, f"pipelines/weekly-retrain/requests/{second['id']}/cancel", "POST")
    assert cancelled_request.status_code == 202 and cancelled_request.json()["state"] == "cancelled"
    cancelled_run = api(
        stack, f"pipelines/weekly-retrain/runs/{view['run_id']}/cancel", "POST", {"comment": "wrong data"}
    )
    assert cancelled_run.status_code == 202, cancelled_run.text
    record = record_of(stack, wait_for_request(stack, first["statusUri"], timeout_s=60))
    assert record["status"] == "Cancelled" and record["cancel"]["comment"] == "wrong data"
    assert f"cancelled training job {record['job_id']}" in record["notes"]
    job = next(
        j
        for j in requests.get(f"{emulator_url}/_emulator/state", timeout=10).json()["jobs"]
        if j["id"] == record["job_id"]
    )
    assert job["status"] == "Cancelled" and served_versions(emulator_url)["endpoint2"] == seeded
    assert wait_for_request(stack, second["statusUri"])["state"] == "cancelled"  # never taken by a run
