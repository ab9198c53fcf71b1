"""A run of the run queue that only undoes what rollouts left unfinished on the pipeline's targets.

The daily sweep queues one when a target's rollout journal holds an entry (`retraining.journal`), so an
orphan cannot outlive a day even if no run comes. In the queue it never overlaps a rollout. For each
target, one call at a time (`reconcile_target`), on durable timers while the target's rollback waits:

    nothing left to undo                   -> the target is left as it is
    an entry another run left              -> undone with the target's own rollback (or refused: `hold`)
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.rollout import reconcile_target
from activities.training import resolve_pipeline
from retraining.inputs import ReconcileCall
from retraining.models import PipelinePlan, RunInput, RunResult, RunStatus, TargetOutcome, TargetState
from retraining.retry import STORE_RETRY
from retraining.services.base import StepResult, StepStatus

from ._common import ActivityFailed, call, input_of, refused
from ._run import RunProgress, recorded

RECONCILE_ORCHESTRATOR = "reconcile_targets"
RECONCILE_BOUND = timedelta(hours=1)  # a target whose rollback takes longer is reported, and looked at again tomorrow

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=RECONCILE_ORCHESTRATOR)
def reconcile_targets(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    return (yield from recorded(RunProgress(context, RunInput.from_dict(input_of(context))), _reconcile))


def _reconcile(run: RunProgress) -> Generator[Any, Any, RunResult]:
    context = run.context
    run.status("resolving")
    resolved = yield from call(context, resolve_pipeline, run.run.request)
    if (why := refused(resolved)) is not None:
        return run.finish(RunStatus.FAILED, f"the pipeline cannot run: {why}")
    plan = PipelinePlan.from_dict(resolved)
    run.notify_events = plan.notify
    outcomes, failed = [], []
    for target in plan.targets:
        run.status("reconciling", target=target.name)
        ended = yield from _one(run, plan.name, target.name)
        undone = str(ended.progress.get("reconciled", "")).startswith("undid")
        if ended.status is StepStatus.DONE and not undone:
            continue  # nothing was left on it: not an outcome
        if ended.status is not StepStatus.DONE:
            failed.append(target.name)
        state = TargetState.ROLLED_BACK if undone else TargetState.FAILED  # back on what served before, or unchanged
        outcomes.append(
            TargetOutcome(target.name, target.kind, False, ended.reason, state=state, progress=dict(ended.progress))
        )
    if failed:
        return run.finish(
            RunStatus.FAILED, f"could not reconcile target(s) {', '.join(failed)}", targets=tuple(outcomes)
        )
    return run.finish(RunStatus.SUCCEEDED, None, targets=tuple(outcomes))


def _one(run: RunProgress, pipeline: str, target: str) -> Generator[Any, Any, StepResult]:
    context = run.context
    deadline = context.current_utc_datetime + RECONCILE_BOUND
    state: dict[str, Any] = {}
    while True:
        payload = ReconcileCall(pipeline, target, run.run_id, state)
        try:
            found = yield from call(context, reconcile_target, payload, STORE_RETRY)
        except ActivityFailed as failure:
            return StepResult.failed(f"reconciling failed: {failure.reason}", state)
        result = StepResult.from_dict(found, f"target {target} reconciliation")
        if result.status is not StepStatus.WAIT:
            return result
        state = dict(result.state)
        wake = context.current_utc_datetime + timedelta(seconds=result.wait_s or 1.0)
        if wake >= deadline:
            return StepResult.failed(f"reconciling did not finish within {RECONCILE_BOUND}", state)
        yield context.create_timer(wake)
