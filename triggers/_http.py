"""What every HTTP function shares: JSON bodies read with limits, and JSON errors that name the field.

A caller's mistake gets a 4xx naming the field; a failure of ours gets a 500 with a code and an
error id only, while the details go to the log under that id. No answer ever carries a traceback,
a server path, a setting's value or a secret.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

import azure.functions as func

from retraining.settings import Settings
from retraining.text import excerpt, is_clean

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 8


class BadRequest(ValueError):
    """A caller's mistake; `field` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """Strict JSON: a NaN or infinite number (a stored record may hold one) is answered as null, never as a
    `NaN` or `Infinity` token that JSON parsers refuse."""
    try:
        text = json.dumps(body, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(body), allow_nan=False)
    return func.HttpResponse(text, status_code=status, headers=headers, mimetype="application/json")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def error_response(status: int, code: str, message: str, field: str | None = None) -> func.HttpResponse:
    """`{"error": {"code", "message", "field"?}}` with the given status."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field:
        body["error"]["field"] = field
    return json_answer(body, status)


def server_error(what: str, exc: BaseException) -> func.HttpResponse:
    """A 500 for a failure of ours: the caller gets an id, the log gets the details."""
    error_id = uuid.uuid4().hex[:12]
    logger.error("%s failed (error id %s): %s: %s", what, error_id, type(exc).__name__, exc)
    return json_answer(
        {"error": {"code": "InternalError", "message": f"{what} failed; quote error id {error_id}", "id": error_id}},
        500,
    )


def bad_request(exc: BadRequest) -> func.HttpResponse:
    return error_response(400, "InvalidRequest", exc.message, exc.field)


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] + [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] + [level + 1])
    return level


def _clean(value: Any) -> bool:
    if isinstance(value, str):
        return is_clean(value)
    if isinstance(value, dict):
        return all(_clean(k) and _clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v) for v in value)
    return True


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")


def read_body(req: func.HttpRequest, allowed: set[str], *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object (an empty body is `{}`); BadRequest naming the field otherwise.

    A content type an HTML form can send across sites without a preflight (form-urlencoded, multipart,
    text/plain) is refused, empty body or not: a page elsewhere holding a leaked `?code=` link cannot
    make a visitor's browser approve, reject, cancel or start anything.
    """
    content_type = (req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type in FORM_TYPES:
        raise BadRequest("Content-Type", f"{content_type} is not accepted: send JSON (application/json), or no body")
    raw = req.get_body() or b""
    if len(raw) > max_bytes:
        raise BadRequest("body", f"larger than {max_bytes} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body", "expected a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise BadRequest("body", f"nested deeper than {MAX_DEPTH} levels")
    if not _clean(body):
        raise BadRequest("body", "has characters that are not allowed (control characters or invalid Unicode)")
    unknown = sorted(set(body) - allowed)
    if unknown:
        name, listed = unknown[0], ", ".join(sorted(allowed)) or "none"
        if not name or len(name) > 64:  # not a field name one could point at: name the body
            raise BadRequest("body", f"unknown field {excerpt(name)} (allowed: {listed})")
        raise BadRequest(name, f"unknown field (allowed: {listed})")
    return body


def flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(name, "expected true or false")
    return value


def route_name(req: func.HttpRequest, name: str, *, max_length: int = 64) -> str:
    """A route parameter that must be a clean, short name."""
    value = str(req.route_params.get(name, ""))
    if not value or len(value) > max_length or not is_clean(value):
        raise BadRequest(name, f"{excerpt(value)} is not a valid {name}")
    return value


def requested_by(req: func.HttpRequest, settings: Settings) -> str:
    """Who asked, when the platform says (App Service authentication, app setting RETRAIN_EASY_AUTH); else the
    key's holder. Without Easy Auth in front the principal header is the caller's own word, and is ignored."""
    principal = str(req.headers.get("x-ms-client-principal-name", "")) if settings.easy_auth else ""
    return principal[:200] if principal and is_clean(principal) else "function key"
