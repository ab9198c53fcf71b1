"""Azure ML error bodies: the ARM shape, with what the resource provider adds in `additionalInfo`.

`{"error": {"code", "message", "target"?, "details": [], "additionalInfo": [{"type", "info": {"value"}}]}}`.
Errors raised by ARM itself (authentication, authorization, api-version, unknown workspace,
undeserialisable JSON) carry only `code` and `message`, as ARM answers before the provider runs.
Errors from the provider use code `UserError` (4xx) or `ServiceError` (5xx) and put the specific
code in the `InnerError` entry (NotFound, Conflict, JobPropertyImmutable, ...).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi.responses import JSONResponse

from .. import wire
from ..blobs import StorageError
from ..faults import InjectedFault
from ..security import TokenRejected


class AmlError(Exception):
    """Raised by Azure ML routes; rendered by `render`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner: str | None = None,
        parameters: dict[str, str] | None = None,
        target: str | None = None,
        arm: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.parameters = parameters
        self.target = target
        self.arm = arm  # raised by ARM itself: no provider additionalInfo
        self.headers = headers or {}

    def body(self, location: str, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if not self.arm:
            info: list[dict[str, Any]] = [
                {"type": "ComponentName", "info": {"value": "managementfrontend"}},
                {"type": "Correlation", "info": {"value": {"operation": uuid.uuid4().hex, "request": request_id[:16]}}},
                {"type": "Environment", "info": {"value": location}},
                {"type": "Location", "info": {"value": location}},
                {"type": "Time", "info": {"value": dt.datetime.now(dt.UTC).isoformat()}},
            ]
            if self.inner:
                info.append({"type": "InnerError", "info": {"value": {"code": self.inner, "innerError": None}}})
            if self.parameters:
                info.append({"type": "MessageFormat", "info": {"value": self.message}})
                info.append({"type": "MessageParameters", "info": {"value": self.parameters}})
            error |= {"details": [], "additionalInfo": info}
        return {"error": error}


def user_error(message: str, inner: str = "BadArgument", **kwargs: Any) -> AmlError:
    return AmlError(400, "UserError", message, inner=inner, **kwargs)


def not_found(message: str) -> AmlError:
    return AmlError(404, "UserError", message, inner="NotFound")


def conflict(message: str) -> AmlError:
    return AmlError(409, "UserError", message, inner="Conflict")


def arm_error(status: int, code: str, message: str) -> AmlError:
    return AmlError(status, code, message, arm=True)


def render(exc: Exception, location: str) -> JSONResponse | None:
    """The Azure ML answer to an exception raised on one of its paths, or None if unknown."""
    headers: dict[str, str] = {}
    if isinstance(exc, AmlError):
        error = exc
        headers = dict(exc.headers)
    elif isinstance(exc, InjectedFault):
        rule = exc.rule
        error = AmlError(rule.status, rule.code, rule.message, inner=rule.detail_code)
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, StorageError):
        error = AmlError(exc.status, "UserError", exc.message, inner=exc.code)
    elif isinstance(exc, wire.BodyTooLarge):
        error = arm_error(413, "RequestEntityTooLarge", str(exc))
    elif isinstance(exc, wire.BodyNotJson):
        error = arm_error(
            400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {exc}"
        )
    elif isinstance(exc, wire.BadRequest):
        error = user_error(exc.message, exc.code)
    elif isinstance(exc, TokenRejected):
        error = arm_error(exc.status, exc.code, exc.message)
    else:
        return None
    request_id = str(uuid.uuid4())
    headers |= {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id}
    return JSONResponse(error.body(location, request_id), status_code=error.status, headers=headers)
