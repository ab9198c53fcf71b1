"""Invariants on crafted observations (no services): late decisions, what serves, notification deliveries."""

from __future__ import annotations

from typing import Any

from retraining import invariants

EXPIRES = "2026-11-21T03:10:00.000000Z"
SERVING = {"weekly-retrain": {"targets": {"endpoint2": {"run_id": "run-a"}}}}


def observed(record: dict[str, Any], serving: dict[str, dict[str, Any]], decisions: dict[str, Any]) -> Any:
    return invariants.Observed(
        requests=[],
        records=[record],
        serving=serving,
        emulator={},
        instances=[],
        targets=[],
        queue_idle=True,
        jobs_before=[],
        decisions=decisions,
    )


def record(status: str, decision_at: str | None, updated: bool) -> dict[str, Any]:
    decision = {"action": "approve", "by": "x", "at": decision_at, "comment": ""} if decision_at else None
    return {
        "run_id": "run-a",
        "pipeline": "weekly-retrain",
        "status": status,
        "approval": {"asked_at": "2026-11-21T03:00:00.000000Z", "expires_at": EXPIRES, "decision": decision},
        "targets": [{"target": "endpoint2", "updated": updated, "state": "updated" if updated else "failed"}],
    }


def test_an_approval_stamped_after_the_deadline_that_rolled_out_is_a_violation() -> None:
    late = "2026-11-21T03:10:00.001000Z"
    found = invariants.no_late_decision_takes_effect(observed(record("Succeeded", late, True), SERVING, {}))
    assert found and "after its approval expired" in found[0]


def test_a_stored_late_approval_the_run_ignored_is_no_violation() -> None:
    stored = {"run-a": {"action": "approve", "by": "x", "at": "2026-11-21T03:10:00.001000Z"}}
    expired = record("Expired", None, False) | {"targets": []}
    assert invariants.no_late_decision_takes_effect(observed(expired, {}, stored)) == []


def test_a_roll_out_with_no_decision_on_the_approval_is_a_violation() -> None:
    found = invariants.no_late_decision_takes_effect(observed(record("Succeeded", None, True), SERVING, {}))
    assert found and "no decision" in found[0]


def test_an_approval_in_time_rolls_out() -> None:
    in_time = record("Succeeded", "2026-11-21T03:05:00.000000Z", True)
    assert invariants.no_late_decision_takes_effect(observed(in_time, SERVING, {})) == []


def _online(traffic: dict[str, int]) -> dict[str, Any]:
    deployments = [
        {"name": "champion-v2", "model": "/ws/models/m/versions/2"},
        {"name": "orphan-v3", "model": "/ws/models/m/versions/3"},
    ]
    workspace = {"onlineEndpoints": [{"name": "online-ep", "traffic": traffic, "deployments": deployments}]}
    return {"azureMl": {"workspaces": [workspace]}}


def _serving_v2(traffic: dict[str, int], unsettled: bool = False) -> Any:
    run = {"run_id": "run-a", "pipeline": "p", "model": {"model_id": "/ws/models/m/versions/2"}}
    serving = {"p": {"targets": {"online": {"run_id": "run-a"}}} | ({"unsettled": {"online": {}}} if unsettled else {})}
    seen = observed(run, serving, {}) | {"emulator": _online(traffic)}
    seen["targets"] = invariants.targets_of(
        {"name": "p", "targets": [{"name": "online", "kind": "aml-online", "endpoint": "online-ep"}]}
    )
    return seen


def test_an_orphan_canary_beside_the_recorded_model_is_a_violation() -> None:
    assert invariants.targets_match_the_service(_serving_v2({"champion-v2": 100})) == []
    found = invariants.targets_match_the_service(_serving_v2({"champion-v2": 90, "orphan-v3": 10}))
    assert found and "versions/3" in found[0]
    assert invariants.targets_match_the_service(_serving_v2({"orphan-v3": 100}))
    assert invariants.targets_match_the_service(_serving_v2({"orphan-v3": 100}, unsettled=True)) == []  # not claimed


def _delivery(status: str, delivered: bool | None, record: bool | None, accepted: bool) -> Any:
    output = {"pipeline": "approval", "run_id": "run-a", "event": "awaiting_approval", "delivered": delivered}
    notify = invariants.Instance(
        instance="notify-approval:run-a:awaiting_approval",
        name=invariants.NOTIFY_ORCHESTRATION,
        status=status,
        started_at="2026-11-21T03:00:00.000000Z",
        ended_at=None if status == "running" else "2026-11-21T03:01:00.000000Z",
        running_children=[],
        pipeline=None,
        run_id=None,
        output=output if status == "completed" else None,
    )
    return observed({"run_id": "run-a", "pipeline": "approval", "status": "Succeeded"}, {}, {}) | {
        "instances": [notify],
        "deliveries": [] if record is None else [output | {"delivered": record}],
        "webhook_accepted": ["approval:run-a:awaiting_approval"] if accepted else [],
    }


def test_a_delivery_accepted_and_recorded_as_delivered_keeps_the_invariant() -> None:
    assert invariants.notifications_end_known(_delivery("completed", True, True, accepted=True)) == []
    assert invariants.notifications_end_known(_delivery("completed", False, None, accepted=False)) == []


def test_a_delivery_that_failed_or_hangs_once_the_queue_is_idle_is_a_violation() -> None:
    assert "ended failed" in invariants.notifications_end_known(_delivery("failed", None, None, accepted=False))[0]
    assert "still running" in invariants.notifications_end_known(_delivery("running", None, None, accepted=False))[0]


def test_a_delivery_said_delivered_that_the_webhook_never_accepted_is_a_violation() -> None:
    found = invariants.notifications_end_known(_delivery("completed", True, None, accepted=False))
    assert found and "never accepted" in found[0]


def test_a_delivery_record_that_contradicts_the_outcome_is_a_violation() -> None:
    found = invariants.notifications_end_known(_delivery("completed", False, True, accepted=True))
    assert found and "its record says delivered=True" in found[0]
