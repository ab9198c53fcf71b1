"""Approvals, cancels and notifications, replayed by azure-functions-durable's own executor at every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.discovery import FunctionApp
from orchestrators._run import RUN_SIGNAL

from .harness import Answer, ReplayRun, replay
from .scenarios import PLAN, RUN, RUN_ID, orchestrator, scenario

START = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
APPROVING = PLAN | {
    "approval_s": 2 * 86400.0,
    "notify": ["awaiting_approval", "run_not_succeeded", "target_on_old_model"],
}


NOTHING: Answer = ("ok", {"decision": None, "cancel": None})
WAITING = 12  # the replay step at which the run first waits for the signal or its timer


def decided(action: str, by: str = "ana@contoso.com", comment: str = "") -> Answer:
    return (
        "ok",
        {"decision": {"action": action, "by": by, "at": "2026-11-21T05:00:00Z", "comment": comment}, "cancel": None},
    )


def cancelled(by: str = "ops") -> Answer:
    return (
        "ok",
        {"decision": None, "cancel": {"action": "cancel", "by": by, "at": "2026-11-21T05:00:00Z", "comment": ""}},
    )


def retrain(
    app: FunctionApp,
    signals: list[Answer],
    plan: dict[str, Any] = APPROVING,
    events: dict[int, list[tuple[str, Any]]] | None = None,
    **overrides: Any,
) -> ReplayRun:
    return replay(
        orchestrator(app, "retrain_pipeline"),
        RUN,
        scenario(resolve_pipeline=("ok", plan), read_run_signals=signals, **overrides),
        events=events,
        max_steps=800,
    )


def approval_checks(run: ReplayRun) -> int:
    return len(run.called("read_run_signals"))


def test_an_approved_model_is_rolled_out_and_the_record_says_who(app: FunctionApp) -> None:
    # Checks: before submitting, then on entering the wait (nothing yet), then after the event (approved).
    run = retrain(
        app, [NOTHING, NOTHING, decided("approve", comment="looks good")], events={WAITING: [(RUN_SIGNAL, None)]}
    )
    assert run.output["status"] == "Succeeded" and len(run.called("roll_out_target")) == 2
    approval = run.output["approval"]
    assert approval["decision"]["action"] == "approve" and approval["decision"]["by"] == "ana@contoso.com"
    assert (
        approval["asked_at"] < approval["expires_at"] and run.output["phases"]["awaiting_approval"] < 1
    )  # woken by the signal
    assert [n["event"] for n in run.called("send_notification")] == ["awaiting_approval"]
    assert any(s.get("phase") == "awaiting_approval" for s in (st.get("customStatus") or {} for st in run.states))


def test_a_rejected_model_touches_nothing(app: FunctionApp) -> None:
    run = retrain(
        app,
        [NOTHING, NOTHING, decided("reject", by="bo", comment="AUC dropped")],
        events={WAITING: [(RUN_SIGNAL, None)]},
    )
    assert (
        run.output["status"] == "Rejected"
        and "rejected by bo" in run.output["reason"]
        and "AUC dropped" in run.output["reason"]
    )
    assert not run.called("roll_out_target") and not run.called("record_serving_model")
    assert [n["event"] for n in run.called("send_notification")] == ["awaiting_approval", "run_not_succeeded"]


def test_no_answer_expires_with_timers_of_at_most_an_hour(app: FunctionApp) -> None:
    run = retrain(app, [NOTHING], plan=APPROVING | {"approval_s": 6 * 3600.0 + 30})
    assert run.output["status"] == "Expired" and not run.called("roll_out_target")
    waits = [t for t in run.timers() if t > START]
    assert max(b - a for a, b in zip([START, *waits], waits, strict=False)) <= timedelta(hours=1, seconds=1)
    assert waits[-1] == datetime.fromisoformat(run.output["approval"]["expires_at"].replace("Z", "+00:00"))
    assert (
        run.output["approval"]["decision"] is None and approval_checks(run) == 2 + 7
    )  # one look per chunk, and the first


def test_an_approval_made_after_the_deadline_takes_no_effect(app: FunctionApp) -> None:
    # The expiry timer fired and the run's last look at the store was in flight when someone approved:
    # the store holds an approval stamped after the deadline. It must not roll the model out.
    late = (
        "ok",
        {"decision": {"action": "approve", "by": "ana", "at": "2026-11-23T03:00:07.250000Z", "comment": ""}},
    )
    run = retrain(app, [NOTHING] * 49 + [late])
    assert run.output["status"] == "Expired" and not run.called("roll_out_target")
    assert run.output["approval"]["decision"] is None


def test_duplicate_and_early_signals_change_nothing_but_timing(app: FunctionApp) -> None:
    # Two signals at once, then one more later: the first wakes the run, which finds nothing new yet.
    run = retrain(
        app,
        [NOTHING, NOTHING, NOTHING, decided("approve")],
        events={WAITING: [(RUN_SIGNAL, None), (RUN_SIGNAL, None)], WAITING + 3: [(RUN_SIGNAL, None)]},
    )
    assert run.output["status"] == "Succeeded" and run.output["approval"]["decision"]["action"] == "approve"
    assert 3600 <= run.output["phases"]["awaiting_approval"] < 3601  # the next look came with the next timer
    assert approval_checks(run) == 4


def test_a_cancel_while_waiting_for_approval_ends_cancelled(app: FunctionApp) -> None:
    run = retrain(app, [NOTHING, NOTHING, cancelled("ops")], events={WAITING: [(RUN_SIGNAL, None)]})
    assert run.output["status"] == "Cancelled" and run.output["cancel"]["by"] == "ops"
    assert not run.called("roll_out_target") and not run.called("cancel_training_job")  # the job had ended


def test_a_cancel_seen_by_the_monitor_cancels_the_job(app: FunctionApp) -> None:
    monitor = (
        "ok",
        {
            "status": "Cancelled",
            "details": "cancel requested by ops at 2026-11-21T05:00:00Z",
            "polls": 3,
            "elapsed_s": 30.0,
        },
    )
    run = retrain(app, [NOTHING, cancelled("ops")], plan=PLAN, monitor_training_job=monitor)
    assert run.output["status"] == "Cancelled" and "while the job ran" in run.output["reason"]
    assert len(run.called("cancel_training_job")) == 1 and "cancelled training job abc123" in run.output["notes"]


def test_a_cancel_before_the_job_submits_nothing(app: FunctionApp) -> None:
    run = retrain(app, [cancelled()], plan=PLAN)
    assert run.output["status"] == "Cancelled" and not run.called("submit_training_job")


def test_a_job_cancelled_by_someone_else_still_fails(app: FunctionApp) -> None:
    monitor = ("ok", {"status": "Cancelled", "details": "cancelled in the portal", "polls": 3, "elapsed_s": 30.0})
    run = retrain(app, [NOTHING], plan=PLAN, monitor_training_job=monitor)
    assert run.output["status"] == "Failed" and "cancelled in the portal" in run.output["reason"]


def test_notifications_are_started_and_never_waited_for(app: FunctionApp) -> None:
    plan = PLAN | {"notify": ["run_not_succeeded", "target_on_old_model"]}

    def one_failing(payload: Any) -> Answer:
        target = payload["target"]
        return (
            "ok",
            {
                "target": target["name"],
                "kind": target["kind"],
                "updated": target["name"] == "endpoint2",
                "error": None,
                "elapsed_s": 1.0,
                "state": "updated" if target["name"] == "endpoint2" else "unconfirmed",
                "steps": [],
                "progress": {},
            },
        )

    run = retrain(app, [NOTHING], plan=plan, roll_out_target=one_failing)
    assert run.output["status"] == "PartiallyUpdated" and run.output["record"]
    assert [n["event"] for n in run.called("send_notification")] == ["run_not_succeeded", "target_on_old_model"]
    assert not run.called("deliver_notification")  # delivered by notify_webhook, not by the run
    assert not run.timers()  # nothing in the run waits for a receiver


def test_an_undeliverable_notification_is_retried_within_its_bound_and_its_end_recorded(app: FunctionApp) -> None:
    down = (
        "fail",
        ("TransientServiceError", "the webhook hooks.example.com refused the run_not_succeeded notification"),
    )
    note = {
        "event": "run_not_succeeded",
        "pipeline": "weekly-retrain",
        "run_id": RUN_ID,
        "status": "Failed",
        "reason": "no target could be updated",
        "at": "2026-11-21T03:10:00.000000Z",
        "trigger": "schedule",
        "targets": [],
    }

    def respond(name: str, payload: Any) -> Answer | None:
        return down if name == "deliver_notification" else ("ok", None)

    run = replay(orchestrator(app, "notify_webhook"), note, respond)
    assert len(run.called("deliver_notification")) == 5  # NOTIFY_RETRY's attempts, well within the 15 min bound
    (ended,) = run.called("record_delivery")
    assert ended["delivered"] is False and ended["attempts"] == 5 and "refused" in ended["reason"], ended
    assert run.output == ended
