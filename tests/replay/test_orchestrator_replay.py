"""The orchestrators replayed by azure-functions-durable's own executor, at every step, as the host runs them.

These are the code paths the Functions host runs in Azure (schema V2 with V3, host-format failures):
if an orchestrator read the clock, the environment or random numbers, changed its actions between
replays, or misread a failure, these tests fail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost.discovery import FunctionApp
from orchestrators.monitor_training_job import JOB_EVENT
from orchestrators.run_queue import WAKE_EVENT
from retraining.inputs import QueueInput
from retraining.models import RunInput, RunResult, RunStatus

from .harness import WHEN_ANY, Answer, Chain, ReplayRun, replay, replay_chain
from .scenarios import (
    JOB,
    MODEL,
    REQUEST,
    RUN,
    RUN_ID,
    SCHEMA,
    TRANSIENT,
    orchestrator,
    retrain,
    rollout,
    scenario,
    step,
)

# ---- one run ------------------------------------------------------------------------------------


def test_happy_path_rolls_out_to_every_target_in_parallel(app: FunctionApp) -> None:
    run = retrain(app)
    output = run.output
    assert output["status"] == "Succeeded" and output["superseded"] == ["b" * 32]
    assert [t["target"] for t in output["targets"]] == ["endpoint2", "myWebService"]
    assert output["record"] == f"runrecords/weekly-retrain/runs/{RUN_ID}.json"
    assert len(run.called("submit_training_job")) == 1 and len(run.called("start_training_job")) == 1
    assert run.called("record_serving_model")[0]["champion"] is True
    # Both rollouts were scheduled in one episode, as one WhenAny over both: they run in parallel, and the
    # run waits for each (a WhenAny per child that ends), so one failing never ends the wait early.
    episode = next(s for s in run.states if any(a.get("actionType") == WHEN_ANY for a in s["actions"][0]))
    children = next(a for a in episode["actions"][0] if a.get("actionType") == WHEN_ANY)["compoundActions"]
    assert [c["instanceId"] for c in children] == [
        f"retrain-weekly-retrain:{RUN_ID}:rollout:endpoint2",
        f"retrain-weekly-retrain:{RUN_ID}:rollout:myWebService",
    ]


def test_a_candidate_that_passed_its_gate_is_registered_with_its_lineage_then_rolled_out(app: FunctionApp) -> None:
    run = retrain(app)
    (call,) = run.called("register_model")
    assert call["provenance"] == {
        "pipeline": "weekly-retrain",
        "run_id": RUN_ID,
        "job_id": "abc123",
        "data": "labeledexamples/labeledexamples.arff",
        "data_etag": "0x1",
        "trigger": "schedule:schedule:weekly-retrain:2026-11-21T03:00Z",
    }
    assert all(
        c["model"]["version"] == "7" for c in run.called("roll_out_target")
    )  # the registered version is what rolls out
    assert run.output["model"]["version"] == "7"


def test_a_registry_that_refuses_the_candidate_fails_the_run_before_any_target(app: FunctionApp) -> None:
    refusal = (
        "ok",
        {
            "error": {
                "message": "Azure ML answered 403 AuthorizationFailed: no write on models",
                "status": 403,
                "code": "AuthorizationFailed",
            }
        },
    )
    run = retrain(app, register_model=refusal)
    assert run.output["status"] == "Failed" and "AuthorizationFailed" in run.output["reason"]
    assert not run.called("roll_out_target") and not run.called("cancel_training_job")


def test_a_rejected_candidate_is_never_registered(app: FunctionApp) -> None:
    run = retrain(app, evaluate_gate=("ok", {"promote": False, "reasons": ["AUC 0.6 < 0.7"]}))
    assert run.output["status"] == "Rejected" and not run.called("register_model")


def test_job_failed_ends_failed_and_touches_no_target(app: FunctionApp) -> None:
    failed = (
        "ok",
        {"status": "Failed", "details": "Module 'Train Model' failed: out of memory", "polls": 3, "elapsed_s": 60.0},
    )
    run = retrain(app, monitor_training_job=failed)
    assert run.output["status"] == "Failed" and "out of memory" in run.output["reason"]
    assert not run.called("roll_out_target") and not run.called("cancel_training_job")
    assert run.called("write_run_record")


def test_gate_rejection_ends_rejected(app: FunctionApp) -> None:
    run = retrain(app, evaluate_gate=("ok", {"promote": False, "reasons": ["AUC 0.6 is below the minimum 0.7"]}))
    assert run.output["status"] == "Rejected" and not run.called("roll_out_target")


def test_changed_columns_reject_the_run_before_any_job(app: FunctionApp) -> None:
    rejected = SCHEMA | {
        "rejected": "the data's columns differ from those of the model now serving: missing feature columns ['a']"
    }
    run = retrain(app, inspect_training_data=("ok", rejected))
    assert run.output["status"] == "Rejected" and "missing feature columns" in run.output["reason"]
    assert not run.called("submit_training_job")


def test_unusable_data_fails_with_the_reason(app: FunctionApp) -> None:
    run = retrain(
        app, inspect_training_data=("ok", {"error": {"message": "x.arff: not UTF-8 text (byte 0xff at offset 0)"}})
    )
    assert run.output["status"] == "Failed" and "not UTF-8 text" in run.output["reason"]


def test_missing_data_waits_with_durable_timers_then_gives_up(app: FunctionApp) -> None:
    run = retrain(app, check_training_data=("ok", {"exists": False, "size": 0, "etag": None}))
    assert run.output["status"] == "NoData"
    assert len(run.called("check_training_data")) == 4  # first check + maximumRetry 3
    assert len(run.timers()) == 3 and not run.called("submit_training_job")


def test_a_refused_job_fails_with_the_service_message(app: FunctionApp) -> None:
    refusal = {
        "error": {
            "message": "BES answered 400 BadArgument/InvalidInputNames: Invalid service input name(s)",
            "status": 400,
        }
    }
    run = retrain(app, submit_training_job=("ok", refusal))
    assert run.output["status"] == "Failed" and "InvalidInputNames" in run.output["reason"]


def test_transient_submit_failures_are_retried_with_timers(app: FunctionApp) -> None:
    run = retrain(app, submit_training_job=[("fail", TRANSIENT), ("ok", JOB)])
    assert run.output["status"] == "Succeeded"
    assert len(run.called("submit_training_job")) == 2
    assert abs(run.timers()[0] - datetime(2026, 11, 21, 3, 0, 30, tzinfo=UTC)) < timedelta(
        seconds=1
    )  # retryIntervalInSeconds


def test_a_start_that_keeps_failing_cancels_the_submitted_job(app: FunctionApp) -> None:
    run = retrain(app, start_training_job=("fail", TRANSIENT))
    assert run.output["status"] == "Failed"
    assert "could not start the training job: BES answered 503" in run.output["reason"]
    assert run.called("cancel_training_job") == [JOB]
    assert run.output["notes"] == ["cancelled training job abc123"]


def test_a_failing_monitor_cancels_the_job_and_keeps_the_real_error_text(app: FunctionApp) -> None:
    run = retrain(app, monitor_training_job=("fail", ("KeyError", "'state'")))
    assert run.output["status"] == "Failed"
    assert (
        run.output["reason"] == "unexpected failure: 'state'"
    )  # not "Orchestrator function 'monitor_training_job' failed:"
    assert run.called("cancel_training_job") == [JOB] and run.output["notes"] == ["cancelled training job abc123"]


def test_a_job_that_cannot_be_cancelled_is_said_so(app: FunctionApp) -> None:
    run = retrain(app, monitor_training_job=("fail", ("KeyError", "'state'")), cancel_training_job=("fail", TRANSIENT))
    assert len(run.called("cancel_training_job")) == 6
    assert "could not cancel training job abc123; it may still be running: BES answered 503" in run.output["notes"][0]


def test_custom_status_stays_small_with_a_thousand_metrics(app: FunctionApp) -> None:
    wide = MODEL | {"metrics": {f"metric_{i:04d}": i / 1000 for i in range(1000)} | {"AUC": 0.97}}
    run = retrain(app, collect_model=("ok", wide))
    assert run.output["status"] == "Succeeded"
    sizes = [len(json.dumps(s.get("customStatus"))) for s in run.states]
    assert max(sizes) < 2_000, max(sizes)  # the Durable limit is 16 KB; the metrics alone are ~25 KB
    assert len(run.output["model"]["metrics"]) == 1001  # the record keeps them all


def test_a_dry_run_touches_no_target(app: FunctionApp) -> None:
    run = replay(orchestrator(app, "retrain_pipeline"), RUN | {"request": REQUEST | {"dry_run": True}}, scenario())
    assert run.output["status"] == "DryRun" and not run.called("roll_out_target")


# ---- the monitor --------------------------------------------------------------------------------

MONITOR = {
    "job": JOB,
    "deadline": "2026-11-21T04:00:00.000000Z",
    "poll_first_s": 5.0,
    "poll_max_s": 300.0,
    "poll_fraction": 0.05,
    "history_s": [],
    "events": False,
}


def monitor(app: FunctionApp, polls: list[Answer], given: dict[str, Any] | None = None, **kwargs: Any) -> Chain:
    def respond(name: str, payload: Any) -> Answer:
        if name == "cancel_training_job":
            return ("ok", None)
        return polls.pop(0) if len(polls) > 1 else polls[0]

    return replay_chain(orchestrator(app, "monitor_training_job"), given or MONITOR, respond, **kwargs)


def state(value: str) -> Answer:
    return ("ok", {"state": value, "details": None})


def test_monitor_polls_with_timers_until_finished(app: FunctionApp) -> None:
    run = monitor(app, [state("NotStarted"), state("Running"), state("Running"), state("Finished")])
    assert run.output["status"] == "Finished" and run.output["polls"] == 4 and run.output["failed_polls"] == 0
    assert len(run.timers()) == 3
    assert run.final["customStatus"]["polls"] == 4 and run.final["customStatus"]["job_id"] == "abc123"


def test_a_status_outage_longer_than_a_minute_does_not_end_the_watch(app: FunctionApp) -> None:
    failing = ("fail", ("ServiceUnreachableError", "BES: GET .../jobs/abc123 got no answer (ConnectionError)"))
    run = monitor(app, [state("Running")] + [failing] * 30 + [state("Finished")])
    assert run.output["status"] == "Finished" and run.output["failed_polls"] == 30
    outage = [t for t in run.timers()][1:31]
    assert (outage[-1] - outage[0]) > timedelta(seconds=90)  # the outage was waited out, with back-off
    assert not run.called("cancel_training_job")


def test_monitor_cancels_at_the_deadline(app: FunctionApp) -> None:
    run = monitor(app, [state("Running")])
    assert run.output["status"] == "TimedOut" and run.output["cancelled"] is True
    assert run.called("cancel_training_job") == [JOB]
    assert max(run.timers()) == datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # never past the deadline


def test_a_service_that_stays_unreachable_ends_with_the_job_cancelled(app: FunctionApp) -> None:
    failing = ("fail", ("ServiceUnreachableError", "BES: GET .../jobs/abc123 got no answer (ConnectTimeout)"))
    run = monitor(app, [state("Running"), failing])
    assert run.output["status"] == "Unreachable" and run.output["cancelled"] is True
    assert "could not be read" in run.output["details"] and "got no answer (ConnectTimeout)" in run.output["details"]


def test_a_completion_event_ends_the_wait_at_once(app: FunctionApp) -> None:
    given = MONITOR | {"events": True}
    run = monitor(
        app,
        [state("Running"), state("Running"), state("Finished")],
        given,
        events={2: [(JOB_EVENT, {"status": "Completed"})]},
    )
    assert run.output["status"] == "Finished" and run.output["woken_by_event"] is True
    assert run.compound >= 1  # the event and the poll timer raced in one WhenAny


def test_duplicate_and_early_events_change_nothing_but_timing(app: FunctionApp) -> None:
    given = MONITOR | {"events": True}
    run = monitor(
        app,
        [state("Running")] * 4 + [state("Finished")],
        given,
        events={1: [(JOB_EVENT, {"status": "Running"}), (JOB_EVENT, {"status": "Running"})], 3: [(JOB_EVENT, {})]},
    )
    assert run.output["status"] == "Finished" and run.output["polls"] == 5


def test_with_trusted_events_a_job_costs_two_status_calls(app: FunctionApp) -> None:
    given = MONITOR | {"events": True, "events_trusted": True}
    run = monitor(app, [state("Running"), state("Finished")], given, events={1: [(JOB_EVENT, {"status": "Completed"})]})
    assert run.output["status"] == "Finished" and run.output["woken_by_event"] is True
    assert run.output["polls"] == 2  # the first look, and the one the event brought forward


def test_with_trusted_events_a_lost_event_costs_at_most_the_max_interval(app: FunctionApp) -> None:
    given = MONITOR | {"events": True, "events_trusted": True}
    run = monitor(app, [state("Running"), state("Running"), state("Finished")], given)
    assert run.output["status"] == "Finished" and run.output["polls"] == 3 and run.output["woken_by_event"] is False
    timers = run.timers()
    gap = timers[1] - timers[0]  # polls only every maxInterval while the event is awaited (plus the poll's own time)
    assert timedelta(seconds=300) <= gap < timedelta(seconds=301), gap


# ---- one target ---------------------------------------------------------------------------------


def test_a_target_is_updated_step_by_step_with_durable_waits(app: FunctionApp) -> None:
    run = rollout(
        app,
        {
            "apply": [step("done", state={"sent": True})],
            "confirm": [step("wait", wait_s=0.5, state={"sent": True, "look_s": 0.5}), step("done", serving="abc")],
        },
    )
    assert (
        run.output["updated"] is True
        and run.output["state"] == "updated"
        and run.output["steps"] == ["apply", "confirm"]
    )
    assert run.called("run_rollout_step")[2]["state"] == {"sent": True, "look_s": 0.5}  # state carried between calls


def test_a_refused_update_changes_nothing_and_is_not_rolled_back(app: FunctionApp) -> None:
    run = rollout(
        app,
        {"apply": [step("failed", reason="endpoint endpoint2 answered 400 BadArgument/InvalidModel")], "confirm": []},
    )
    assert run.output["state"] == "failed" and "InvalidModel" in run.output["error"]
    assert not run.called("roll_back_target")


def test_transient_step_failures_are_retried_within_the_timeout(app: FunctionApp) -> None:
    run = rollout(app, {"apply": [("fail", TRANSIENT), step("done")], "confirm": [step("done")]})
    assert run.output["updated"] is True and len(run.called("run_rollout_step")) == 3


def test_the_timeout_holds_when_a_call_never_returns(app: FunctionApp) -> None:
    run = rollout(app, {"apply": [step("done", state={"sent": True})], "confirm": []})
    assert run.output["updated"] is False and run.output["state"] == "unconfirmed"
    assert "passed while step 'confirm' was running" in run.output["error"]
    assert run.output["elapsed_s"] <= 60 + 2 + 1  # the deadline, its grace, and the (no-op) rollback
    deadlines = {json.loads(a["input"])["deadline"] for a in run.actions if a.get("functionName") == "run_rollout_step"}
    assert deadlines == {"2026-11-21T03:01:00.000000Z"}  # every call carries the deadline, 60 s after the start


def test_waits_never_run_past_the_timeout(app: FunctionApp) -> None:
    run = rollout(app, {"apply": [step("done")], "confirm": [step("wait", wait_s=25.0)]})
    assert run.output["state"] == "unconfirmed" and "did not finish within the policy timeout" in run.output["error"]
    assert run.output["elapsed_s"] <= 60 + 2 + 1
    looks = [json.loads(a["input"])["deadline"] for a in run.actions if a.get("functionName") == "run_rollout_step"]
    assert len(looks) >= 2 and len(set(looks)) == 1


def test_a_failed_canary_step_is_rolled_back(app: FunctionApp) -> None:
    plan = [
        {"name": "deploy", "bake_s": 0.0, "mutates": True},
        {"name": "shift_10", "bake_s": 5.0, "mutates": True},
        {"name": "check_10", "bake_s": 0.0, "mutates": False},
    ]
    run = rollout(
        app,
        {
            "deploy": [step("done", state={"deployment": "green"})],
            "shift_10": [step("done", traffic={"blue": 90, "green": 10})],
            "check_10": [
                step("failed", reason="error rate 50% above the 5% threshold", traffic={"blue": 90, "green": 10})
            ],
        },
        plan,
        roll_back=step("done", state={"rolled_back": True}, traffic={"blue": 100}),
    )
    assert run.output["state"] == "rolled_back" and "error rate 50%" in run.output["error"]
    assert run.output["steps"] == ["deploy", "shift_10"] and run.output["progress"]["traffic"] == {"blue": 100}
    assert len(run.called("roll_back_target")) == 1


AML_PLAN = [
    {"name": "deploy", "bake_s": 0.0, "mutates": True},
    {"name": "provisioned", "bake_s": 0.0, "mutates": False},
    {"name": "smoke", "bake_s": 0.0, "mutates": False},
    {"name": "traffic_10", "bake_s": 20.0, "mutates": True},
    {"name": "check_10", "bake_s": 0.0, "mutates": False},
    {"name": "traffic_100", "bake_s": 20.0, "mutates": True},
    {"name": "check_100", "bake_s": 0.0, "mutates": False},
    {"name": "cleanup", "bake_s": 0.0, "mutates": False, "best_effort": True},
]


def test_a_canary_rollout_bakes_each_step_on_a_durable_timer(app: FunctionApp) -> None:
    run = rollout(
        app,
        {
            "deploy": [step("done", state={"deployment": "m-v7", "created": True})],
            "provisioned": [step("wait", wait_s=2.0, provisioning="Creating"), step("done", provisioning="Succeeded")],
            "smoke": [step("done", smoke="5 rows scored")],
            "traffic_10": [
                step("wait", wait_s=1.0, traffic={"blue": 90, "m-v7": 10}),
                step("done", traffic={"blue": 90, "m-v7": 10}),
            ],
            "check_10": [step("done", health={"probes": 20, "errors": 0})],
            "traffic_100": [step("done", traffic={"m-v7": 100})],
            "check_100": [step("done")],
            "cleanup": [step("done", deleted=["blue"])],
        },
        AML_PLAN,
    )
    assert run.output["state"] == "updated" and run.output["steps"] == [s["name"] for s in AML_PLAN]
    assert run.output["progress"]["traffic"] == {"m-v7": 100}
    deadline_race = datetime(2026, 11, 21, 3, 1, 2, tzinfo=UTC)  # each call races the 60 s deadline (+2 s grace)
    waits = [t for t in run.timers() if t != deadline_race]
    assert len(waits) == 4  # the provisioning wait, the traffic wait and the two bakes: durable timers, no sleeps
    assert run.output["elapsed_s"] >= 40  # both bakes were served in full


def test_a_failed_cleanup_is_reported_and_the_rollout_stands(app: FunctionApp) -> None:
    plan = [AML_PLAN[0], AML_PLAN[-1]]
    run = rollout(
        app,
        {
            "deploy": [step("done", state={"deployment": "m-v7", "created": True})],
            "cleanup": [step("failed", reason="cleanup: Azure ML answered 409 Conflict")],
        },
        plan,
    )
    assert run.output["state"] == "updated" and run.output["steps"] == ["deploy"]
    assert "409 Conflict" in run.output["progress"]["cleanup_error"]
    assert not run.called("roll_back_target")


# ---- the run queue ------------------------------------------------------------------------------


def finished_run(run: dict[str, Any], record: str | None, status: RunStatus = RunStatus.SUCCEEDED) -> dict[str, Any]:
    given = RunInput.from_dict(run)
    at = "2026-11-21T03:05:00Z"
    return RunResult(given.run_id, given.request.pipeline, status, given.request, at, at, record=record).to_dict()


def queue_scenario(taken: Any, run_result: Answer | None = None) -> Any:
    def respond(name: str, payload: Any) -> Answer | None:
        if name == "recover_queue":
            return ("ok", {"requeued": [], "finished": [], "cancelled_jobs": []})
        if name == "take_next_request":
            return taken if isinstance(taken, tuple) else ("ok", taken)
        if name in ("retrain_pipeline", "promote_model", "reconcile_targets"):
            return run_result or ("ok", finished_run(payload, "runrecords/x.json"))
        if name == "finish_request":
            return ("ok", None)
        if name == "write_run_record":
            return ("ok", "runrecords/weekly-retrain/runs/interrupted.json")
        raise AssertionError(name)

    return respond


def continued(run: ReplayRun) -> QueueInput:
    return QueueInput.from_dict(run.continued_with)


def queue(
    app: FunctionApp, respond: Any, fresh: bool = True, given: dict[str, Any] | None = None, **kwargs: Any
) -> ReplayRun:
    return replay(
        orchestrator(app, "run_queue"),
        given or {"pipeline": "weekly-retrain", "fresh": fresh},
        respond,
        instance_id="retrain-weekly-retrain",
        **kwargs,
    )


def test_the_queue_runs_the_next_request_then_continues_as_new(app: FunctionApp) -> None:
    run = queue(app, queue_scenario({"request_id": "a" * 32, "request": REQUEST, "superseded": ["b" * 32]}))
    assert run.called("recover_queue") and continued(run) == QueueInput("weekly-retrain", fresh=False)
    run_id = run.called("take_next_request")[0]["run_id"]
    sub = next(a for a in run.actions if a["actionType"] == 2)
    assert sub["functionName"] == "retrain_pipeline" and sub["instanceId"] == f"retrain-weekly-retrain:{run_id}"
    assert json.loads(sub["input"])["superseded"] == ["b" * 32]
    assert run.called("finish_request")[0] | {"now": None} == {
        "pipeline": "weekly-retrain",
        "request_id": "a" * 32,
        "run_id": run_id,
        "outcome": "Succeeded",
        "record": "runrecords/x.json",
        "now": None,
    }


def test_a_continued_queue_does_not_recover_again(app: FunctionApp) -> None:
    run = queue(app, queue_scenario({"request_id": "a" * 32, "request": REQUEST, "superseded": []}), fresh=False)
    assert not run.called("recover_queue")


def test_promote_requests_run_the_promote_orchestration(app: FunctionApp) -> None:
    promote = REQUEST | {"action": "promote", "source_run": RUN_ID, "targets": ["endpoint2"]}
    run = queue(app, queue_scenario({"request_id": "a" * 32, "request": promote, "superseded": []}))
    assert [a["functionName"] for a in run.actions if a["actionType"] == 2] == ["promote_model"]


def test_an_idle_queue_waits_for_a_wake_up_or_its_idle_timer(app: FunctionApp) -> None:
    run = queue(app, queue_scenario(None), fresh=False, events={2: [(WAKE_EVENT, None), (WAKE_EVENT, None)]})
    assert continued(run) == QueueInput("weekly-retrain", fresh=False)
    assert run.compound == 1 and run.final["customStatus"]["state"] == "idle"
    idle = queue(app, queue_scenario(None), fresh=False)  # no event: the idle timer ends the wait
    assert idle.timers() == [datetime(2026, 11, 21, 15, 0, tzinfo=UTC)] and idle.continued_with is not None


def test_a_failed_run_orchestration_ends_its_request_and_the_queue_goes_on(app: FunctionApp) -> None:
    run = queue(
        app,
        queue_scenario(
            {"request_id": "a" * 32, "request": REQUEST, "superseded": []},
            ("fail", ("NonDeterministicOrchestrationException", "bad replay")),
        ),
    )
    assert run.called("finish_request")[0]["outcome"] == "Interrupted"
    (record,) = run.called("write_run_record")  # the run gets a record saying so
    assert record["status"] == "Interrupted" and "bad replay" in record["reason"], record
    assert continued(run) == QueueInput("weekly-retrain", fresh=False)


def test_an_unreachable_store_backs_off_and_recovers(app: FunctionApp) -> None:
    run = queue(
        app,
        queue_scenario(
            ("fail", ("StorageError", "cannot list runrecords/weekly-retrain/requests/: ServiceRequestError"))
        ),
    )
    assert len(run.called("take_next_request")) == 6
    assert continued(run) == QueueInput("weekly-retrain", fresh=True)
    assert run.final["customStatus"]["state"] == "store unavailable"


def test_wake_ups_during_a_run_are_not_needed_to_find_the_next_request(app: FunctionApp) -> None:
    # Events raised while the run goes are buffered and then dropped by continue-as-new; the next execution reads the store.
    run = queue(
        app,
        queue_scenario({"request_id": "a" * 32, "request": REQUEST, "superseded": []}),
        fresh=False,
        events={2: [(WAKE_EVENT, None)], 3: [(WAKE_EVENT, None)]},
    )
    assert continued(run) == QueueInput("weekly-retrain", fresh=False)
    assert len(run.called("take_next_request")) == 1


# ---- promote ------------------------------------------------------------------------------------

PROMOTE = RUN | {
    "request": REQUEST
    | {
        "action": "promote",
        "source_run": "20261114T030000Z-1a2b3c4d",
        "targets": ["endpoint2"],
        "force": False,
        "requested_by": "function key",
    }
}


def test_a_promotion_rolls_out_the_source_runs_model_to_the_chosen_target(app: FunctionApp) -> None:
    run = replay(
        orchestrator(app, "promote_model"),
        PROMOTE,
        scenario(load_promotion=("ok", {"model": MODEL, "gate_passed": True})),
    )
    assert run.output["status"] == "Succeeded" and [t["target"] for t in run.output["targets"]] == ["endpoint2"]
    serving = run.called("record_serving_model")[0]
    assert serving["targets"] == ["endpoint2"] and serving["champion"] is False  # one of two targets: not the champion


def test_a_model_that_failed_its_gate_is_not_promoted_without_force(app: FunctionApp) -> None:
    refusal = {
        "error": {
            "message": "run 20261114T030000Z-1a2b3c4d's model did not pass its gate (AUC 0.545 is below the minimum 0.7)"
        }
    }
    run = replay(orchestrator(app, "promote_model"), PROMOTE, scenario(load_promotion=("ok", refusal)))
    assert run.output["status"] == "Rejected" and "did not pass its gate" in run.output["reason"]
    assert not run.called("roll_out_target")


def test_a_five_day_job_replays_a_bounded_history(app: FunctionApp) -> None:
    # Hourly polls keep this quick; the bench replays the same job at 5-minute polls (1,440 of them).
    five_days = MONITOR | {
        "deadline": "2026-11-26T03:00:00.000000Z",
        "poll_first_s": 3600.0,
        "poll_max_s": 3600.0,
        "poll_fraction": 1.0,
    }
    polls = [state("Running")] * 119 + [state("Finished")]  # the job ends just before five days
    run = monitor(app, polls, five_days, max_steps=400)
    assert run.output["status"] == "Finished" and run.output["polls"] == 120
    assert len(run.called("poll_training_job")) == 120
    assert len(run.executions) == 24  # 5 polls an execution, then continue as new
    assert run.largest_history <= 60  # one execution's worth, however long the job (120 polls: ~1,000 events)
    assert run.output["elapsed_s"] == pytest.approx(119 * 3600, abs=30)  # spans the executions (+10 ms a step)


def test_a_run_whose_end_cannot_be_stored_is_finished_first_by_the_next_execution(app: FunctionApp) -> None:
    taken = {"request_id": "a" * 32, "request": REQUEST, "superseded": []}
    respond = queue_scenario(taken)

    def store_down(name: str, payload: Any) -> Answer | None:
        return ("fail", TRANSIENT) if name == "finish_request" else respond(name, payload)

    first = queue(app, store_down)
    carried = continued(first)
    assert carried.fresh and carried.unfinished is not None and carried.unfinished.record == "runrecords/x.json"
    assert len(first.called("finish_request")) == 6  # the store's retry policy ran out

    second = queue(app, queue_scenario(None), fresh=True, given=carried.to_dict())
    names = [name for name, _ in second.calls]
    assert names[:2] == ["finish_request", "recover_queue"]  # finished before recovery could requeue it
    assert second.called("finish_request")[0]["run_id"] == carried.unfinished.run_id


def test_a_run_that_could_not_write_its_record_has_it_written_by_the_queue(app: FunctionApp) -> None:
    taken = {"request_id": "a" * 32, "request": REQUEST, "superseded": []}
    respond = queue_scenario(taken)

    def unrecorded(name: str, payload: Any) -> Answer | None:
        if name == "retrain_pipeline":
            return ("ok", finished_run(payload, None))
        if name == "write_run_record":
            return ("ok", f"runrecords/weekly-retrain/runs/{payload['run_id']}.json")
        return respond(name, payload)

    run = queue(app, unrecorded)
    (record,) = run.called("write_run_record")
    (finished,) = run.called("finish_request")
    assert RunResult.from_dict(record).status is RunStatus.SUCCEEDED
    assert finished["record"] == f"runrecords/weekly-retrain/runs/{record['run_id']}.json"
    assert continued(run) == QueueInput("weekly-retrain", fresh=False)
