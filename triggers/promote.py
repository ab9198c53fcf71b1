"""Re-promote a run's model to one target: `POST /api/pipelines/{pipeline}/targets/{target}/promote`.

Body: `{"runId": "..."}`, a run whose model was verified (its record holds the model's location
and hash). Used after a target failed while the others were updated: it runs the same per-target
update orchestration, with the target's retry and timeout policy, and answers 202 with the
check-status payload. A run without a verified model, or an unknown target, gets 400 or 404.
"""

from __future__ import annotations

import json
import logging

import azure.durable_functions as df
import azure.functions as func

from orchestrators.update_scoring_target import UPDATE_ORCHESTRATOR, update_input
from retraining import operations
from retraining.errors import ConfigError
from retraining.models import UpdateRequest
from retraining.policy import plan_of
from retraining.settings import Settings
from retraining.storage import TrainingStorage

from .http_start import error_response

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.route(route="pipelines/{pipeline}/targets/{target}/promote", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def promote_to_target(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    pipeline_name, target_name = req.route_params.get("pipeline", ""), req.route_params.get("target", "")
    try:
        body = json.loads(req.get_body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "InvalidRequest", "not valid JSON", "body")
    run_id = body.get("runId") if isinstance(body, dict) else None
    if not isinstance(run_id, str):
        return error_response(400, "InvalidRequest", "expected the id of a run whose model to promote", "runId")
    try:
        settings = Settings.from_env()
        pipeline = operations.pipeline(settings, pipeline_name)
        target = next((t for t in plan_of(pipeline, None).targets if t.name == target_name), None)
        if target is None:
            return error_response(404, "TargetNotFound", f"pipeline {pipeline_name!r} has no target {target_name!r}", "target")
        record = operations.run_record(settings, TrainingStorage.from_settings(settings), pipeline.name, run_id)
    except ConfigError as exc:
        status = 404 if "no pipeline named" in str(exc) or "has no run" in str(exc) else 400
        return error_response(status, "NotFound" if status == 404 else "InvalidRequest", str(exc), "runId" if "run" in str(exc) else "pipeline")
    if record.model is None:
        return error_response(400, "InvalidRequest", f"run {run_id} produced no verified model (status {record.status.value})", "runId")
    request = UpdateRequest(pipeline.name, target.name, record.model, record.run_id)
    instance_id = await client.start_new(UPDATE_ORCHESTRATOR, None, update_input(request, target))
    logger.info("pipeline %s: promoting run %s's model to %s (instance %s)", pipeline.name, run_id, target.name, instance_id)
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response
