"""Sub-orchestration that updates one scoring target and always returns its outcome.

The update activity is retried per the target's policy (the seed's retry 3) and raced against a
durable timer for the policy timeout (the seed's 01:00:00). A target that still fails, or times
out, yields `updated: false` with the reason, so the parent can fan out with `task_all` and report
each target on its own.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.scoring import update_scoring_target as update_activity
from retraining.models import TargetOutcome, TargetPlan, UpdateRequest

from ._common import failure_reason, retry_options

UPDATE_ORCHESTRATOR = "update_scoring_target_orchestrator"

bp = df.Blueprint()


def update_input(request: UpdateRequest, plan: TargetPlan) -> dict[str, Any]:
    return {"request": request.to_dict(), "retry": plan.retry, "retry_interval_s": plan.retry_interval_s,
            "timeout_s": plan.timeout_s, "kind": plan.kind}


@bp.orchestration_trigger(context_name="context", orchestration=UPDATE_ORCHESTRATOR)
def update_scoring_target_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    given = context.get_input()
    request = UpdateRequest.from_dict(given["request"])
    started = context.current_utc_datetime
    update = context.call_activity_with_retry(update_activity, retry_options(given["retry"], given["retry_interval_s"]), request.to_dict())
    timeout = context.create_timer(started + timedelta(seconds=given["timeout_s"]))
    try:
        winner = yield context.task_any([update, timeout])
    except Exception as exc:
        return TargetOutcome(request.target, given["kind"], False, failure_reason(exc)).to_dict()
    elapsed = round((context.current_utc_datetime - started).total_seconds(), 3)
    if winner is timeout:
        reason = f"no confirmed update within the policy timeout of {given['timeout_s']:.0f}s"
        return TargetOutcome(request.target, given["kind"], False, reason, elapsed).to_dict()
    timeout.cancel()
    if isinstance(update.result, BaseException):  # retries ran out: task_any resolves with the failed task
        return TargetOutcome(request.target, given["kind"], False, failure_reason(update.result), elapsed).to_dict()
    return dict(update.result)
