"""Fault injection shared by every emulated service: `POST /_emulator/faults`, `DELETE` clears all.

A fault is a JSON object with a `kind`. Kind `call` (the default) makes matching calls fail, stall
or drop the connection; it matches a `target` (a Studio service id or ARM name, an Azure ML
workspace name, `aad`) and an `op` (the operation names each service documents), both exact or
shell-style globs (`*`, `jobs.*`). Each service registers its own kinds (Studio: `job`, `update`;
Azure ML: `aml_job`, `aml_deployment`, `aml_events`). A fault's fields are those of its dataclass;
unknown fields or wrong types are a 400 naming the field.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import typed, wire

T = TypeVar("T")


class DropConnection(Exception):
    """Raised by a fault rule: the server breaks the connection instead of answering."""


class DropMiddleware:
    """Turns DropConnection into a response that promises a body and never sends it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except DropConnection:
            # Promise a body, then end the message: h11 refuses, and uvicorn closes the socket.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def matches(pattern: str, value: str) -> bool:
    """Exact, or a shell-style glob (`*` matches everything)."""
    return pattern == value or fnmatchcase(value, pattern)


@dataclass
class FaultRule:
    """Make matching calls fail, stall or drop. `target` is a service id, ARM name, workspace, 'aad' or '*'."""

    target: str = "*"
    op: str = "*"
    remaining: int | None = 1  # None: unlimited
    probability: float = 1.0
    status: int = 503
    code: str = "ServiceUnavailable"
    detail_code: str = "RequestThrottled"
    message: str = "Request was throttled for this endpoint. The maximum concurrency for the endpoint is 40."
    delay_s: float = 0.0
    drop: bool = False
    fail: bool = True  # False: only delay
    retry_after_s: int | None = None  # sent as Retry-After (a 429 without it gets 1)
    fired: int = 0


class InjectedFault(Exception):
    """A call failed because of a fault rule; each service renders it in its own error shape."""

    def __init__(self, rule: FaultRule) -> None:
        super().__init__(rule.message)
        self.rule = rule

    @property
    def retry_after(self) -> int | None:
        if self.rule.retry_after_s is not None:
            return self.rule.retry_after_s
        return 1 if self.rule.status == 429 else None


@dataclass(frozen=True)
class _Kind:
    factory: type
    items: list[Any]


class FaultRegistry:
    """Call rules plus the kinds each service registers, behind one lock."""

    def __init__(self, count: Callable[[str], None]) -> None:
        self.lock = threading.RLock()
        self.calls: list[FaultRule] = []
        self._count = count
        self._kinds: dict[str, _Kind] = {"call": _Kind(FaultRule, self.calls)}

    def register(self, kind: str, factory: type, items: list[Any]) -> None:
        """Let `POST /_emulator/faults {"kind": kind, ...}` append `factory(**fields)` to `items`."""
        self._kinds[kind] = _Kind(factory, items)

    def add(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise wire.BadRequest("RequestBodyInvalid", "A fault is a JSON object with 'kind'.")
        body = dict(body)
        kind = body.pop("kind", "call")
        found = self._kinds.get(kind) if isinstance(kind, str) else None
        if found is None:
            raise wire.BadRequest("RequestBodyInvalid", f"Unknown fault kind {kind!r}; use {', '.join(self._kinds)}.")
        item = build(found.factory, body)
        with self.lock:
            found.items.append(item)
        return str(kind)

    def clear(self) -> None:
        with self.lock:
            for kind in self._kinds.values():
                kind.items.clear()

    def take_from(self, items: list[T], wanted: Callable[[T], bool]) -> T | None:
        """The first item of a registered kind that has uses left and is `wanted`; uses one up."""
        with self.lock:
            for item in items:
                remaining = getattr(item, "remaining", None)
                if (remaining is None or remaining > 0) and wanted(item):
                    if remaining is not None:
                        item.remaining = remaining - 1  # type: ignore[attr-defined]
                    return item
        return None

    def take(self, target: str, op: str) -> FaultRule | None:
        """The first live call rule for (target, op), used up by one."""
        with self.lock:
            for rule in self.calls:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not (matches(rule.target, target) and matches(rule.op, op)):
                    continue
                if rule.probability < 1.0 and random.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.fired += 1
                self._count("faults_injected")
                return rule
        return None

    async def inject(self, target: str, op: str) -> None:
        """Apply the matching call rule, if any: stall, drop the connection, or raise InjectedFault."""
        rule = self.take(target, op)
        if rule is None:
            return
        if rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule.drop:
            raise DropConnection()
        if rule.fail:
            raise InjectedFault(rule)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"target": f.target, "op": f.op, "remaining": f.remaining, "fired": f.fired} for f in self.calls]


def build(factory: type, body: dict[str, Any]) -> Any:
    """`factory(**body)` after checking every field exists and has its annotated JSON type."""
    try:
        return typed.build(factory, body, "fault")
    except typed.ShapeError as exc:
        raise wire.BadRequest("RequestBodyInvalid", f"Bad fault: {exc}") from None


def build_router(registry: FaultRegistry, limit: int) -> APIRouter:
    router = APIRouter()

    @router.post("/_emulator/faults")
    async def add_fault(request: Request) -> Response:
        kind = registry.add(await wire.read_json(request, limit))
        return JSONResponse({"added": kind}, status_code=201)

    @router.delete("/_emulator/faults")
    async def clear_faults() -> Response:
        registry.clear()
        return Response(status_code=204)

    return router
