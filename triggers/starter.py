"""How every starter hands a request to its pipeline's run queue: store it, then make sure the queue runs.

1. The request is written to the store (`retraining.queue`), create-only: the same trigger twice
   is one request. Nothing is answered before it is stored.
2. The pipeline's queue orchestration is started if it is not running, else woken by an event.
   The queue reads the store whenever it is free, so a wake-up that gets lost loses nothing.

A queue instance whose state cannot be read is woken if it runs and started again if not (purged
first if it must be): it holds nothing the store does not, so one poisoned instance never stops a
pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from orchestrators.run_queue import QUEUE_ORCHESTRATOR, WAKE_EVENT
from retraining import operations
from retraining.errors import ConfigError, StorageConflictError
from retraining.inputs import QueueInput
from retraining.instances import queue_instance_id, run_instance_id
from retraining.models import RunRequest, RunResult
from retraining.operations import run_queue
from retraining.runtime import storage
from retraining.settings import Settings

logger = logging.getLogger(__name__)

ACTIVE = {
    OrchestrationRuntimeStatus.Running,
    OrchestrationRuntimeStatus.Pending,
    OrchestrationRuntimeStatus.ContinuedAsNew,
    OrchestrationRuntimeStatus.Suspended,
}


@dataclass(frozen=True)
class Enqueued:
    pipeline: str
    request_id: str
    accepted: bool  # False: the same trigger was accepted before (a duplicate delivery)
    state: str

    @property
    def action(self) -> str:
        return "queued" if self.accepted else "duplicate"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.request_id, "pipeline": self.pipeline, "action": self.action, "state": self.state}


async def enqueue(client: df.DurableOrchestrationClient, settings: Settings, request: RunRequest) -> Enqueued:
    """Store the request, then make sure its pipeline's queue runs."""
    queue = run_queue(settings, storage(settings))
    entry, accepted = await asyncio.to_thread(queue.enqueue, request, datetime.now(UTC))
    await ensure_running(client, request.pipeline)
    logger.info(
        "pipeline %s: %s request %s (%s trigger)",
        request.pipeline,
        "accepted" if accepted else "duplicate",
        entry.request_id,
        request.trigger.kind.value,
    )
    return Enqueued(request.pipeline, entry.request_id, accepted, entry.state.value)


async def ensure_running(client: df.DurableOrchestrationClient, pipeline: str) -> None:
    """Wake the pipeline's queue if it runs; start it if not. Needs nothing it cannot get even from a broken instance.

    A fresh queue is not started while a run that an earlier queue started is still going (its queue
    was terminated or purged by hand): the fresh queue's recovery would put that run's request back
    in line and two runs of the pipeline would overlap. The sweeper (`triggers.recovery`) tries again
    later; by then the run has ended and written its record, and recovery finishes its request from it.
    A run that completed without writing its record (the queue would have written it, but is gone)
    gets its record written here, from its output, so recovery never runs it again.
    """
    instance = queue_instance_id(pipeline)
    try:
        running: bool | None = (await client.get_status(instance)).runtime_status in ACTIVE
    except Exception as exc:  # its state cannot be read: wake it if it runs, else start a new one
        logger.warning("pipeline %s: the queue instance cannot be read (%s)", pipeline, type(exc).__name__)
        running = None
    if running is not False and await _wake(client, instance):
        return
    if (busy := await _settle_earlier_runs(client, pipeline)) is not None:
        logger.warning(
            "pipeline %s: its queue is not running but run %s still is; a new queue starts once it has ended",
            pipeline,
            busy,
        )
        return
    try:
        await client.start_new(QUEUE_ORCHESTRATOR, instance, QueueInput(pipeline, fresh=True).to_dict())
        return
    except Exception:  # another starter started it first, perhaps before our request was stored: wake it
        if await _wake(client, instance):
            return
    # Neither running nor startable: an instance that cannot be replaced in place. Purge it and start again.
    logger.warning("pipeline %s: replacing a queue instance that neither runs nor can be restarted", pipeline)
    with contextlib.suppress(Exception):
        await client.purge_instance_history(instance)
    await client.start_new(QUEUE_ORCHESTRATOR, instance, QueueInput(pipeline, fresh=True).to_dict())


async def _settle_earlier_runs(client: df.DurableOrchestrationClient, pipeline: str) -> str | None:
    """The run id of a run an earlier queue started that has not ended yet, if any; the record of one that
    completed without writing it is written from its output."""
    settings = Settings.from_env()
    for entry in await asyncio.to_thread(run_queue(settings, storage(settings)).running, pipeline):
        if not entry.run_id:
            continue
        try:
            status = await client.get_status(run_instance_id(pipeline, entry.run_id))
        except Exception:  # unreadable: assume it may still run, and look again at the next sweep
            return entry.run_id
        if status.runtime_status in ACTIVE:
            return entry.run_id
        if status.runtime_status is OrchestrationRuntimeStatus.Completed:
            await asyncio.to_thread(write_missing_record, settings, pipeline, entry.run_id, status.output)
    return None


def write_missing_record(settings: Settings, pipeline: str, run_id: str, output: Any) -> None:
    """Write a completed run's record from its orchestration output, if the run could not write it."""
    try:
        result = RunResult.from_dict(json.loads(output) if isinstance(output, str) else output)
    except (ConfigError, KeyError, TypeError, ValueError):
        return  # no result to keep: recovery puts the request back in line
    if result.record is not None or result.run_id != run_id or result.pipeline != pipeline:
        return
    try:
        operations.write_record(settings, storage(settings), result)
    except StorageConflictError:
        return  # the run wrote it after all (records are create-only)
    logger.warning("pipeline %s: wrote the record of completed run %s, which could not write it", pipeline, run_id)


async def _wake(client: df.DurableOrchestrationClient, instance: str) -> bool:
    try:
        await client.raise_event(instance, WAKE_EVENT, None)
    except Exception:  # not found, or not running (404 / 410)
        return False
    return True
