"""A sweeper that keeps every run queue with work in it running: at host start and every ten minutes.

In Azure the task hub keeps each queue orchestration alive across restarts, so this only ever
acts if a queue instance was terminated or purged by hand. A local host keeps orchestrations in
memory, so after a restart this is what runs the requests a killed host left behind (their
requests are in storage): no trigger that was accepted is silently dropped.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.queue import RequestState
from retraining.runtime import storage
from retraining.settings import Settings

from .starter import ensure_running

logger = logging.getLogger(__name__)
SWEEP_SCHEDULE = "0 */10 * * * *"

bp = df.Blueprint()


@bp.timer_trigger(schedule=SWEEP_SCHEDULE, arg_name="timer", run_on_startup=True, use_monitor=False)
@bp.durable_client_input(client_name="client")
async def keep_queues_running(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    settings = Settings.from_env()
    queue = operations.run_queue(settings, storage(settings))
    for name in operations.definitions(settings).pipelines:
        try:
            waiting = await asyncio.to_thread(queue.entries, name, [RequestState.PENDING, RequestState.RUNNING])
            if waiting:
                await ensure_running(client, name)
                logger.info("pipeline %s: %d request(s) waiting; its queue is running", name, len(waiting))
        except Exception as exc:  # one pipeline's trouble never stops the sweep
            logger.error("pipeline %s: could not check its queue: %s: %s", name, type(exc).__name__, exc)
