"""Activities that talk to the training web service (BES) and check the training data."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import BlobPath, PipelinePlan, RunRequest, SubmittedJob

from ._runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def resolve_pipeline(payload: dict[str, Any]) -> dict[str, Any]:
    """The orchestrator's view of a pipeline definition: names and numbers, no URLs, no secrets."""
    plan: PipelinePlan = operations.resolve_plan(settings(), RunRequest.from_dict(payload))
    return plan.to_dict()


@bp.activity_trigger(input_name="payload")
def check_training_data(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.data_exists(storage(current), BlobPath.parse(payload["data"]))


@bp.activity_trigger(input_name="payload")
def submit_training_job(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    request = RunRequest.from_dict(payload["request"])
    job = operations.submit_job(current, storage(current), request, payload["run_id"], BlobPath.parse(payload["data"]))
    return job.to_dict()


@bp.activity_trigger(input_name="payload")
def start_training_job(payload: dict[str, Any]) -> None:
    operations.start_job(settings(), SubmittedJob.from_dict(payload))


@bp.activity_trigger(input_name="payload")
def get_training_job_status(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.poll_job(current, storage(current), SubmittedJob.from_dict(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def cancel_training_job(payload: dict[str, Any]) -> None:
    operations.cancel_job(settings(), SubmittedJob.from_dict(payload))
