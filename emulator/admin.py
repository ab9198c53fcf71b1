"""Inspection routes over every service: `GET /_emulator/services` and `GET /_emulator/state`.

`/_emulator/services` lists what a client needs to call each service (URLs, keys, principals, the
CA file); `/_emulator/state` shows what the services hold (jobs, served models, counters, faults).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from .azure_ml.admin import describe as describe_azure_ml
from .azure_ml.admin import snapshot as azure_ml_snapshot
from .azure_ml.state import AzureMlState
from .faults import FaultRegistry
from .studio import StudioContext
from .studio.admin import describe_services


def build_router(studio: StudioContext, azure_ml: AzureMlState, faults: FaultRegistry) -> APIRouter:
    router = APIRouter()

    @router.get("/_emulator/services")
    async def list_services() -> Response:
        listing = describe_services(studio.config, studio.state, studio.http_base, studio.https_base, studio.ca_file)
        return JSONResponse(listing | {"azureMl": describe_azure_ml(azure_ml)})

    @router.get("/_emulator/state")
    async def inspect() -> Response:
        return JSONResponse(
            studio.state.snapshot() | {"faults": faults.snapshot(), "azureMl": azure_ml_snapshot(azure_ml)}
        )

    return router
