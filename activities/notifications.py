"""Activities that tell people about runs: signed webhook notifications (`retraining.notify`).

A run never waits on a webhook: `send_notification` only starts the delivery's own orchestration
(`orchestrators.notify_webhook`, one per run and event), which retries within a time bound and
then writes how it ended beside the run's record (`record_delivery`).
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import Delivery, Notification
from retraining.instances import notify_instance_id
from retraining.runtime import answer, settings, storage

NOTIFY_ORCHESTRATOR = "notify_webhook"

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
@bp.durable_client_input(client_name="client")
async def send_notification(payload: dict[str, Any], client: df.DurableOrchestrationClient) -> str:
    """Start the delivery of one notification; again for the same run and event (a retried call): nothing new."""
    note = Notification.from_dict(payload)
    instance = notify_instance_id(note.pipeline, note.run_id, note.event)
    existing = await client.get_status(instance)
    if existing is None or existing.runtime_status is None:
        await client.start_new(NOTIFY_ORCHESTRATOR, instance, note.to_dict())
    return instance


@bp.activity_trigger(input_name="payload")
def deliver_notification(payload: dict[str, Any]) -> Any:
    return answer(operations.notify(settings(), Notification.from_dict(payload)))


@bp.activity_trigger(input_name="payload")
def record_delivery(payload: dict[str, Any]) -> None:
    current = settings()
    operations.lineage(current, storage(current)).record_delivery(Delivery.from_dict(payload))
