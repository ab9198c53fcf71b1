"""Each pipeline's run queue: one long-lived orchestration that runs the pipeline's requests one at a time.

    take the next request from the store (NewestFirst; older retrains are superseded)
    run it as a sub-orchestration (retrain_pipeline, or promote_model)
    mark it done, and continue as new (history stays a few events long, for months)
    nothing to do: wait for a wake-up event or an idle timer, then continue as new

Starters only write requests to the store (`retraining.queue`) and wake this orchestration; it
never depends on an event arriving, because it looks at the store at the start of every execution.
An event that `continue_as_new` drops (the Python SDK keeps none) therefore loses nothing. Each
execution waits for the wake-up event at most once, so the SDK's buffered-event behaviour (one
buffered event per name, handed to every later waiter) and durabletask's agree on what happens.

A fresh queue (not continued from an earlier execution) first puts back in line the requests an
earlier queue left running (it died, or was terminated) and cancels their training jobs.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.queue import finish_request, recover_queue, take_next_request
from activities.records import write_run_record
from retraining.errors import ConfigError
from retraining.inputs import QueueFinish, QueueInput, QueueRecovery, QueueTake, TakenRequest
from retraining.instances import pipeline_of, run_instance_id
from retraining.models import RequestAction, RunInput, RunResult, RunStatus
from retraining.retry import STORE_RETRY

from ._common import ActivityFailed, call, failure_reason, input_of, iso
from .promote_model import PROMOTE_ORCHESTRATOR
from .reconcile_targets import RECONCILE_ORCHESTRATOR
from .retrain_pipeline import RETRAIN_ORCHESTRATOR

QUEUE_ORCHESTRATOR = "run_queue"
WAKE_EVENT = "wake"
IDLE_WAIT = timedelta(hours=12)
BACK_OFF_AFTER_FAILURE = timedelta(minutes=1)
ORCHESTRATORS = {
    RequestAction.RETRAIN: RETRAIN_ORCHESTRATOR,
    RequestAction.PROMOTE: PROMOTE_ORCHESTRATOR,
    RequestAction.RECONCILE: RECONCILE_ORCHESTRATOR,
}

bp = df.Blueprint()


def _given(given: Any, pipeline: str) -> QueueInput:
    """This execution's input; anything unreadable starts a fresh queue (which recovers first)."""
    try:
        return QueueInput.from_dict(given)
    except ConfigError:
        return QueueInput(pipeline, fresh=True)


@bp.orchestration_trigger(context_name="context", orchestration=QUEUE_ORCHESTRATOR)
def run_queue(context: df.DurableOrchestrationContext) -> Generator[Any, Any, None]:
    pipeline = pipeline_of(context.instance_id)  # from the instance id, which no caller's input can change
    given = _given(input_of(context), pipeline)
    now = context.current_utc_datetime
    try:
        if given.unfinished is not None:  # the last run completed, but its end is not stored yet
            context.set_custom_status({"pipeline": pipeline, "state": "finishing", "since": iso(now)})
            yield from _finish(context, given.unfinished, given.unrecorded)
        if given.fresh:
            context.set_custom_status({"pipeline": pipeline, "state": "recovering", "since": iso(now)})
            yield from call(context, recover_queue, QueueRecovery(pipeline, iso(now)), STORE_RETRY)
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{context.new_uuid()[:8]}"
        taken = yield from call(context, take_next_request, QueueTake(pipeline, run_id, iso(now)), STORE_RETRY)
    except ActivityFailed as failure:  # the store is out of reach: try again in a while, recovering first
        context.set_custom_status(
            {"pipeline": pipeline, "state": "store unavailable", "reason": failure.reason, "since": iso(now)}
        )
        yield context.create_timer(now + BACK_OFF_AFTER_FAILURE)
        context.continue_as_new(replace(given, fresh=True).to_dict())
        return None
    if taken is None:
        context.set_custom_status({"pipeline": pipeline, "state": "idle", "since": iso(now)})
        wake = context.wait_for_external_event(WAKE_EVENT)
        idle = context.create_timer(now + IDLE_WAIT)
        winner = yield context.task_any([wake, idle])
        if winner is wake:
            idle.cancel()
        context.continue_as_new(QueueInput(pipeline, fresh=False).to_dict())
        return None

    took = TakenRequest.from_dict(taken)
    run = RunInput(took.request_id, run_id, took.request, took.superseded)
    orchestrator = ORCHESTRATORS[run.request.action]
    instance = run_instance_id(pipeline, run_id)
    context.set_custom_status(
        {
            "pipeline": pipeline,
            "state": "running",
            "run_id": run_id,
            "run_instance": instance,
            "request_id": run.request_id,
            "action": run.request.action.value,
            "since": iso(now),
        }
    )
    result: RunResult | None = None
    try:
        result = RunResult.from_dict((yield context.call_sub_orchestrator(orchestrator, run.to_dict(), instance)))
        outcome, record = result.status.value, result.record
    except Exception as exc:  # the run's own orchestration failed or was ended: its request ends, and the queue goes on
        outcome, record = RunStatus.INTERRUPTED.value, None
        context.set_custom_status(
            {"pipeline": pipeline, "state": "run failed", "run_id": run_id, "reason": failure_reason(exc)}
        )
        result = RunResult(  # its record, written below: what it had done is in its rollouts' journal entries
            run_id,
            pipeline,
            RunStatus.INTERRUPTED,
            run.request,
            iso(now),
            iso(context.current_utc_datetime),
            f"the run's orchestration ended without finishing: {failure_reason(exc)}",
            request_id=run.request_id,
            superseded=run.superseded,
        )
    finished = QueueFinish(pipeline, run.request_id, run_id, outcome, record, iso(context.current_utc_datetime))
    unrecorded = result if result is not None and result.record is None else None
    try:
        yield from _finish(context, finished, unrecorded)
    except ActivityFailed:  # carried into the next execution, which finishes it before anything else
        yield context.create_timer(context.current_utc_datetime + BACK_OFF_AFTER_FAILURE)
        context.continue_as_new(QueueInput(pipeline, fresh=True, unfinished=finished, unrecorded=unrecorded).to_dict())
        return None
    context.continue_as_new(QueueInput(pipeline, fresh=False).to_dict())
    return None


def _finish(
    context: df.DurableOrchestrationContext, finished: QueueFinish, unrecorded: RunResult | None
) -> Generator[Any, Any, None]:
    """Store that a run ended: its record first, if the run could not write it, then its request's end.

    A run that completed is never run again: until both are stored, the queue carries them from one
    execution to the next and tries again before it recovers or takes anything.
    """
    if unrecorded is not None:
        path = yield from call(context, write_run_record, unrecorded, STORE_RETRY)
        finished = replace(finished, record=path)
    yield from call(context, finish_request, finished, STORE_RETRY)
