"""A request's status, `GET /api/pipelines/{pipeline}/requests/{request_id}`, and a run's record (function key).

What the starters' `Location` points at, instead of the Durable status URLs (those carry the
system key). It shows the request's state (pending, running, done, superseded) and, while its run
is going, the run's phase, job, polls, elapsed time and each target's rollout step and progress.
Answers 202 with `Retry-After` until the request is finished, then 200.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from retraining.errors import ConfigError
from retraining.instances import rollout_instance_id, run_instance_id
from retraining.models import RequestAction, check_run_id
from retraining.operations import lineage, run_queue
from retraining.queue import QueuedRequest
from retraining.runtime import storage
from retraining.settings import Settings

from ._http import BadRequest, bad_request, error_response, json_answer, route_name, server_error

bp = df.Blueprint()


def status_location(req: func.HttpRequest, pipeline: str, request_id: str) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}/api/pipelines/{quote(pipeline)}/requests/{quote(request_id)}"


def custom_status(status: Any) -> dict[str, Any]:
    custom = getattr(status, "custom_status", None)
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except ValueError:
            return {}
    return custom if isinstance(custom, dict) else {}


async def live_progress(client: df.DurableOrchestrationClient, pipeline: str, run_id: str) -> dict[str, Any]:
    """The running run's phase, job, polls and targets, from its orchestrations' custom status."""
    instance = run_instance_id(pipeline, run_id)
    run = custom_status(await client.get_status(instance))
    view: dict[str, Any] = {
        key: run[key]
        for key in (
            "phase",
            "elapsed_s",
            "job_id",
            "started_at",
            "deadline",
            "metrics",
            "source_run",
            "asked_at",
            "expires_at",
            "model",
        )
        if key in run
    }
    if run.get("phase") == "polling" and isinstance(run.get("monitor"), str):
        monitor = custom_status(await client.get_status(run["monitor"]))
        view["job"] = {
            key: monitor.get(key)
            for key in ("job_state", "polls", "failed_polls", "elapsed_s", "expected_s", "last_error", "woken_by_event")
        }
    if run.get("phase") == "updating" and isinstance(run.get("targets"), list):
        targets = {}
        for name in run["targets"][:50]:
            rollout = custom_status(await client.get_status(rollout_instance_id(instance, name)))
            targets[str(name)] = {key: rollout.get(key) for key in ("step", "completed", "progress", "elapsed_s")}
        view["targets"] = targets
    return view


def request_view(entry: QueuedRequest) -> dict[str, Any]:
    request = entry.request
    view: dict[str, Any] = {
        "id": entry.request_id,
        "pipeline": request.pipeline,
        "state": entry.state.value,
        "action": request.action.value,
        "trigger": request.trigger.to_dict(),
        "accepted_at": entry.accepted_at,
        "updated_at": entry.updated_at,
        "run_id": entry.run_id,
    }
    if request.action is RequestAction.PROMOTE:
        view["source_run"] = request.source_run
        view["targets"] = list(request.targets)
    if entry.outcome:
        view["outcome"] = entry.outcome
        view["record"] = entry.record
    if entry.superseded_by:
        view["superseded_by"] = {"request_id": entry.superseded_by, "run_id": entry.superseded_by_run}
    if entry.interrupted:
        view["interrupted_runs"] = list(entry.interrupted)
    return view


@bp.route(route="pipelines/{pipeline}/requests/{request_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def request_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        pipeline = route_name(req, "pipeline", max_length=40)
        request_id = route_name(req, "request_id")
    except BadRequest as exc:
        return bad_request(exc)
    try:
        settings = Settings.from_env()
        entry = await asyncio.to_thread(run_queue(settings, storage(settings)).get, pipeline, request_id)
        if entry is None:
            return error_response(
                404, "RequestNotFound", f"pipeline {pipeline!r} has no request {request_id!r}", "request_id"
            )
        view = request_view(entry)
        if entry.state.value == "running" and entry.run_id:
            view["progress"] = await live_progress(client, pipeline, entry.run_id)
    except Exception as exc:
        return server_error("reading the request's status", exc)
    if entry.state.finished:
        return json_answer(view, 200)
    location = status_location(req, pipeline, request_id)
    return json_answer(view, 202, {"Location": location, "Retry-After": "5"})


@bp.route(route="pipelines/{pipeline}/runs/{run_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def run_record(req: func.HttpRequest) -> func.HttpResponse:
    """A finished run's record: `GET /api/pipelines/{pipeline}/runs/{run_id}` (404 until it is written), with how
    each of its notifications' deliveries ended (`deliveries`, as they end)."""
    try:
        pipeline = route_name(req, "pipeline", max_length=40)
        run_id = check_run_id(req.route_params.get("run_id"), "run_id")
    except BadRequest as exc:
        return bad_request(exc)
    except ConfigError as exc:
        return error_response(400, "InvalidRequest", str(exc).partition(": ")[2], "run_id")
    try:
        settings = Settings.from_env()
        records = lineage(settings, storage(settings))
        record = await asyncio.to_thread(records.record, pipeline, run_id)
        deliveries = await asyncio.to_thread(records.deliveries, pipeline, run_id)
    except ConfigError:
        return error_response(404, "RunNotFound", f"pipeline {pipeline!r} has no recorded run {run_id!r}", "run_id")
    except Exception as exc:
        return server_error("reading the run record", exc)
    # how its notifications' deliveries ended, written after the run by each delivery (`notify_webhook`)
    return json_answer(record.to_dict() | {"deliveries": [d.to_dict() for d in deliveries]})
