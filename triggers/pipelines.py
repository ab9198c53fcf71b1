"""What the page's script and `retrain runs|models` read (function key), as JSON.

- `GET /api/pipelines`: every pipeline: schedule and next fire, last outcome, what runs or waits now;
- `GET /api/pipelines/{pipeline}/runs?limit=50`: the newest runs (from the run index), and the requests
  in progress with their live phase (`awaiting_approval` included, with when it expires);
- `GET /api/pipelines/{pipeline}/models`: what each target serves since when, the champions, and every
  candidate model with its metrics.

Storage gives everything but the live phase, which comes from the runs' custom status through the
durable client, as for the request status route.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.definitions import Pipeline
from retraining.page import data
from retraining.runtime import storage
from retraining.settings import Settings

from ._http import BadRequest, bad_request, error_response, json_answer, route_name, server_error
from .status import live_progress

bp = df.Blueprint()
MAX_LIMIT = 1000


def limit_of(req: func.HttpRequest, default: int = 50) -> int:
    text = req.params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 0 <= int(text) <= MAX_LIMIT:
        raise BadRequest("limit", f"expected a whole number from 0 to {MAX_LIMIT}")
    return int(text)


def pipeline_of(req: func.HttpRequest, settings: Settings) -> Pipeline | None:
    return operations.definitions(settings).pipelines.get(route_name(req, "pipeline", max_length=40))


def resolve(req: func.HttpRequest, what: str) -> tuple[Settings, Pipeline] | func.HttpResponse:
    """The settings and the route's pipeline, or the answer to give: 400 for a bad name, 404 for an unknown one."""
    try:
        settings = Settings.from_env()
        pipeline = pipeline_of(req, settings)
    except BadRequest as exc:
        return bad_request(exc)
    except Exception as exc:
        return server_error(what, exc)
    if pipeline is None:
        return error_response(
            404, "PipelineNotFound", f"no pipeline named {req.route_params.get('pipeline')!r}", "pipeline"
        )
    return settings, pipeline


async def with_live(
    client: df.DurableOrchestrationClient, pipeline: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Requests in progress, each running one with its run's live phase (from custom status)."""
    for item in items:
        if item["state"] == "running" and item.get("run_id"):
            try:
                item["progress"] = await live_progress(client, pipeline, item["run_id"])
            except Exception:  # the live phase is a nicety: the request is shown without it
                item["progress"] = {}
    return items


@bp.route(route="pipelines", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def list_pipelines(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        settings = Settings.from_env()
        lineage, queue = (
            operations.lineage(settings, storage(settings)),
            operations.run_queue(settings, storage(settings)),
        )
        now = datetime.now(UTC)
        views = []
        for pipeline in operations.definitions(settings).pipelines.values():
            view = await asyncio.to_thread(data.overview, pipeline, lineage, queue, settings.schedule, now)
            view["in_progress"] = await with_live(client, pipeline.name, view["in_progress"])
            views.append(view)
    except Exception as exc:
        return server_error("listing the pipelines", exc)
    return json_answer({"pipelines": views})


@bp.route(route="pipelines/{pipeline}/runs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def list_runs(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        limit = limit_of(req)
    except BadRequest as exc:
        return bad_request(exc)
    found = resolve(req, "listing the runs")
    if isinstance(found, func.HttpResponse):
        return found
    settings, pipeline = found
    try:
        lineage, queue = (
            operations.lineage(settings, storage(settings)),
            operations.run_queue(settings, storage(settings)),
        )
        runs = await asyncio.to_thread(lineage.index.recent, pipeline.name, limit)
        waiting = await with_live(client, pipeline.name, await asyncio.to_thread(data.waiting, queue, pipeline.name))
    except Exception as exc:
        return server_error("listing the runs", exc)
    return json_answer({"pipeline": pipeline.name, "in_progress": waiting, "runs": runs})


@bp.route(route="pipelines/{pipeline}/models", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def list_models(req: func.HttpRequest) -> func.HttpResponse:
    found = resolve(req, "listing the models")
    if isinstance(found, func.HttpResponse):
        return found
    settings, pipeline = found
    try:
        lineage = operations.lineage(settings, storage(settings))
        runs = await asyncio.to_thread(lineage.index.recent, pipeline.name, data.MAX_RUNS)
        models = await asyncio.to_thread(data.models_of, pipeline, lineage, runs)
    except Exception as exc:
        return server_error("listing the models", exc)
    return json_answer(models)
