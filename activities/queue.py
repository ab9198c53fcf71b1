"""Activities over a pipeline's run queue in Blob storage (`retraining.queue`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import QueueFinish, QueueRecovery, QueueTake
from retraining.runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def take_next_request(payload: dict[str, Any]) -> dict[str, Any] | None:
    take = QueueTake.from_dict(payload)
    current = settings()
    taken = operations.take_next(current, storage(current), take.pipeline, take.run_id, take.moment())
    return taken.to_dict() if taken else None


@bp.activity_trigger(input_name="payload")
def finish_request(payload: dict[str, Any]) -> None:
    done = QueueFinish.from_dict(payload)
    current = settings()
    operations.finish(
        current, storage(current), done.pipeline, done.request_id, done.run_id, done.outcome, done.record, done.moment()
    )


@bp.activity_trigger(input_name="payload")
def recover_queue(payload: dict[str, Any]) -> dict[str, Any]:
    recovery = QueueRecovery.from_dict(payload)
    current = settings()
    return operations.recover(current, storage(current), recovery.pipeline, recovery.moment())
