"""The approval gate of a run (replay-safe): wait for a person to approve or reject the model, or for time to run out.

    phase awaiting_approval; notify the webhook (awaiting_approval)
    loop: read the decisions store (an activity)
          a cancel request -> Cancelled; approve -> go on; reject -> Rejected (who, when, why)
          past the timeout -> Expired, touching nothing
          wait for RUN_SIGNAL raced against a timer of at most CHECK_EVERY (re-armed until the timeout)

The event only brings the next look forward: it carries nothing, and the store decides. One waiter
is made for the whole wait and raced until it fires once; after that (a duplicate or forged event
found nothing) the run looks again at each timer. So a lost event delays a decision by at most
CHECK_EVERY, and a duplicated one changes nothing, on the Functions host as on devhost (see the
engine notes in `devhost.engine`). No single timer is longer than CHECK_EVERY, far below the
Python SDK's 6-day timer limit, whatever the configured timeout (at most 7 days).
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from retraining.models import Approval, DecisionAction, ModelArtifact, PipelinePlan, RunStatus, parse_moment

from ._common import iso
from ._run import RUN_SIGNAL, RunProgress, metrics_summary

CHECK_EVERY = timedelta(hours=1)


def await_approval(
    run: RunProgress, plan: PipelinePlan, model: ModelArtifact
) -> Generator[Any, Any, tuple[RunStatus, str] | None]:
    """None once approved; else how the run ends (Rejected, Expired or Cancelled) and why. `run.approval` keeps the wait."""
    context = run.context
    asked = context.current_utc_datetime
    expires = asked + timedelta(seconds=plan.approval_s)
    run.approval = Approval(iso(asked), iso(expires))
    run.status(
        "awaiting_approval",
        asked_at=iso(asked),
        expires_at=iso(expires),
        model=model.sha256[:12],
        metrics=metrics_summary(model.metrics),
    )
    yield from run.notify(
        "awaiting_approval",
        "AwaitingApproval",
        f"the model of run {run.run_id} waits for approval until {iso(expires)}",
    )
    signal = context.wait_for_external_event(RUN_SIGNAL)
    signalled = False
    while True:
        found = yield from run.signals()
        if found.cancel is not None:
            run.cancel = found.cancel
            return (
                RunStatus.CANCELLED,
                f"cancelled by {found.cancel.by} at {found.cancel.at} while waiting for approval",
            )
        decision = found.decision
        if decision is not None and parse_moment(decision.at, "decision.at") > expires:
            decision = None  # made after the deadline (while this look was in flight): it takes no effect
        if decision is not None:
            run.approval = Approval(iso(asked), iso(expires), decision)
            if decision.action is DecisionAction.APPROVE:
                return None
            why = f": {decision.comment}" if decision.comment else ""
            return RunStatus.REJECTED, f"rejected by {decision.by} at {decision.at}{why}"
        now = context.current_utc_datetime
        if now >= expires:
            return (
                RunStatus.EXPIRED,
                f"nobody approved or rejected the model within {plan.approval_s:.0f}s (by {iso(expires)}); nothing was updated",
            )
        timer = context.create_timer(min(now + CHECK_EVERY, expires))
        if signalled:
            yield timer
            continue
        winner = yield context.task_any([signal, timer])
        if winner is signal:
            timer.cancel()
            signalled = True
