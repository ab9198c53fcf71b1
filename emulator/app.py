"""The emulator's FastAPI app: it builds each service's state and mounts its routers, nothing more.

Errors are rendered in the shape of the service a path belongs to; a crash is a 500 naming only
the exception type, never a traceback or a server path.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import aad, admin, faults, studio, wire
from .azure_ml import service as azure_ml
from .azure_ml.arm import ArmPathCase
from .azure_ml.errors import AmlError
from .blobs import StorageError
from .config import EmulatorConfig, ServicePrincipalConfig
from .security import TokenIssuer, TokenRejected
from .studio.errors import ServiceError, bad_argument
from .studio.errors import render as render_studio
from .studio.state import EmulatorState

logger = logging.getLogger(__name__)


def create_app(config: EmulatorConfig, *, http_base: str = "", https_base: str = "", ca_file: str = "") -> FastAPI:
    tokens = TokenIssuer(https_base or http_base)
    studio_state = EmulatorState(config)
    registry = faults.FaultRegistry(studio_state.count)
    registry.register("job", studio.state.JobBehaviour, studio_state.job_behaviours)
    registry.register("update", studio.state.UpdateBehaviour, studio_state.update_behaviours)
    studio_ctx = studio.StudioContext(config, studio_state, registry, tokens, http_base, https_base, ca_file)
    ml_state, ml_router = azure_ml.build(
        config.azure_ml, registry, tokens, https_base or http_base, config.max_body_bytes
    )
    principals = (
        *config.service_principals,
        *(ServicePrincipalConfig(w.tenant, w.client_id, w.client_secret) for w in config.azure_ml.workspaces),
    )
    ml_location = config.azure_ml.workspaces[0].location if config.azure_ml.workspaces else "eastus"

    app = FastAPI(title="ML services emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(faults.DropMiddleware)
    app.add_middleware(wire.DrainUnreadBody)
    app.add_middleware(ArmPathCase)
    app.state.emulator = studio_state
    app.state.bases = {"http": http_base, "https": https_base, "ca_file": ca_file}

    async def render(request: Request, exc: Exception) -> JSONResponse:
        if azure_ml.owns(request.url.path):
            return azure_ml.render_error(request, exc, ml_location)
        response = render_studio(exc)
        if response is not None:
            return response
        if isinstance(exc, RequestValidationError):
            return render_studio(bad_argument("RequestBodyInvalid", f"Invalid request: {exc.errors()[:1]}")) or _crash(
                exc
            )
        if isinstance(exc, StarletteHTTPException):
            missing = exc.status_code == 404
            error = ServiceError(
                "NotFound" if missing else "BadArgument",
                "ResourceNotFound" if missing else "BadRequest",
                str(exc.detail),
                exc.status_code,
            )
            return JSONResponse(error.body(), status_code=exc.status_code)
        return _crash(exc)

    # Known exceptions are rendered inside the middleware stack (so DrainUnreadBody still runs);
    # only a crash reaches the outermost handler.
    known = (
        StarletteHTTPException,
        RequestValidationError,
        ServiceError,
        studio.errors.ArmError,
        StorageError,
        faults.InjectedFault,
        wire.BodyTooLarge,
        wire.BodyNotJson,
        wire.BadRequest,
        AmlError,
        TokenRejected,
    )
    for handled in (Exception, *known):
        app.add_exception_handler(handled, render)

    app.include_router(studio.build_router(studio_ctx))
    app.include_router(aad.build_router(principals, tokens, registry, studio_state.count))
    app.include_router(ml_router)
    app.include_router(faults.build_router(registry, config.max_body_bytes))
    app.include_router(admin.build_router(studio_ctx, ml_state, registry))
    return app


def _crash(exc: Exception) -> JSONResponse:
    logger.error("unhandled emulator error", exc_info=exc)
    error = ServiceError("InternalError", "InternalError", f"Internal error ({type(exc).__name__}).", 500)
    return JSONResponse(error.body(), status_code=500)
