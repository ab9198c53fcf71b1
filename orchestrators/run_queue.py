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
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.queue import finish_request, recover_queue, take_next_request
from retraining.errors import ConfigError
from retraining.inputs import QueueFinish, QueueInput, QueueRecovery, QueueTake, TakenRequest
from retraining.instances import pipeline_of, run_instance_id
from retraining.models import RequestAction, RunInput
from retraining.retry import STORE_RETRY

from ._common import ActivityFailed, call, failure_reason, input_of, iso
from .promote_model import PROMOTE_ORCHESTRATOR
from .retrain_pipeline import RETRAIN_ORCHESTRATOR

QUEUE_ORCHESTRATOR = "run_queue"
WAKE_EVENT = "wake"
IDLE_WAIT = timedelta(hours=12)
BACK_OFF_AFTER_FAILURE = timedelta(minutes=1)

bp = df.Blueprint()


def _fresh(given: Any) -> bool:
    """Whether this execution starts a fresh queue (anything but a continued one recovers first)."""
    try:
        return QueueInput.from_dict(given).fresh
    except ConfigError:
        return True


@bp.orchestration_trigger(context_name="context", orchestration=QUEUE_ORCHESTRATOR)
def run_queue(context: df.DurableOrchestrationContext) -> Generator[Any, Any, None]:
    pipeline = pipeline_of(context.instance_id)  # from the instance id, which no caller's input can change
    fresh = _fresh(input_of(context))
    now = context.current_utc_datetime
    try:
        if fresh:
            context.set_custom_status({"pipeline": pipeline, "state": "recovering", "since": iso(now)})
            yield from call(context, recover_queue, QueueRecovery(pipeline, iso(now)), STORE_RETRY)
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{context.new_uuid()[:8]}"
        taken = yield from call(context, take_next_request, QueueTake(pipeline, run_id, iso(now)), STORE_RETRY)
    except ActivityFailed as failure:  # the store is out of reach: try again in a while, recovering first
        context.set_custom_status(
            {"pipeline": pipeline, "state": "store unavailable", "reason": failure.reason, "since": iso(now)}
        )
        yield context.create_timer(now + BACK_OFF_AFTER_FAILURE)
        context.continue_as_new(QueueInput(pipeline, fresh=True).to_dict())
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
    orchestrator = PROMOTE_ORCHESTRATOR if run.request.action is RequestAction.PROMOTE else RETRAIN_ORCHESTRATOR
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
    try:
        result = yield context.call_sub_orchestrator(orchestrator, run.to_dict(), instance)
        outcome, record = str(result["status"]), result.get("record")
    except Exception as exc:  # the run's own orchestration failed: its request ends, and the queue goes on
        outcome, record = "Failed", None
        context.set_custom_status(
            {"pipeline": pipeline, "state": "run failed", "run_id": run_id, "reason": failure_reason(exc)}
        )
    finished = QueueFinish(pipeline, run.request_id, run_id, outcome, record, iso(context.current_utc_datetime))
    try:
        yield from call(context, finish_request, finished, STORE_RETRY)
    except ActivityFailed:  # the request stays running in the store; the next fresh queue finishes it from the record
        context.continue_as_new(QueueInput(pipeline, fresh=True).to_dict())
        return None
    context.continue_as_new(QueueInput(pipeline, fresh=False).to_dict())
    return None
