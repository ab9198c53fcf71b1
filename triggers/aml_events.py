"""Azure ML job events: a workspace's Event Grid subscription delivers `RunStatusChanged` / `RunCompleted` here.

When one says a run's training job ended, the run's monitor is woken at once (`JOB_EVENT`), so
polling is only the fallback. Anything else (another workspace, another app's job, a status that
is not terminal, an instance that already finished) is ignored: the monitor trusts only its own
status reads, so no event can end a run, and a lost one only costs time.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from orchestrators.monitor_training_job import JOB_EVENT
from retraining import operations
from retraining.errors import ConfigError
from retraining.instances import monitor_instance_id, run_instance_id
from retraining.services.azure_ml.events import job_ended
from retraining.settings import Settings

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def aml_job_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    try:
        pipelines = operations.definitions(Settings.from_env()).pipelines.values()
        data = event.get_json()
    except (ConfigError, ValueError) as exc:
        logger.error("an Azure ML event could not be read against the pipeline definitions: %s", exc)
        return
    ended = job_ended(event.event_type, event.topic, data, pipelines)
    if ended is None:
        logger.debug("ignored an Event Grid event (%s): not the end of one of our training jobs", event.event_type)
        return
    instance = monitor_instance_id(run_instance_id(ended.pipeline, ended.run_id))
    try:
        await client.raise_event(instance, JOB_EVENT, {"status": ended.status})
    except Exception as exc:  # the run's monitor has finished or not started: its own polls decide
        logger.info(
            "pipeline %s run %s: job event (%s) not delivered to %s: %s",
            ended.pipeline,
            ended.run_id,
            ended.status,
            instance,
            str(exc)[:200],
        )
        return
    logger.info("pipeline %s run %s: the job %s; woke its monitor", ended.pipeline, ended.run_id, ended.status)
