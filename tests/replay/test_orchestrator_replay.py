"""The orchestrators replayed by azure-functions-durable's own executor, at every step.

These are the code paths the Functions host runs in Azure: if an orchestrator read the clock,
the environment or random numbers, or changed its actions between replays, these tests fail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.discovery import FunctionApp, FunctionSpec, load_app
from orchestrators.retrain_pipeline import FOLLOW_UP_EVENT

from .harness import Answer, replay

PLAN = {
    "name": "weekly-retrain", "data": "labeledexamples/labeledexamples.arff", "data_retry_interval_s": 60.0,
    "data_retry_timeout_s": 600.0, "data_maximum_retry": 3, "timeout_s": 7200.0, "retry": 1, "retry_interval_s": 30.0,
    "poll_first_s": 5.0, "poll_max_s": 300.0, "poll_fraction": 0.05, "gate_enabled": True,
    "targets": [{"name": "endpoint2", "kind": "classic", "retry": 3, "retry_interval_s": 30.0, "timeout_s": 3600.0},
                {"name": "myWebService", "kind": "arm", "retry": 3, "retry_interval_s": 30.0, "timeout_s": 3600.0}],
}
REQUEST = {"pipeline": "weekly-retrain", "trigger": {"kind": "schedule", "key": "schedule:weekly-retrain:2026-11-21T03:00Z",
                                                     "at": "2026-11-21T03:00:00Z", "detail": ""}, "training_blob": None, "dry_run": False}
JOB = {"pipeline": "weekly-retrain", "run_id": "r", "job_id": "abc123", "model_blob": "trainingoutput/weekly-retrain/r/model.ilearner",
       "evaluation_blob": "trainingoutput/weekly-retrain/r/evaluation.csv"}
MODEL = {"model_blob": JOB["model_blob"], "size": 2048, "sha256": "f" * 64, "metrics": {"AUC": 0.97}}


@pytest.fixture(scope="module")
def app() -> FunctionApp:
    return load_app()


def orchestrator(app: FunctionApp, name: str) -> FunctionSpec:
    return next(f for f in app.orchestrators if f.name == name)


def scenario(**overrides: Any) -> Any:
    answers: dict[str, Answer] = {
        "resolve_pipeline": ("ok", PLAN),
        "check_training_data": ("ok", {"exists": True, "size": 10, "etag": "0x1"}),
        "submit_training_job": ("ok", JOB),
        "start_training_job": ("ok", None),
        "monitor_training_job": ("ok", {"status": "Finished", "details": None, "polls": 7, "elapsed_s": 600.0}),
        "collect_model": ("ok", MODEL),
        "evaluate_gate": ("ok", {"promote": True, "reasons": []}),
        "update_scoring_target_orchestrator": ("ok", None),
        "record_serving_model": ("ok", None),
        "write_run_record": ("ok", "runrecords/weekly-retrain/r.json"),
    } | overrides

    def respond(name: str, payload: Any) -> Answer | None:
        answer = answers[name]
        if name == "update_scoring_target_orchestrator" and answer == ("ok", None):
            request = payload["request"]
            return ("ok", {"target": request["target"], "kind": payload["kind"], "updated": True, "error": None, "elapsed_s": 1.0})
        return answer(payload) if callable(answer) else answer

    return respond


def test_happy_path_updates_every_target(app: FunctionApp) -> None:
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario())
    output = run.output
    assert output["status"] == "Succeeded"
    assert [t["target"] for t in output["targets"]] == ["endpoint2", "myWebService"]
    assert output["record"] == "runrecords/weekly-retrain/r.json"
    assert len(run.called("submit_training_job")) == 1 and len(run.called("start_training_job")) == 1
    updates = [a for a in run.actions if a.get("functionName") == "update_scoring_target_orchestrator"]
    assert len(updates) == 2
    # Both updates were scheduled in the same episode: they run in parallel.
    episode = next(i for i, s in enumerate(run.states) if any(a.get("functionName") == "update_scoring_target_orchestrator" for group in s["actions"] for a in group))
    assert sum(a.get("functionName") == "update_scoring_target_orchestrator" for g in run.states[episode]["actions"] for a in g) == 2


def test_job_failed_ends_failed_and_touches_no_target(app: FunctionApp) -> None:
    failed = ("ok", {"status": "Failed", "details": "Module 'Train Model' failed: out of memory", "polls": 3, "elapsed_s": 60.0})
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario(monitor_training_job=failed))
    assert run.output["status"] == "Failed"
    assert "out of memory" in run.output["reason"]
    assert not run.called("update_scoring_target_orchestrator")
    assert run.called("write_run_record")


def test_gate_rejection_ends_rejected(app: FunctionApp) -> None:
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST,
                 scenario(evaluate_gate=("ok", {"promote": False, "reasons": ["AUC 0.6 is below the minimum 0.7"]})))
    assert run.output["status"] == "Rejected"
    assert not run.called("update_scoring_target_orchestrator")


def test_one_failing_target_is_reported_and_the_other_updated(app: FunctionApp) -> None:
    def update(payload: Any) -> Answer:
        target = payload["request"]["target"]
        return ("ok", {"target": target, "kind": payload["kind"], "updated": target == "endpoint2",
                       "error": None if target == "endpoint2" else "web service myWebService answered 401", "elapsed_s": 1.0})

    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario(update_scoring_target_orchestrator=update))
    assert run.output["status"] == "PartiallyUpdated"
    assert {t["target"]: t["updated"] for t in run.output["targets"]} == {"endpoint2": True, "myWebService": False}
    assert run.called("record_serving_model")[0]["targets"] == ["endpoint2"]


def test_missing_data_waits_with_durable_timers_then_gives_up(app: FunctionApp) -> None:
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario(check_training_data=("ok", {"exists": False, "size": 0, "etag": None})))
    assert run.output["status"] == "NoData"
    assert len(run.called("check_training_data")) == 4  # first check + maximumRetry 3
    assert sum(a["actionType"] == 5 for a in run.actions) >= 3
    assert not run.called("submit_training_job")


def test_submit_failure_after_retries_ends_failed(app: FunctionApp) -> None:
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario(submit_training_job=("fail", "BES answered 401 Unauthorized")))
    assert run.output["status"] == "Failed"
    assert "could not start the training job" in run.output["reason"]


def test_follow_up_during_a_run_continues_as_new_with_the_newest(app: FunctionApp) -> None:
    older = REQUEST | {"trigger": {"kind": "blob", "key": "blob:a", "at": "2026-11-21T03:00:05Z", "detail": ""}}
    newer = REQUEST | {"trigger": {"kind": "blob", "key": "blob:b", "at": "2026-11-21T03:00:09Z", "detail": ""}}
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario(),
                 events={3: [(FOLLOW_UP_EVENT, older)], 5: [(FOLLOW_UP_EVENT, newer)]})
    continued = [a for a in run.actions if a["actionType"] == 4]
    assert len(continued) == 1
    assert json.loads(continued[0]["input"])["trigger"]["key"] == "blob:b"


def test_duplicate_follow_up_of_the_current_trigger_starts_nothing(app: FunctionApp) -> None:
    run = replay(orchestrator(app, "retrain_pipeline"), REQUEST, scenario(), events={2: [(FOLLOW_UP_EVENT, REQUEST)]})
    assert run.final["isDone"] and run.output["status"] == "Succeeded"
    assert not [a for a in run.actions if a["actionType"] == 4]


MONITOR_INPUT = {"job": JOB, "deadline": "2026-11-21T03:10:00.000000Z", "poll_first_s": 5.0, "poll_max_s": 300.0, "poll_fraction": 0.05}


def test_monitor_polls_with_timers_until_finished(app: FunctionApp) -> None:
    states = iter(["NotStarted", "Running", "Running", "Running", "Finished"])

    def status(_: Any) -> Answer:
        return ("ok", {"state": next(states), "details": None})

    run = replay(orchestrator(app, "monitor_training_job"), MONITOR_INPUT, lambda name, p: status(p))
    assert run.output["status"] == "Finished" and run.output["polls"] == 5
    assert sum(a["actionType"] == 5 for a in run.actions) == 4
    assert run.final["customStatus"]["polls"] == 5 and run.final["customStatus"]["job_id"] == "abc123"


def test_monitor_cancels_at_the_deadline(app: FunctionApp) -> None:
    def respond(name: str, payload: Any) -> Answer:
        return ("ok", None) if name == "cancel_training_job" else ("ok", {"state": "Running", "details": None})

    run = replay(orchestrator(app, "monitor_training_job"), MONITOR_INPUT, respond)
    assert run.output["status"] == "TimedOut"
    assert run.called("cancel_training_job") == [JOB]
    fire_times = [datetime.fromisoformat(a["fireAt"].replace("Z", "+00:00")) for a in run.actions if a["actionType"] == 5]
    assert max(fire_times) == datetime(2026, 11, 21, 3, 10, tzinfo=UTC)  # the last wait ends at the deadline, never past it


def test_update_sub_orchestration_reports_failure_as_an_outcome(app: FunctionApp) -> None:
    given = {"request": {"pipeline": "weekly-retrain", "target": "endpoint2", "model": MODEL, "run_id": "r"},
             "retry": 0, "retry_interval_s": 1.0, "timeout_s": 3600.0, "kind": "classic"}
    run = replay(orchestrator(app, "update_scoring_target_orchestrator"), given,
                 lambda name, payload: ("fail", "endpoint endpoint2 answered 400 BadArgument/InvalidModel"))
    assert run.output["updated"] is False
    assert "InvalidModel" in run.output["error"]
