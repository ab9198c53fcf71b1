"""Manual start: `POST /api/pipelines/{pipeline}/runs` (function key required).

Body (optional JSON object): `{"trainingBlob": "container/path/data.arff", "dryRun": false}`.
Answers 202 with the standard check-status payload, plus `"action"`: started, follow_up or
duplicate. A bad body or unknown pipeline gets 400 naming the field; nothing is started.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.errors import ConfigError
from retraining.models import BlobPath, RunRequest, Trigger, TriggerKind
from retraining.settings import Settings

from .starter import request_run

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
FIELDS = {"trainingBlob", "dryRun"}

bp = df.Blueprint()


def error_response(status: int, code: str, message: str, field: str | None = None) -> func.HttpResponse:
    """The JSON error every HTTP starter answers with: `{"error": {"code", "message", "field"?}}`."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field:
        body["error"]["field"] = field
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def parse_start_body(raw: bytes) -> tuple[BlobPath | None, bool]:
    """Validate the start body; raise ValueError('field: problem') on anything unexpected."""
    if len(raw) > MAX_BODY_BYTES:
        raise ValueError(f"body: larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return None, False
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body: not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(FIELDS))})")
    dry_run = body.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ValueError("dryRun: expected true or false")
    blob = body.get("trainingBlob")
    if blob is None:
        return None, dry_run
    try:
        return BlobPath.parse(blob, "trainingBlob"), dry_run
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


@bp.route(route="pipelines/{pipeline}/runs", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_pipeline_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    name = req.route_params.get("pipeline", "")
    try:
        blob, dry_run = parse_start_body(req.get_body())
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return error_response(400, "InvalidRequest", message or str(exc), field)
    try:
        settings = Settings.from_env()
        pipeline = operations.pipeline(settings, name)
    except ConfigError as exc:
        if "no pipeline named" in str(exc):
            return error_response(404, "PipelineNotFound", f"no pipeline named {name!r}", "pipeline")
        logger.error("configuration error: %s", exc)
        return error_response(500, "ConfigurationError", str(exc))
    if blob and blob.container != pipeline.data_container:
        return error_response(400, "InvalidRequest", f"must be in the pipeline's data container {pipeline.data_container!r}", "trainingBlob")
    now = datetime.now(UTC)
    trigger = Trigger(TriggerKind.HTTP, f"http:{uuid.uuid4().hex}", now.isoformat().replace("+00:00", "Z"), str(blob or ""))
    outcome = await request_run(client, RunRequest(pipeline.name, trigger, blob, dry_run))
    response = client.create_check_status_response(req, outcome.instance_id)
    payload = json.loads(response.get_body())
    payload["action"] = outcome.action
    return func.HttpResponse(json.dumps(payload), status_code=202, headers=dict(response.headers), mimetype="application/json")
