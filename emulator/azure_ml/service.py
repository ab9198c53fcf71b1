"""Assembles the Azure ML stand-in: its state, its routers, and how its paths render errors."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..faults import FaultRegistry
from ..security import TokenIssuer
from . import admin, codes, deployments, endpoints, history, jobs, lro, models, scoring, tracking, workspaces
from .config import AzureMlConfig
from .errors import AmlError, arm_error, render, user_error
from .runner import Runner
from .state import AzureMlState

logger = logging.getLogger(__name__)

_PREFIXES = ("/inference/", "/mlflow/", "/history/", "/discovery", "/_emulator/azure-ml")


def build(
    config: AzureMlConfig, faults: FaultRegistry, tokens: TokenIssuer, base: str, max_body_bytes: int
) -> tuple[AzureMlState, APIRouter]:
    state = AzureMlState(config, faults, tokens, base, max_body_bytes)
    runner = Runner(state)
    router = APIRouter()
    for part in (
        workspaces.build_router(state),
        jobs.build_router(state, runner),
        models.build_router(state),
        codes.build_router(state),
        endpoints.build_router(state),
        deployments.build_router(state),
        lro.build_router(state),
        scoring.build_router(state, runner),
        tracking.build_router(state),
        history.build_router(state),
        admin.build_router(state),
    ):
        router.include_router(part)
    return state, router


def owns(path: str) -> bool:
    """Whether a request path belongs to the Azure ML stand-in (its errors then take ARM's shape)."""
    lowered = path.lower()
    return "/providers/microsoft.machinelearningservices" in lowered or lowered.startswith(_PREFIXES)


def render_error(request: Request, exc: Exception, default_location: str) -> JSONResponse:
    """Any exception on an Azure ML path, in ARM's error shape; a crash names only its type."""
    location = getattr(request.state, "aml_location", default_location)
    response = render(exc, location)
    if response is not None:
        return response
    error: AmlError
    if isinstance(exc, RequestValidationError):
        error = user_error(f"Invalid request: {exc.errors()[:1]}")
    elif isinstance(exc, StarletteHTTPException) and exc.status_code == 404:
        error = arm_error(
            404, "InvalidResourceType", f"No resource type or route matches {request.method} {request.url.path}."
        )
    elif isinstance(exc, StarletteHTTPException):
        error = arm_error(
            exc.status_code, "MethodNotAllowed" if exc.status_code == 405 else "BadRequest", str(exc.detail)
        )
    else:
        logger.error("unhandled Azure ML emulator error", exc_info=exc)
        error = AmlError(500, "ServiceError", f"Internal error ({type(exc).__name__}).")
    response = render(error, location)
    assert response is not None
    return response
