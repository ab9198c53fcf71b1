"""How every starter turns a trigger into at most one run per pipeline.

- No run in progress: start one, under the pipeline's fixed instance id.
- A run in progress: hand the request to it as a follow-up event; it runs at most one follow-up,
  on the newest request, when it ends (the seed's concurrency 1 and NewestFirst).
- The same trigger delivered twice (same key as the run in progress or the last run): nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from orchestrators.retrain_pipeline import FOLLOW_UP_EVENT, RETRAIN_ORCHESTRATOR, instance_id_for
from retraining.models import RunRequest

logger = logging.getLogger(__name__)

ACTIVE = {OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending,
          OrchestrationRuntimeStatus.ContinuedAsNew, OrchestrationRuntimeStatus.Suspended}


@dataclass(frozen=True)
class StartOutcome:
    instance_id: str
    action: str  # "started", "follow_up" or "duplicate"


def _trigger_key(payload: Any) -> str | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if isinstance(payload, dict):
        request = payload.get("request", payload)
        trigger = request.get("trigger") if isinstance(request, dict) else None
        key = trigger.get("key") if isinstance(trigger, dict) else None
        if isinstance(key, str):
            return key
    return None


async def request_run(client: df.DurableOrchestrationClient, request: RunRequest) -> StartOutcome:
    instance_id = instance_id_for(request.pipeline)
    key = request.trigger.key
    for _ in range(3):
        status = await client.get_status(instance_id, show_input=True)
        if status.runtime_status in ACTIVE:
            if _trigger_key(status.input_) == key:
                return StartOutcome(instance_id, "duplicate")
            try:
                await client.raise_event(instance_id, FOLLOW_UP_EVENT, request.to_dict())
            except Exception as exc:  # the run ended in the meantime (410): look again, and start one
                logger.info("pipeline %s: the run ended before it took the follow-up (%s); retrying", request.pipeline, exc)
                continue
            logger.info("pipeline %s: run in progress; queued trigger %s as its follow-up", request.pipeline, key)
            return StartOutcome(instance_id, "follow_up")
        if status.runtime_status is not None and key in (_trigger_key(status.output), _trigger_key(status.input_)):
            return StartOutcome(instance_id, "duplicate")
        try:
            await client.start_new(RETRAIN_ORCHESTRATOR, instance_id, request.to_dict())
        except Exception as exc:  # another starter won the race; look again and queue behind it
            logger.info("pipeline %s: start raced with another starter (%s); retrying", request.pipeline, exc)
            continue
        logger.info("pipeline %s: started run for trigger %s", request.pipeline, key)
        return StartOutcome(instance_id, "started")
    raise RuntimeError(f"could not start or queue a run of pipeline {request.pipeline}")
