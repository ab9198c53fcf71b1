"""The status page (function key, or Easy Auth in front of the app): `GET /api/status` and `GET /api/status/{pipeline}`.

Server-rendered HTML with inline SVG, from storage only (`retraining.page`). A browser opens it with
`?code=<function key>`; the page's script sends that key as `x-functions-key` for its actions and
live refresh, and never writes it into the HTML. `?limit=N` shows the newest N runs (default 50).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.page import data, render
from retraining.runtime import storage
from retraining.settings import Settings

from ._http import BadRequest, server_error
from .pipelines import limit_of, pipeline_of

bp = df.Blueprint()
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


def api_prefix(req: func.HttpRequest) -> str:
    """The app's route prefix as this request reached it (`/api`), for links and action URLs."""
    path = urlsplit(req.url).path
    return path[: path.index("/status")] if "/status" in path else "/api"


def html(body: str, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(body, status_code=status, headers=HEADERS, mimetype="text/html", charset="utf-8")


def not_found(text: str) -> func.HttpResponse:
    return html(f"<!DOCTYPE html><title>Not found</title><p>{text}</p>", 404)


@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def status_page(req: func.HttpRequest) -> func.HttpResponse:
    try:
        settings = Settings.from_env()
        lineage, queue = (
            operations.lineage(settings, storage(settings)),
            operations.run_queue(settings, storage(settings)),
        )
        now = datetime.now(UTC)
        views = [
            await asyncio.to_thread(data.overview, p, lineage, queue, settings.schedule, now)
            for p in operations.definitions(settings).pipelines.values()
        ]
    except Exception as exc:
        return server_error("rendering the status page", exc)
    return html(render.overview_page(views, api_prefix(req)))


@bp.route(route="status/{pipeline}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def pipeline_page(req: func.HttpRequest) -> func.HttpResponse:
    try:
        limit = limit_of(req)
        settings = Settings.from_env()
        pipeline = pipeline_of(req, settings)
    except BadRequest as exc:
        return html(f"<!DOCTYPE html><title>Bad request</title><p>{escape(exc.field)}: {escape(exc.message)}</p>", 400)
    except Exception as exc:
        return server_error("rendering the pipeline page", exc)
    if pipeline is None:
        return not_found("No such pipeline.")
    try:
        lineage, queue = (
            operations.lineage(settings, storage(settings)),
            operations.run_queue(settings, storage(settings)),
        )
        view = await asyncio.to_thread(
            data.pipeline_view, pipeline, lineage, queue, settings.schedule, datetime.now(UTC), limit
        )
    except Exception as exc:
        return server_error("rendering the pipeline page", exc)
    return html(render.pipeline_page(view, api_prefix(req)))
