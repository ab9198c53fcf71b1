"""Operators steer runs (function key): approve, reject, cancel.

- `POST /api/pipelines/{pipeline}/runs/{run_id}/approve` and `/reject` `{"comment": "..."}`: the run must
  be waiting for approval (409 otherwise; 404 for a run that does not exist). The first decision wins.
- `POST /api/pipelines/{pipeline}/runs/{run_id}/cancel`: a retrain still before its roll-out ends
  Cancelled, its training job cancelled (409 once the roll-out started, for a promotion, or when it ended).
- `POST /api/pipelines/{pipeline}/requests/{request_id}/cancel`: a request that has not run yet is
  marked cancelled in the run queue, so no run takes it; a running one is cancelled as above.

Each decision is written to storage first (`retraining.decisions`: who, from Easy Auth or "function
key", and when), then the run is woken with one `run_signal` event that carries nothing; the run
reads the store. An answer of 202 means the decision is stored; if the wake-up could not be sent,
the run still finds the decision at its next check (within an hour) and the answer says so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators._run import RUN_SIGNAL
from retraining import operations
from retraining.errors import ConfigError
from retraining.instances import run_instance_id
from retraining.models import Decision, DecisionAction, check_run_id, parse_moment
from retraining.queue import RequestState
from retraining.runtime import storage
from retraining.settings import Settings
from retraining.text import clean_text

from ._http import (
    BadRequest,
    bad_request,
    error_response,
    json_answer,
    read_body,
    requested_by,
    route_name,
    server_error,
)
from .starter import ACTIVE
from .status import custom_status

logger = logging.getLogger(__name__)
bp = df.Blueprint()
UNCANCELLABLE = ("updating", "recording", "done")
DONE = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}  # a decision as people say it was made


def _decision(req: func.HttpRequest, action: DecisionAction) -> Decision:
    """The decision the body asks for; who made it is filled in once the settings say whom to believe."""
    comment = read_body(req, {"comment"}).get("comment", "")
    try:
        comment = clean_text(comment, "comment", max_length=500, allow_empty=True)
    except ConfigError as exc:
        raise BadRequest("comment", str(exc).partition(": ")[2]) from None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # to the microsecond: compared with the deadline
    return Decision(action, "function key", now, comment)


async def _refusal(
    client: df.DurableOrchestrationClient, settings: Settings, pipeline: str, run_id: str, action: DecisionAction
) -> func.HttpResponse | None:
    """404 for a run that does not exist, 409 for one that cannot take `action` now; None when it can."""
    status = await client.get_status(run_instance_id(pipeline, run_id))
    if status.runtime_status is None or status.runtime_status not in ACTIVE:
        try:
            record = await asyncio.to_thread(operations.lineage(settings, storage(settings)).record, pipeline, run_id)
        except ConfigError:
            if status.runtime_status is None:
                return error_response(404, "RunNotFound", f"pipeline {pipeline!r} has no run {run_id!r}", "run_id")
            return error_response(409, "RunEnded", f"run {run_id} has ended", "run_id")
        return error_response(409, "RunEnded", f"run {run_id} has ended {record.status.value}", "run_id")
    custom = custom_status(status)
    phase = custom.get("phase")
    if action is DecisionAction.CANCEL:
        if custom.get("action") == "promote":
            return error_response(
                409, "NotCancellable", "a promotion or roll-back is not cancelled; roll back again instead", "run_id"
            )
        if phase in UNCANCELLABLE:
            return error_response(
                409,
                "NotCancellable",
                f"run {run_id} is {phase}: its roll-out has started and runs to its end",
                "run_id",
            )
        return None
    if phase != "awaiting_approval":
        return error_response(
            409,
            "NotAwaitingApproval",
            f"run {run_id} is not waiting for approval (it is {phase or 'starting'})",
            "run_id",
        )
    if _past(custom.get("expires_at")):
        return error_response(
            409, "ApprovalExpired", f"run {run_id}'s wait for approval ended at {custom['expires_at']}", "run_id"
        )
    return None


def _past(deadline: Any) -> bool:
    """Whether the approval deadline shown in custom status has passed (an unreadable one has not)."""
    try:
        return datetime.now(UTC) >= parse_moment(deadline, "expires_at")
    except ConfigError:
        return False


async def _signal(client: df.DurableOrchestrationClient, pipeline: str, run_id: str) -> bool:
    try:
        await client.raise_event(run_instance_id(pipeline, run_id), RUN_SIGNAL, None)
    except Exception as exc:  # stored all the same: the run finds it at its next check
        logger.warning(
            "pipeline %s run %s: the run_signal event was not delivered (%s)", pipeline, run_id, type(exc).__name__
        )
        return False
    return True


async def decide_run(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    action: DecisionAction,
    pipeline: str | None = None,
    run_id: str | None = None,
) -> func.HttpResponse:
    try:
        pipeline = pipeline or route_name(req, "pipeline", max_length=40)
        try:
            run_id = run_id or check_run_id(req.route_params.get("run_id"), "run_id")
        except ConfigError as exc:
            raise BadRequest("run_id", str(exc).partition(": ")[2]) from None
        decision = _decision(req, action)
    except BadRequest as exc:
        return bad_request(exc)
    try:
        settings = Settings.from_env()
        decision = replace(decision, by=requested_by(req, settings))
        if pipeline not in operations.definitions(settings).pipelines:
            return error_response(404, "PipelineNotFound", f"no pipeline named {pipeline!r}", "pipeline")
        refusal = await _refusal(client, settings, pipeline, run_id, action)
        if refusal is not None:
            return refusal
        store = operations.decisions(settings, storage(settings))
        stored, new = await asyncio.to_thread(store.record, pipeline, run_id, decision)
        if not new and stored.action is not action:
            return error_response(
                409,
                "AlreadyDecided",
                f"run {run_id} was already {DONE.get(stored.action.value, stored.action.value)} by {stored.by} at {stored.at}",
                "run_id",
            )
        woken = await _signal(
            client, pipeline, run_id
        )  # again on a repeated call: a wake-up lost the first time is sent now
    except Exception as exc:
        return server_error(f"recording the {action.value}", exc)
    answer = {"pipeline": pipeline, "run_id": run_id, "decision": stored.to_dict(), "new": new, "run_woken": woken}
    if not woken:
        answer["note"] = "stored; the run was not woken and will find the decision at its next check, within an hour"
    return json_answer(answer, 202)


@bp.route(route="pipelines/{pipeline}/runs/{run_id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def approve_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await decide_run(req, client, DecisionAction.APPROVE)


@bp.route(route="pipelines/{pipeline}/runs/{run_id}/reject", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def reject_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await decide_run(req, client, DecisionAction.REJECT)


@bp.route(route="pipelines/{pipeline}/runs/{run_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def cancel_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await decide_run(req, client, DecisionAction.CANCEL)


@bp.route(
    route="pipelines/{pipeline}/requests/{request_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION
)
@bp.durable_client_input(client_name="client")
async def cancel_request(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        pipeline = route_name(req, "pipeline", max_length=40)
        request_id = route_name(req, "request_id")
        decision = _decision(req, DecisionAction.CANCEL)
    except BadRequest as exc:
        return bad_request(exc)
    try:
        settings = Settings.from_env()
        decision = replace(decision, by=requested_by(req, settings))
        if pipeline not in operations.definitions(settings).pipelines:
            return error_response(404, "PipelineNotFound", f"no pipeline named {pipeline!r}", "pipeline")
        queue = operations.run_queue(settings, storage(settings))
        entry = await asyncio.to_thread(queue.cancel_pending, pipeline, request_id, decision, datetime.now(UTC))
    except Exception as exc:
        return server_error("cancelling the request", exc)
    if entry is None:
        return error_response(
            404, "RequestNotFound", f"pipeline {pipeline!r} has no request {request_id!r}", "request_id"
        )
    if entry.state is RequestState.RUNNING and entry.run_id:
        return await decide_run(req, client, DecisionAction.CANCEL, pipeline, entry.run_id)
    if entry.state is not RequestState.CANCELLED:
        return error_response(
            409, "RequestFinished", f"request {request_id} has finished ({entry.state.value})", "request_id"
        )
    cancelled = entry.cancelled or decision
    return json_answer(
        {"pipeline": pipeline, "request_id": request_id, "state": entry.state.value, "decision": cancelled.to_dict()},
        202,
    )
