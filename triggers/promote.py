"""Roll out an earlier run's model, through the pipeline's run queue (function key required).

- `POST /api/pipelines/{pipeline}/targets/{target}/promote` `{"runId": "...", "force": false}`:
  that run's verified model to one target (after that target failed while the others updated).
- `POST /api/pipelines/{pipeline}/rollback` `{"runId": "...", "force": false}`: a model back on
  every target; without `runId`, the champion before the current one.

Only a model that passed its gate is rolled out, unless `force` is given (the record keeps who
asked and that it was forced). The request waits its turn like any run, and what it rolls out
becomes what the next gate compares against. Answers 202 with the request's status `Location`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.errors import ConfigError
from retraining.models import RequestAction, RunRequest, Trigger, TriggerKind, check_run_id
from retraining.runtime import storage
from retraining.settings import Settings

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
from .http_start import idempotency_key
from .starter import enqueue
from .status import status_location

bp = df.Blueprint()


def _run_id(body: dict[str, Any], required: bool) -> str | None:
    value = body.get("runId")
    if value is None and not required:
        return None
    try:
        return check_run_id(value, "runId")
    except ConfigError as exc:
        raise BadRequest("runId", str(exc).partition(": ")[2]) from None


async def _queue(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    pipeline_name: str,
    source: str | None,
    targets: tuple[str, ...],
    force: bool,
    what: str,
) -> func.HttpResponse:
    try:
        key = idempotency_key(req) if req.headers.get("idempotency-key") else uuid.uuid4().hex
    except BadRequest as exc:
        return bad_request(exc)
    try:
        settings = Settings.from_env()
        pipeline = operations.definitions(settings).pipelines.get(pipeline_name)
        if pipeline is None:
            return error_response(404, "PipelineNotFound", f"no pipeline named {pipeline_name!r}", "pipeline")
        unknown = [t for t in targets if t not in {x.name for x in pipeline.targets}]
        if unknown:
            return error_response(
                404, "TargetNotFound", f"pipeline {pipeline_name!r} has no target {unknown[0]!r}", "target"
            )
        if source is None:
            serving = await asyncio.to_thread(operations.lineage(settings, storage(settings)).serving, pipeline.name)
            if not serving.previous:
                return error_response(
                    409, "NothingToRollBackTo", "no earlier champion is recorded; pass runId", "runId"
                )
            source = serving.previous[0].run_id
        else:
            try:
                await asyncio.to_thread(operations.lineage(settings, storage(settings)).record, pipeline.name, source)
            except ConfigError:
                return error_response(404, "RunNotFound", f"pipeline {pipeline_name!r} has no run {source!r}", "runId")
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        trigger = Trigger(TriggerKind.HTTP, f"http:{pipeline.name}:{what}:{key}", now, f"{what} run {source}")
        request = RunRequest(
            pipeline.name,
            trigger,
            action=RequestAction.PROMOTE,
            source_run=source,
            targets=targets,
            force=force,
            requested_by=requested_by(req, settings),
        )
        enqueued = await enqueue(client, settings, request)
    except Exception as exc:
        return server_error(f"queueing the {what}", exc)
    location = status_location(req, enqueued.pipeline, enqueued.request_id)
    return json_answer(
        enqueued.to_dict() | {"statusUri": location, "sourceRun": source},
        202,
        {"Location": location, "Retry-After": "5"},
    )


@bp.route(route="pipelines/{pipeline}/targets/{target}/promote", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def promote_to_target(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        pipeline, target = route_name(req, "pipeline", max_length=40), route_name(req, "target", max_length=40)
        body = read_body(req, {"runId", "force"})
        source, force = _run_id(body, required=True), flag(body, "force")
    except BadRequest as exc:
        return bad_request(exc)
    return await _queue(req, client, pipeline, source, (target,), force, "promote")


@bp.route(route="pipelines/{pipeline}/rollback", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def roll_back_pipeline(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        pipeline = route_name(req, "pipeline", max_length=40)
        body = read_body(req, {"runId", "force"})
        source, force = _run_id(body, required=False), flag(body, "force")
    except BadRequest as exc:
        return bad_request(exc)
    return await _queue(req, client, pipeline, source, (), force, "rollback")
