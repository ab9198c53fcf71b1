"""Studio (classic) error bodies: `{"error": {"code", "message", "details": [{"code", "message"}]}}`.

Top-level codes and their HTTP statuses follow the documented catalogue (BadArgument 400,
Unauthorized 401, NotFound 404, MemoryQuotaViolation 413, InternalError 500, ServiceUnavailable 503).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from .. import wire
from ..blobs import StorageError
from ..faults import InjectedFault
from ..security import TokenRejected

STATUS_OF_CODE = {
    "BadArgument": 400,
    "BadUserArgument": 400,
    "InvalidOperation": 400,
    "Unauthorized": 401,
    "NotFound": 404,
    "RequestTimeout": 408,
    "Conflict": 409,
    "MemoryQuotaViolation": 413,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "GatewayTimeout": 504,
}

TOP_MESSAGES = {
    "BadArgument": "Invalid argument provided.",
    "InvalidOperation": "Invalid operation.",
    "Unauthorized": "Authorization failed.",
    "NotFound": "Resource not found.",
    "MemoryQuotaViolation": "The request is too large.",
    "InternalError": "The server encountered an internal error.",
    "ServiceUnavailable": "Service is temporarily unavailable.",
}


class ServiceError(Exception):
    """Raised by route handlers; rendered as the documented error body."""

    def __init__(self, code: str, detail_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail_code = detail_code
        self.message = message
        self.status = status or STATUS_OF_CODE.get(code, 400)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": TOP_MESSAGES.get(self.code, self.message),
                "details": [{"code": self.detail_code, "message": self.message}],
            }
        }


def bad_argument(detail_code: str, message: str) -> ServiceError:
    return ServiceError("BadArgument", detail_code, message)


def unauthorized() -> ServiceError:
    return ServiceError("Unauthorized", "ScoreRequestUnauthorized", "Invalid credentials provided.")


def not_found(detail_code: str, message: str) -> ServiceError:
    return ServiceError("NotFound", detail_code, message)


class ArmError(Exception):
    """ARM-style error: `{"error": {"code", "message", "target"?}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def from_storage(exc: StorageError) -> ServiceError:
    """A storage failure as BES reports it: BadArgument (or MemoryQuotaViolation) with the detail code."""
    if exc.status == 413:
        return ServiceError("MemoryQuotaViolation", exc.code, exc.message)
    return bad_argument(exc.code, exc.message)


def render(exc: Exception) -> JSONResponse | None:
    """The Studio-shaped answer to a shared exception, or None if it is not one we know."""
    error: ServiceError | ArmError
    if isinstance(exc, ServiceError | ArmError):
        error = exc
    elif isinstance(exc, StorageError):
        error = from_storage(exc)
    elif isinstance(exc, InjectedFault):
        rule = exc.rule
        error = ServiceError(rule.code, rule.detail_code, rule.message, rule.status)
    elif isinstance(exc, wire.BodyTooLarge):
        error = ServiceError("MemoryQuotaViolation", "RequestBodyTooLarge", str(exc))
    elif isinstance(exc, wire.BodyNotJson):
        error = bad_argument("RequestBodyInvalid", str(exc))
    elif isinstance(exc, wire.BadRequest):
        error = bad_argument(exc.code, exc.message)
    elif isinstance(exc, TokenRejected):
        error = ArmError(exc.status, exc.code, exc.message)
    else:
        return None
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, InjectedFault) and exc.retry_after else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)
