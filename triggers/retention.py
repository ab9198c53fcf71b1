"""Retention: once a day, purge finished orchestration history older than RETRAIN_HISTORY_RETENTION_DAYS.

The durable client's purge-by-filter deletes the task hub's history of instances that Completed,
Failed or were Terminated and were created before the cutoff: finished runs, their monitors and
roll-outs. Running instances (each pipeline's long-lived run queue, a run waiting for approval)
are never touched, nor are run records, the run index, decisions or serving.json in the training
storage account: those are the history people read, and the page reads only them.

The same sweep adds to the run index any recorded run it lacks (`Lineage.reconcile_index`),
repairs the run queue's in-progress markers (`RunQueue.reconcile_active`), which the page reads, and
queues a reconciliation (`orchestrators.reconcile_targets`) for a pipeline whose targets' rollout
journal holds an entry, so a rollout left unfinished is undone within a day even if no run comes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from retraining import operations
from retraining.journal import RolloutJournal
from retraining.models import RequestAction, RunRequest, Trigger, TriggerKind
from retraining.runtime import storage
from retraining.settings import Settings

from .starter import enqueue

logger = logging.getLogger(__name__)
RETENTION_SCHEDULE = "0 40 2 * * *"  # daily, 02:40 UTC
FINISHED = [
    OrchestrationRuntimeStatus.Completed,
    OrchestrationRuntimeStatus.Failed,
    OrchestrationRuntimeStatus.Terminated,
]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

bp = df.Blueprint()


async def purge_finished(client: df.DurableOrchestrationClient, created_before: datetime) -> int:
    """Purge the history of every finished instance created before `created_before`; return how many went."""
    result = await client.purge_instance_history_by(
        created_time_from=EPOCH, created_time_to=created_before, runtime_status=FINISHED
    )
    return int(result.instances_deleted)


@bp.timer_trigger(schedule=RETENTION_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def purge_old_history(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    settings = Settings.from_env()
    cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
    purged = await purge_finished(client, cutoff)
    logger.info(
        "retention: purged the history of %d finished instance(s) created before %s", purged, cutoff.isoformat()
    )
    lineage, queue = operations.lineage(settings, storage(settings)), operations.run_queue(settings, storage(settings))
    for name in operations.definitions(settings).pipelines:
        try:
            added = await asyncio.to_thread(lineage.reconcile_index, name)
            markers = await asyncio.to_thread(queue.reconcile_active, name)
        except Exception as exc:  # one pipeline's trouble never stops the sweep
            logger.error(
                "pipeline %s: could not reconcile its run index and markers: %s: %s", name, type(exc).__name__, exc
            )
            continue
        try:
            await _reconcile_if_left(client, settings, name)
        except Exception as exc:
            logger.error("pipeline %s: could not queue its reconciliation: %s: %s", name, type(exc).__name__, exc)
        if added or markers:
            logger.warning(
                "pipeline %s: %d recorded run(s) added to the run index, %d in-progress marker(s) repaired",
                name,
                added,
                markers,
            )


async def _reconcile_if_left(client: df.DurableOrchestrationClient, settings: Settings, pipeline: str) -> bool:
    """Queue a reconciliation if a target's rollout journal holds an entry (one a day: the trigger key is the date)."""
    definition = operations.definitions(settings).get(pipeline)
    journals = [
        RolloutJournal(storage(settings), settings.run_records_container, pipeline, t.name) for t in definition.targets
    ]
    left = [j.path.name for j in journals if await asyncio.to_thread(j.read) is not None]
    if not left:
        return False
    now = datetime.now(UTC)
    trigger = Trigger(TriggerKind.SWEEP, f"sweep:{pipeline}:{now:%Y-%m-%d}", now.isoformat().replace("+00:00", "Z"))
    enqueued = await enqueue(client, settings, RunRequest(pipeline, trigger, action=RequestAction.RECONCILE))
    logger.warning(
        "pipeline %s: rollouts left unfinished (%s): reconciliation %s", pipeline, ", ".join(left), enqueued.action
    )
    return True
