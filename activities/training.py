"""Activities that prepare a run and drive its training job through the pipeline's training service."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import BlobPath, RunRequest, SubmittedJob

from ._runtime import answer, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def resolve_pipeline(payload: dict[str, Any]) -> Any:
    """The orchestrator's view of a pipeline definition: names and numbers, no URLs, no secrets."""
    current = settings()
    return answer(operations.resolve_plan(current, storage(current), RunRequest.from_dict(payload)))


@bp.activity_trigger(input_name="payload")
def check_training_data(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.data_exists(storage(current), BlobPath.parse(payload["data"]))


@bp.activity_trigger(input_name="payload")
def inspect_training_data(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(
        operations.inspect_data(current, storage(current), payload["pipeline"], BlobPath.parse(payload["data"]))
    )


@bp.activity_trigger(input_name="payload")
def submit_training_job(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(
        operations.submit(
            current,
            storage(current),
            payload["pipeline"],
            payload["run_id"],
            BlobPath.parse(payload["data"]),
            payload.get("request_id"),
        )
    )


@bp.activity_trigger(input_name="payload")
def start_training_job(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(operations.start(current, storage(current), SubmittedJob.from_dict(payload)))


@bp.activity_trigger(input_name="payload")
def poll_training_job(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.poll(current, storage(current), SubmittedJob.from_dict(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def cancel_training_job(payload: dict[str, Any]) -> None:
    current = settings()
    operations.cancel(current, storage(current), SubmittedJob.from_dict(payload))
