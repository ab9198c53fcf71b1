"""Inspection routes over every service: `GET /_emulator/services` and `GET /_emulator/state`.

`/_emulator/services` lists what a client needs to call each service (URLs, keys, principals, the
CA file); `/_emulator/state` shows what the services hold (jobs, served models, counters, faults).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from .faults import FaultRegistry
from .studio import StudioContext
from .studio.admin import describe_services


def build_router(studio: StudioContext, faults: FaultRegistry) -> APIRouter:
    router = APIRouter()

    @router.get("/_emulator/services")
    async def list_services() -> Response:
        return JSONResponse(describe_services(studio.config, studio.state, studio.http_base, studio.https_base, studio.ca_file))

    @router.get("/_emulator/state")
    async def inspect() -> Response:
        return JSONResponse(studio.state.snapshot() | {"faults": faults.snapshot()})

    return router
