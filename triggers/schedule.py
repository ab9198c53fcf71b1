"""The weekly retrain: a timer on the NCRONTAB schedule in app setting RETRAIN_SCHEDULE.

Every pipeline whose schedule is enabled and whose start/end period contains the fire time gets
a request. The trigger key is the schedule occurrence the fire stands for (the host's `Next`, to the
minute), so a duplicate or delayed fire of one occurrence starts nothing new.
One pipeline that cannot be queued never stops the others: each is tried, and failures are logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.models import RunRequest, Trigger, TriggerKind
from retraining.settings import Settings
from retraining.timespans import occurrence

from .starter import enqueue

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.timer_trigger(schedule="%RETRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def scheduled_retrain(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    now = occurrence(datetime.now(UTC), getattr(timer, "schedule_status", None))  # not on the abstract type
    if timer.past_due:
        logger.warning("the retrain schedule fired late (past due); queueing the missed runs now")
    settings = Settings.from_env()
    slot = now.isoformat().replace("+00:00", "Z")
    failed = []
    definitions = operations.definitions(settings)
    for name, why in definitions.unavailable.items():
        logger.error("pipeline %s: no scheduled run: %s", name, why)
    for pipeline in definitions.pipelines.values():
        if not pipeline.is_active(now):
            continue
        trigger = Trigger(TriggerKind.SCHEDULE, f"schedule:{pipeline.name}:{slot}", slot)
        try:
            enqueued = await enqueue(client, settings, RunRequest(pipeline.name, trigger))
        except Exception as exc:  # this pipeline's trouble must not cost the others their run
            failed.append(pipeline.name)
            logger.error(
                "pipeline %s: the scheduled run could not be queued: %s: %s", pipeline.name, type(exc).__name__, exc
            )
            continue
        logger.info("pipeline %s: scheduled trigger %s -> %s", pipeline.name, slot, enqueued.action)
    if failed:
        logger.error(
            "scheduled run not queued for %d pipeline(s): %s (the next fire retries them)",
            len(failed),
            ", ".join(failed),
        )
