"""The Event Grid trigger's webhook, as the Functions host serves it.

Event Grid delivers to `POST /runtime/webhooks/eventgrid?functionName={function}&code={key}`, the
key being the host's `eventgrid_extension` system key. The body is an array of Event Grid schema
events; the host first answers the subscription's validation handshake itself (echoing
`data.validationCode`), then hands each event to the function, one invocation per event. Any
failure answers 500, so Event Grid delivers again (the functions must tolerate duplicates).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import azure.functions as func
from fastapi import APIRouter, Request
from fastapi.responses import Response

from .discovery import FunctionSpec

logger = logging.getLogger("devhost")

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
MAX_BODY = 1024 * 1024


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a delivery (an array, or a single object); ValueError if it is not that (too deep too)."""
    try:
        parsed = json.loads(body)
    except RecursionError:
        raise ValueError("the JSON nests too deep") from None
    events = parsed if isinstance(parsed, list) else [parsed]
    if not events or not all(isinstance(e, dict) and isinstance(e.get("eventType"), str) for e in events):
        raise ValueError("expected an array of Event Grid events")
    return events


def validation_code(event: dict[str, Any]) -> str | None:
    """A subscription validation event's code; None if its `data` holds none (the answer is then 400)."""
    data = event.get("data")
    code = data.get("validationCode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def event_of(raw: dict[str, Any]) -> func.EventGridEvent:
    data = raw.get("data")
    return func.EventGridEvent(
        id=str(raw.get("id", "")),
        data=data if isinstance(data, dict) else {},
        topic=str(raw.get("topic", "")),
        subject=str(raw.get("subject", "")),
        event_type=str(raw["eventType"]),
        event_time=_moment(raw.get("eventTime")),
        data_version=str(raw.get("dataVersion", "")),
    )


def router(
    functions: Callable[[], list[FunctionSpec]], key: str, invoke: Callable[[FunctionSpec, Any], Awaitable[Any]]
) -> APIRouter:
    api = APIRouter()

    @api.post("/runtime/webhooks/eventgrid")
    async def deliver(request: Request) -> Response:
        if not secrets.compare_digest(request.query_params.get("code", ""), key):
            return Response(status_code=401)
        name = request.query_params.get("functionName", "")
        function = next((f for f in functions() if f.name == name), None)
        if function is None:
            return Response(status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY:
            return Response(status_code=413)
        try:
            events = parse_events(body)
        except ValueError:
            return Response(status_code=400)
        if events[0]["eventType"] == VALIDATION_EVENT:
            code = validation_code(events[0])
            if code is None:
                return Response(status_code=400)  # a validation event without a validation code
            return Response(json.dumps({"validationResponse": code}), media_type="application/json")
        for raw in events:
            try:
                await invoke(function, event_of(raw))
            except Exception:  # Event Grid retries; the function must tolerate the redelivery
                logger.exception("Function '%s' failed", function.name)
                return Response(status_code=500)
        return Response(status_code=200)

    return api
