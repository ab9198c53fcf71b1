"""The weekly retrain: a timer on the NCRONTAB schedule in app setting RETRAIN_SCHEDULE.

Every pipeline whose schedule is enabled and whose start/end period contains the fire time gets
a run. The trigger key is the fire time to the minute, so a duplicate fire starts nothing new.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.models import RunRequest, Trigger, TriggerKind
from retraining.settings import Settings

from .starter import request_run

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.timer_trigger(schedule="%RETRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def scheduled_retrain(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if timer.past_due:
        logger.warning("the retrain schedule fired late (past due); starting the missed runs now")
    settings = Settings.from_env()
    for pipeline in operations.definitions(settings).pipelines.values():
        if not pipeline.is_active(now):
            continue
        slot = now.isoformat().replace("+00:00", "Z")
        trigger = Trigger(TriggerKind.SCHEDULE, f"schedule:{pipeline.name}:{slot}", slot)
        outcome = await request_run(client, RunRequest(pipeline.name, trigger))
        logger.info("pipeline %s: scheduled trigger %s -> %s", pipeline.name, slot, outcome.action)
