"""Activities that prepare a run and drive its training job through the pipeline's training service."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import DataCheck, DataInspection, JobSubmission
from retraining.models import RunRequest, SubmittedJob
from retraining.runtime import answer, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def resolve_pipeline(payload: dict[str, Any]) -> Any:
    """The orchestrator's view of a pipeline definition: names and numbers, no URLs, no secrets."""
    request = RunRequest.from_dict(payload)
    current = settings()
    return answer(operations.resolve_plan(current, storage(current), request))


@bp.activity_trigger(input_name="payload")
def check_training_data(payload: dict[str, Any]) -> dict[str, Any]:
    check = DataCheck.from_dict(payload)
    current = settings()
    return operations.data_exists(storage(current), check.data).to_dict()


@bp.activity_trigger(input_name="payload")
def inspect_training_data(payload: dict[str, Any]) -> Any:
    inspection = DataInspection.from_dict(payload)
    current = settings()
    return answer(operations.inspect_data(current, storage(current), inspection.pipeline, inspection.data))


@bp.activity_trigger(input_name="payload")
def submit_training_job(payload: dict[str, Any]) -> Any:
    submission = JobSubmission.from_dict(payload)
    current = settings()
    return answer(
        operations.submit(
            current, storage(current), submission.pipeline, submission.run_id, submission.data, submission.request_id
        )
    )


@bp.activity_trigger(input_name="payload")
def start_training_job(payload: dict[str, Any]) -> Any:
    job = SubmittedJob.from_dict(payload)
    current = settings()
    return answer(operations.start(current, storage(current), job))


@bp.activity_trigger(input_name="payload")
def poll_training_job(payload: dict[str, Any]) -> dict[str, Any]:
    job = SubmittedJob.from_dict(payload)
    current = settings()
    return operations.poll(current, storage(current), job).to_dict()


@bp.activity_trigger(input_name="payload")
def cancel_training_job(payload: dict[str, Any]) -> None:
    job = SubmittedJob.from_dict(payload)
    current = settings()
    operations.cancel(current, storage(current), job)
