"""The drift check step of `retrain_pipeline`, replayed by azure-functions-durable's own executor at every step.

A skipped run submits no job and touches no target; a trained run carries its drift record to the end; with
retrainWhen a refused or failing check fails the run, without it the run notes why and trains; `drift_detected`
goes to the webhook when a score crossed its threshold.
"""

from __future__ import annotations

from typing import Any

from devhost.discovery import FunctionApp
from retraining.drift import ColumnDrift, Condition, Kind
from retraining.models import DriftRecord, PipelinePlan, RunResult, RunStatus

from .scenarios import PLAN, RUN_ID, TRANSIENT, retrain

WATCHED = PipelinePlan.from_dict(PLAN).to_dict() | {"retrain_when": True, "notify": ["drift_detected"]}
FEATURES = (
    ColumnDrift("mean_radius", Kind.NUMERIC, 0.41, 0.3, 0.28),
    ColumnDrift("mean_texture", Kind.NUMERIC, 0.02, 0.05, 0.04),
)
POLICY = {"drift": {"psi": 0.2}, "newRows": 0.25}


def record(train: bool, **extra: Any) -> dict[str, Any]:
    psi = FEATURES[0].psi if train else 0.02
    return DriftRecord(
        train=train,
        reasons=(f"PSI on 'mean_radius' {psi:.4g} {'>=' if train else '<'} 0.2",),
        conditions=(
            Condition("drift.psi", psi, 0.2, train, f"PSI on 'mean_radius' {psi:.4g}"),
            Condition("newRows", 0.0, 0.25, False, "growth in rows 0 < 0.25"),
        ),
        drifting=("mean_radius",) if train else (),
        features=FEATURES if train else (),
        label_shift=0.01,
        growth=0.0,
        rows=569,
        reference_rows=569,
        reference_run="20261114T030000Z-00000001",
        retrain_when=POLICY,
        detected=train,
        profile=f"runrecords/weekly-retrain/profiles/{RUN_ID}.json" if train else None,
        **extra,
    ).to_dict()


def test_the_check_runs_after_the_inspection_and_before_the_job_with_the_orchestration_time(app: FunctionApp) -> None:
    run = retrain(app, resolve_pipeline=("ok", WATCHED), check_data_drift=("ok", record(True)))
    names = [name for name, _ in run.calls]
    assert names.index("inspect_training_data") < names.index("check_data_drift") < names.index("submit_training_job")
    (check,) = run.called("check_data_drift")
    assert check["pipeline"] == "weekly-retrain" and check["run_id"] == RUN_ID
    assert check["data"] == "labeledexamples/labeledexamples.arff" and check["now"].endswith("Z")
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.SUCCEEDED
    assert result.drift is not None and result.drift.drifting == ("mean_radius",)  # kept to the end of the run


def test_a_skipped_run_submits_no_job_touches_no_target_and_records_the_scores(app: FunctionApp) -> None:
    run = retrain(app, resolve_pipeline=("ok", WATCHED), check_data_drift=("ok", record(False)))
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.SKIPPED and result.job_id is None and result.targets == ()
    assert result.reason == "PSI on 'mean_radius' 0.02 < 0.2"
    assert result.drift is not None and not result.drift.train
    assert [(c.name, c.score, c.threshold, c.held) for c in result.drift.conditions] == [
        ("drift.psi", 0.02, 0.2, False),
        ("newRows", 0.0, 0.25, False),
    ]
    for activity in ("submit_training_job", "start_training_job", "collect_model", "register_model"):
        assert run.called(activity) == []
    assert run.called("record_serving_model") == [] and run.called("send_notification") == []
    assert len(run.called("write_run_record")) == 1


def test_a_skipped_run_is_no_failure_to_notify(app: FunctionApp) -> None:
    plan = WATCHED | {"notify": ["run_not_succeeded", "drift_detected"]}
    run = retrain(app, resolve_pipeline=("ok", plan), check_data_drift=("ok", record(False)))
    assert run.output["status"] == "Skipped" and run.called("send_notification") == []
    failed = retrain(app, resolve_pipeline=("ok", plan), check_data_drift=("ok", {"error": {"message": "bad"}}))
    assert [n["event"] for n in failed.called("send_notification")] == ["run_not_succeeded"]


def test_drift_detected_is_sent_when_a_score_crossed_its_threshold(app: FunctionApp) -> None:
    run = retrain(app, resolve_pipeline=("ok", WATCHED), check_data_drift=("ok", record(True)))
    (note,) = run.called("send_notification")
    assert note["event"] == "drift_detected" and note["status"] == "Training"
    assert "mean_radius" in note["reason"] and "0.41 >= 0.2" in note["reason"]


def test_drift_detected_is_not_sent_when_the_webhook_does_not_want_it(app: FunctionApp) -> None:
    plan = WATCHED | {"notify": ["run_not_succeeded"]}
    run = retrain(app, resolve_pipeline=("ok", plan), check_data_drift=("ok", record(True)))
    assert run.called("send_notification") == []


def test_with_retrain_when_changed_columns_fail_the_run_naming_them(app: FunctionApp) -> None:
    why = "the data's columns differ from those the champion learned from: column 'mean_radius' changed kind"
    run = retrain(app, resolve_pipeline=("ok", WATCHED), check_data_drift=("ok", {"error": {"message": why}}))
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.FAILED and "'mean_radius' changed kind" in (result.reason or "")
    assert run.called("submit_training_job") == []


def test_with_retrain_when_a_check_that_keeps_failing_fails_the_run_after_its_retries(app: FunctionApp) -> None:
    run = retrain(app, resolve_pipeline=("ok", WATCHED), check_data_drift=("fail", TRANSIENT))
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.FAILED and (result.reason or "").startswith("the drift check failed")
    assert len(run.called("check_data_drift")) == 2 and run.called("submit_training_job") == []  # retry: 1


def test_a_transient_failure_of_the_check_is_retried_on_a_durable_timer(app: FunctionApp) -> None:
    run = retrain(app, resolve_pipeline=("ok", WATCHED), check_data_drift=[("fail", TRANSIENT), ("ok", record(False))])
    assert run.output["status"] == "Skipped" and len(run.called("check_data_drift")) == 2 and run.timers()


def test_without_retrain_when_a_failed_check_is_noted_and_the_run_trains(app: FunctionApp) -> None:
    run = retrain(app, check_data_drift=("ok", {"error": {"message": "x.arff: line 3: not a number"}}))
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.SUCCEEDED and result.drift is None
    assert any("the drift check could not be done (x.arff: line 3" in n for n in result.notes)


def test_without_retrain_when_the_scores_are_recorded_for_information(app: FunctionApp) -> None:
    informed = record(True) | {"retrain_when": None, "reasons": ["no retrainWhen: every run trains"]}
    run = retrain(app, check_data_drift=("ok", informed))
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.SUCCEEDED and result.drift is not None
    assert result.drift.features[0].name == "mean_radius" and result.drift.retrain_when is None


def test_a_failure_after_the_check_keeps_the_drift_record(app: FunctionApp) -> None:
    run = retrain(
        app,
        resolve_pipeline=("ok", WATCHED),
        check_data_drift=("ok", record(True)),
        submit_training_job=("ok", {"error": {"message": "refused"}}),
    )
    result = RunResult.from_dict(run.output)
    assert result.status is RunStatus.FAILED and result.drift is not None and result.drift.train


def test_a_record_without_drift_still_reads() -> None:
    old = RunResult.from_dict(
        {
            "run_id": RUN_ID,
            "pipeline": "weekly-retrain",
            "status": "Succeeded",
            "request": {
                "pipeline": "weekly-retrain",
                "trigger": {"kind": "http", "key": "k", "at": "2026-01-01T00:00:00Z"},
            },
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:01:00Z",
        }
    )
    assert old.drift is None and RunResult.from_dict(old.to_dict()) == old
