"""HTTP plumbing every emulated service shares: request bodies and bearer credentials.

A service that answers before it has read the whole request body (a 413, a 401) and then closes
the connection makes the client's kernel see a reset while it is still sending, and the answer is
lost. Clients that send `Connection: close` (urllib does, always) hit that on every such answer.
`DrainUnreadBody` therefore reads what is left of a body, up to a cap, before the answer starts.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_CAP_BYTES = 256 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body is larger than the route accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds {limit} bytes.")
        self.limit = limit


class BodyNotJson(Exception):
    """The request body is not JSON (or not UTF-8, or holds a lone surrogate)."""


class BadRequest(Exception):
    """A 400 any service may raise; `code` names the problem (e.g. RequestBodyInvalid)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DrainUnreadBody:
    """Reads (and drops) the unread rest of a request body before the response starts."""

    def __init__(self, app: ASGIApp, cap_bytes: int = DRAIN_CAP_BYTES) -> None:
        self.app = app
        self.cap_bytes = cap_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        finished = declared.isdigit() and int(declared) > self.cap_bytes  # too big to drain: let it reset

        def note(message: Message) -> Message:
            nonlocal finished
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                finished = True
            return message

        async def tracking_receive() -> Message:
            return note(await receive())

        async def draining_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                drained = 0
                while not finished and drained <= self.cap_bytes:
                    drained += len(note(await receive()).get("body", b""))
            await send(message)

        await self.app(scope, tracking_receive, draining_send)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The JSON body (None when empty); BodyTooLarge or BodyNotJson otherwise."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BodyNotJson("The request body is not valid JSON.") from None
    if _has_lone_surrogate(value):
        raise BodyNotJson("The request body holds a lone UTF-16 surrogate (\\ud800-\\udfff).")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """JSON may escape half a surrogate pair; such a string cannot be stored or echoed as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None
