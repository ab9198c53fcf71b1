"""The scenarios the replay tests share: a run's inputs, built from the typed payloads the app itself
uses, and responders that answer each activity and child orchestration as the services would."""

from __future__ import annotations

from typing import Any

from devhost.discovery import FunctionApp, FunctionSpec
from retraining.inputs import InspectedData
from retraining.models import (
    BlobPath,
    DriftRecord,
    JobEnd,
    JobOutcome,
    ModelArtifact,
    PipelinePlan,
    RunInput,
    RunRequest,
    SubmittedJob,
    TargetPlan,
    Trigger,
    TriggerKind,
)

from .harness import Answer, ReplayRun, replay

RUN_ID = "20261121T030000Z-0a1b2c3d"
TRIGGER = Trigger(TriggerKind.SCHEDULE, "schedule:weekly-retrain:2026-11-21T03:00Z", "2026-11-21T03:00:00Z")
REQUEST = RunRequest("weekly-retrain", TRIGGER).to_dict()
RUN = RunInput("a" * 32, RUN_ID, RunRequest("weekly-retrain", TRIGGER), ("b" * 32,)).to_dict()
TARGET_PLANS = (
    TargetPlan("endpoint2", "classic", retry=3, retry_interval_s=30.0, timeout_s=3600.0),
    TargetPlan("myWebService", "arm", retry=3, retry_interval_s=30.0, timeout_s=3600.0),
)
TARGETS = [t.to_dict() for t in TARGET_PLANS]
PLAN = PipelinePlan(
    name="weekly-retrain",
    data=BlobPath("labeledexamples", "labeledexamples.arff"),
    data_retry_interval_s=60.0,
    data_retry_timeout_s=600.0,
    data_maximum_retry=3,
    timeout_s=7200.0,
    retry=1,
    retry_interval_s=30.0,
    poll_first_s=5.0,
    poll_max_s=300.0,
    poll_fraction=0.05,
    gate_enabled=True,
    targets=TARGET_PLANS,
).to_dict()
SUBMITTED = SubmittedJob(
    "weekly-retrain",
    RUN_ID,
    "abc123",
    {
        "model": f"trainingoutput/weekly-retrain/{RUN_ID}/model.ilearner",
        "metrics": f"trainingoutput/weekly-retrain/{RUN_ID}/evaluation.csv",
    },
)
JOB = SUBMITTED.to_dict()
MODEL = ModelArtifact(SUBMITTED.outputs["model"], 2048, "f" * 64, {"AUC": 0.97}, ("a", "b"), "class").to_dict()
SCHEMA = InspectedData(("a", "b"), "class").to_dict()
DRIFT = DriftRecord(True, ("no retrainWhen: every run trains",), rows=569).to_dict()  # the drift check's default
TRANSIENT = ("TransientServiceError", "BES answered 503 ServiceUnavailable/RequestThrottled: throttled")


def orchestrator(app: FunctionApp, name: str) -> FunctionSpec:
    return next(f for f in app.orchestrators if f.name == name)


def updated(payload: Any) -> Answer:
    target = payload["target"]
    return (
        "ok",
        {
            "target": target["name"],
            "kind": target["kind"],
            "updated": True,
            "error": None,
            "elapsed_s": 1.0,
            "state": "updated",
            "steps": ["apply", "confirm"],
            "progress": {},
        },
    )


def registered(payload: Any) -> Answer:
    return ("ok", payload["model"] | {"version": "7"})


def scenario(**overrides: Any) -> Any:
    answers: dict[str, Any] = {
        "resolve_pipeline": ("ok", PLAN),
        "check_training_data": ("ok", {"exists": True, "size": 10, "etag": "0x1"}),
        "inspect_training_data": ("ok", SCHEMA),
        "check_data_drift": ("ok", DRIFT),
        "submit_training_job": ("ok", JOB),
        "start_training_job": ("ok", None),
        "monitor_training_job": ("ok", JobOutcome(JobEnd.FINISHED, None, polls=7, elapsed_s=600.0).to_dict()),
        "collect_model": ("ok", MODEL),
        "evaluate_gate": ("ok", {"promote": True, "reasons": []}),
        "register_model": registered,
        "roll_out_target": updated,
        "record_serving_model": ("ok", None),
        "write_run_record": ("ok", f"runrecords/weekly-retrain/runs/{RUN_ID}.json"),
        "cancel_training_job": ("ok", None),
        "read_run_signals": ("ok", {"decision": None, "cancel": None}),
        "send_notification": ("ok", "notify-instance"),
    } | overrides

    def respond(name: str, payload: Any) -> Answer | None:
        answer = answers[name]
        if isinstance(answer, list):  # a sequence of answers, one per call
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer(payload) if callable(answer) else answer

    return respond


def retrain(app: FunctionApp, **overrides: Any) -> ReplayRun:
    return replay(
        orchestrator(app, "retrain_pipeline"),
        RUN,
        scenario(**overrides),
        instance_id=f"retrain-weekly-retrain:{RUN_ID}",
    )


ROLLOUT = {
    "pipeline": "weekly-retrain",
    "run_id": RUN_ID,
    "target": TARGETS[0] | {"timeout_s": 60.0, "retry": 2, "retry_interval_s": 1.0},
    "model": MODEL,
}
STEPS = [{"name": "apply", "bake_s": 0.0, "mutates": True}, {"name": "confirm", "bake_s": 0.0, "mutates": False}]


def step(status: str, **extra: Any) -> Answer:
    return (
        "ok",
        {
            "status": status,
            "state": extra.pop("state", {}),
            "wait_s": extra.pop("wait_s", 0.0),
            "reason": extra.pop("reason", None),
            "progress": extra,
        },
    )


def rollout(
    app: FunctionApp,
    steps: dict[str, list[Answer]],
    plan: list[dict[str, Any]] | None = None,
    roll_back: Answer | None = None,
) -> ReplayRun:
    def respond(name: str, payload: Any) -> Answer | None:
        if name == "plan_rollout":
            return ("ok", plan or STEPS)
        if name == "roll_back_target":
            return roll_back or step("done", state={"rolled_back": False})
        if name == "settle_rollout":
            return ("ok", True)
        answers = steps[payload["step"]["name"]]
        if not answers:
            return None  # the call never returns
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return replay(orchestrator(app, "roll_out_target"), ROLLOUT, respond)
