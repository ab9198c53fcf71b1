"""Rollouts under faults, replayed by the SDK: a failed child never ends its parent's wait, and a
rollout reports every ending (planning that keeps failing, a rollback that fails) as its own outcome."""

from __future__ import annotations

from typing import Any

from devhost.discovery import FunctionApp

from .harness import Answer, replay
from .scenarios import ROLLOUT, TRANSIENT, orchestrator, retrain, rollout, step, updated


def test_a_failed_rollout_child_is_reported_unknown_and_the_run_waits_for_its_sibling(app: FunctionApp) -> None:
    looks = {"myWebService": 0}

    def roll_out(payload: Any) -> Answer | None:
        name = payload["target"]["name"]
        if name == "endpoint2":
            return ("fail", ("NonDeterministicOrchestrationException", "Non-deterministic workflow detected"))
        looks[name] += 1
        return updated(payload) if looks[name] > 1 else None  # still rolling out when its sibling fails

    run = retrain(app, roll_out_target=roll_out)
    output = run.output
    # endpoint2's failure was delivered in an episode of its own, and the run kept waiting for myWebService
    assert looks["myWebService"] == 2
    assert output["status"] == "PartiallyUpdated"
    by_target = {t["target"]: t for t in output["targets"]}
    assert by_target["myWebService"]["state"] == "updated"
    assert by_target["endpoint2"]["state"] == "unknown" and by_target["endpoint2"]["updated"] is False
    assert "Non-deterministic workflow detected" in by_target["endpoint2"]["error"]
    (serving,) = run.called("record_serving_model")
    assert serving["targets"] == ["myWebService"] and serving["champion"] is False


def test_a_rollout_whose_plan_keeps_failing_reports_failed_instead_of_raising(app: FunctionApp) -> None:
    def respond(name: str, payload: Any) -> Answer | None:
        return ("fail", TRANSIENT) if name == "plan_rollout" else None

    run = replay(orchestrator(app, "roll_out_target"), ROLLOUT, respond)
    assert run.final["isDone"] and run.output["state"] == "failed"
    assert "could not be planned" in run.output["error"] and "throttled" in run.output["error"]
    assert len(run.called("plan_rollout")) == 3  # retried per the target's policy (retry 2)
    assert not run.called("run_rollout_step") and not run.called("roll_back_target")


def test_a_rollback_that_fails_every_attempt_is_rollback_failed_not_failed(app: FunctionApp) -> None:
    plan = [
        {"name": "deploy", "bake_s": 0.0, "mutates": True},
        {"name": "shift_50", "bake_s": 0.0, "mutates": True},
        {"name": "check_50", "bake_s": 0.0, "mutates": False},
    ]
    run = rollout(
        app,
        {
            "deploy": [step("done", state={"deployment": "green"})],
            "shift_50": [step("done", traffic={"blue": 50, "green": 50})],
            "check_50": [step("failed", reason="error rate 40% above the 5% threshold")],
        },
        plan,
        roll_back=("fail", TRANSIENT),
    )
    assert run.output["state"] == "rollback_failed" and run.output["updated"] is False
    assert "the rollback did not finish" in run.output["error"]
    assert run.output["progress"]["traffic"] == {"blue": 50, "green": 50}  # what it last saw: may still serve both
    assert len(run.called("roll_back_target")) == 3


def test_a_target_left_in_a_state_nobody_knows_is_recorded_unsettled(app: FunctionApp) -> None:
    def roll_out(payload: Any) -> Answer:
        answer = updated(payload)
        if payload["target"]["name"] == "endpoint2":
            failed = answer[1] | {"updated": False, "state": "rollback_failed", "error": "rollback did not finish"}
            return ("ok", failed)
        return answer

    run = retrain(app, roll_out_target=roll_out)
    assert run.output["status"] == "PartiallyUpdated"
    (serving,) = run.called("record_serving_model")
    assert serving["targets"] == ["myWebService"] and serving["champion"] is False
    assert serving["unsettled"] == [
        {"target": "endpoint2", "state": "rollback_failed", "error": "rollback did not finish"}
    ]


def test_a_run_that_confirmed_no_target_still_records_the_unsettled_ones(app: FunctionApp) -> None:
    def roll_out(payload: Any) -> Answer:
        return ("fail", ("NonDeterministicOrchestrationException", "Non-deterministic workflow detected"))

    run = retrain(app, roll_out_target=roll_out)
    assert run.output["status"] == "Failed"
    (serving,) = run.called("record_serving_model")
    assert serving["targets"] == [] and {u["target"] for u in serving["unsettled"]} == {"endpoint2", "myWebService"}
