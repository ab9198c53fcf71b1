"""Manual start: `POST /api/pipelines/{pipeline}/runs` (function key required).

Body (optional JSON object): `{"trainingBlob": "container/path/data.arff", "dryRun": false}`. An
`Idempotency-Key` header makes a retried call the same request; reused with a different body it gets
409 naming the field that differs (nothing is queued). Answers 202 with the request's id,
`"action": "queued"` or `"duplicate"`, and a `Location` to its status route (same function key).
A bad body or an unknown pipeline gets a 4xx naming the field; nothing is queued.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.errors import ConfigError
from retraining.models import BlobPath, RunRequest, Trigger, TriggerKind
from retraining.runtime import storage
from retraining.settings import Settings
from retraining.text import clean_text

from ._http import (
    BadRequest,
    bad_request,
    error_response,
    flag,
    json_answer,
    read_body,
    requested_by,
    route_name,
    server_error,
)
from .starter import enqueue
from .status import status_location

bp = df.Blueprint()


def parse_start_body(body: dict[str, object]) -> tuple[BlobPath | None, bool]:
    """The training blob and dry-run flag of a start body; BadRequest naming the field."""
    dry_run = flag(body, "dryRun")
    blob = body.get("trainingBlob")
    if blob is None:
        return None, dry_run
    try:
        return BlobPath.parse(blob, "trainingBlob"), dry_run
    except ConfigError as exc:
        raise BadRequest("trainingBlob", str(exc).partition(": ")[2] or str(exc)) from None


def differing_field(stored: RunRequest, given: RunRequest) -> str | None:
    """The body field in which a request reusing an Idempotency-Key differs from the one stored under it, if any."""
    if stored.training_blob != given.training_blob:
        return "trainingBlob"
    if stored.dry_run != given.dry_run:
        return "dryRun"
    return None


def idempotency_key(req: func.HttpRequest) -> str:
    given = req.headers.get("idempotency-key")
    if given is None:
        return uuid.uuid4().hex
    try:
        return clean_text(given, "Idempotency-Key", max_length=200)
    except ConfigError as exc:
        raise BadRequest("Idempotency-Key", str(exc).partition(": ")[2]) from None


@bp.route(route="pipelines/{pipeline}/runs", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_pipeline_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        name = route_name(req, "pipeline", max_length=40)
        blob, dry_run = parse_start_body(read_body(req, {"trainingBlob", "dryRun"}))
        key = idempotency_key(req)
    except BadRequest as exc:
        return bad_request(exc)
    try:
        settings = Settings.from_env()
        definitions = operations.definitions(settings)
        pipeline = definitions.pipelines.get(name)
        if name in definitions.unavailable:
            return error_response(
                409,
                "PipelineUnavailable",
                f"pipeline {name!r} cannot run until its settings are complete: {definitions.unavailable[name]}",
                "pipeline",
            )
        if pipeline is None:
            return error_response(404, "PipelineNotFound", f"no pipeline named {name!r}", "pipeline")
        if blob and blob.container != pipeline.data_container:
            return error_response(
                400,
                "InvalidRequest",
                f"must be in the pipeline's data container {pipeline.data_container!r}",
                "trainingBlob",
            )
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        trigger = Trigger(TriggerKind.HTTP, f"http:{name}:{key}", now, str(blob or ""))
        request = RunRequest(pipeline.name, trigger, blob, dry_run, requested_by=requested_by(req, settings))
        enqueued = await enqueue(client, settings, request)
        if not enqueued.accepted:
            stored = await asyncio.to_thread(
                operations.run_queue(settings, storage(settings)).get, pipeline.name, enqueued.request_id
            )
            differs = differing_field(stored.request, request) if stored is not None else None
            if differs is not None:
                return error_response(
                    409,
                    "IdempotencyKeyReused",
                    f"this Idempotency-Key was used for a request with a different {differs}; nothing was queued"
                    " (use a new key for a new request)",
                    differs,
                )
    except Exception as exc:  # configuration or storage trouble: ours, not the caller's
        return server_error(f"starting pipeline {name}", exc)
    location = status_location(req, enqueued.pipeline, enqueued.request_id)
    return json_answer(enqueued.to_dict() | {"statusUri": location}, 202, {"Location": location, "Retry-After": "5"})
