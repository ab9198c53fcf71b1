"""Activities over a pipeline's run queue in Blob storage (`retraining.queue`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations

from ._runtime import moment, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def take_next_request(payload: dict[str, Any]) -> dict[str, Any] | None:
    current = settings()
    return operations.take_next(current, storage(current), payload["pipeline"], payload["run_id"], moment(payload))


@bp.activity_trigger(input_name="payload")
def finish_request(payload: dict[str, Any]) -> None:
    current = settings()
    operations.finish(
        current,
        storage(current),
        payload["pipeline"],
        payload["request_id"],
        payload["run_id"],
        payload["outcome"],
        payload.get("record"),
        moment(payload),
    )


@bp.activity_trigger(input_name="payload")
def recover_queue(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.recover(current, storage(current), payload["pipeline"], moment(payload))
