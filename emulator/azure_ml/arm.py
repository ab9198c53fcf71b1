"""What ARM does before the Azure ML provider sees a request, and the envelope of its answers.

- Path literals (`resourceGroups`, `onlineEndpoints`, `listkeys`, ...) match without case, as ARM
  matches them; names keep their case (`ArmPathCase` rewrites only the literal segments).
- `api-version` is required and must be one the service accepts for the resource type addressed
  (`api_versions`, read from the REST specs): stable and preview versions alike.
- The bearer token must verify (signature, expiry) with audience https://management.azure.com or the
  emulator's own management endpoint (its TLS base): a client configured for a custom cloud whose
  `resource_manager` is the emulator asks for `{resource_manager}/.default`, as a sovereign cloud's
  ARM accepts its own endpoint as the audience. Any other audience is 401 InvalidAuthenticationToken.
  The token must come from the workspace's tenant (else 401 InvalidAuthenticationTokenTenant) and
  from a principal with a role on the workspace, its own service principal (else 403 AuthorizationFailed).
- Unknown subscription, resource group or workspace: 404 SubscriptionNotFound,
  ResourceGroupNotFound or ResourceNotFound, in ARM's own shape.
- Answers carry `x-ms-request-id` and `x-ms-ratelimit-remaining-subscription-reads`/`-writes`
  (this process's calls this hour against ARM's 12000/1200 budget; nothing is throttled unless a
  fault says so).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import wire
from ..security import bearer_claims
from .api_versions import resource_type, versions_for
from .errors import arm_error, user_error
from .resources import Workspace
from .state import AzureMlState

ARM_AUDIENCE = "https://management.azure.com"
ML_AUDIENCE = "https://ml.azure.com"
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$")
NAMESPACE = "Microsoft.MachineLearningServices"
_LITERALS = {
    w.lower(): w
    for w in (
        "subscriptions",
        "resourceGroups",
        "providers",
        NAMESPACE,
        "workspaces",
        "jobs",
        "cancel",
        "models",
        "versions",
        "onlineEndpoints",
        "batchEndpoints",
        "deployments",
        "listKeys",
        "regenerateKeys",
        "token",
        "getLogs",
        "computes",
        "environments",
        "datastores",
        "codes",
        "locations",
        "mfeOperationsStatus",
        "mfeOperationResults",
    )
}


class ArmPathCase:
    """Spells the literal segments of Microsoft.MachineLearningServices paths canonically."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"][:15].lower() == "/subscriptions/":
            parts = scope["path"].split("/")[1:]
            lowered = [p.lower() for p in parts]
            if "providers" in lowered and NAMESPACE.lower() in lowered:
                # Literals sit at even positions (type/name pairs), plus the namespace after "providers".
                fixed = [
                    _LITERALS.get(p.lower(), p) if i % 2 == 0 or lowered[i - 1] == "providers" else p
                    for i, p in enumerate(parts)
                ]
                scope = dict(scope, path="/" + "/".join(fixed))
        await self.app(scope, receive, send)


def check_name(kind: str, name: str) -> None:
    if not NAME.match(name):
        raise user_error(f"{kind} name {name!r} is invalid: it must match {NAME.pattern}.", "InvalidName")


@dataclass(frozen=True)
class Call:
    """An authenticated, authorised ARM request on one workspace."""

    ws: Workspace
    principal: str  # the caller's appid
    request: Request


def check_api_version(request: Request) -> str:
    version = request.query_params.get("api-version")
    if not version:
        raise arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    kind = resource_type(request.url.path)
    supported = versions_for(kind)
    if version not in supported:
        raise arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The resource type '{_type_name(kind)}' does not support api-version '{version}'. "
            f"The supported api-versions are '{', '.join(supported)}'.",
        )
    return version


def _type_name(kind: str) -> str:
    return f"{NAMESPACE}/{'workspaces/' + kind if kind not in ('', 'locations') else kind or 'workspaces'}"


def authenticate(state: AzureMlState, request: Request, audience: str) -> dict[str, Any]:
    """The bearer token's claims for `audience`; for ARM also the emulator's own management endpoint."""
    audiences = (audience, state.base) if audience == ARM_AUDIENCE else (audience,)
    return bearer_claims(state.tokens, wire.bearer(request), *audiences)


def authorize(ws: Workspace, claims: dict[str, Any], action: str) -> str:
    if str(claims.get("tid", "")).lower() != ws.cfg.tenant.lower():
        raise arm_error(
            401,
            "InvalidAuthenticationTokenTenant",
            f"The access token is from the wrong issuer. It must match the tenant '{ws.cfg.tenant}' of this subscription.",
        )
    principal = str(claims.get("appid", ""))
    if principal != ws.cfg.client_id:
        raise arm_error(
            403,
            "AuthorizationFailed",
            f"The client '{principal}' does not have authorization to perform action '{action}' "
            f"over scope '{ws.cfg.resource_id}' or the scope is invalid.",
        )
    return principal


def find_workspace(state: AzureMlState, sub: str, rg: str, name: str) -> Workspace:
    candidates = [w for w in state.workspaces.values() if w.cfg.subscription_id.lower() == sub.lower()]
    if not candidates:
        raise arm_error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
    candidates = [w for w in candidates if w.cfg.resource_group.lower() == rg.lower()]
    if not candidates:
        raise arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    ws = next((w for w in candidates if w.cfg.name.lower() == name.lower()), None)
    if ws is None:
        raise arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{NAMESPACE}/workspaces/{name}' under resource group '{rg}' was not found.",
        )
    return ws


async def arm_call(state: AzureMlState, request: Request, sub: str, rg: str, ws_name: str, op: str) -> Call:
    """Everything ARM checks, then the fault rules for (workspace, op)."""
    check_api_version(request)
    claims = authenticate(state, request, ARM_AUDIENCE)
    ws = find_workspace(state, sub, rg, ws_name)
    request.state.aml_location = ws.cfg.location
    principal = authorize(ws, claims, f"{NAMESPACE}/workspaces/{op.replace('.', '/')}")
    await state.faults.inject(ws.cfg.name, op)
    state.count("arm_calls")
    return Call(ws, principal, request)


async def read_object(state: AzureMlState, request: Request) -> dict[str, Any]:
    body = await wire.read_json(request, state.max_body_bytes)
    if not isinstance(body, dict):
        raise arm_error(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


_budget_lock = threading.Lock()
_budget_used: dict[tuple[str, int], int] = {}


def _remaining(kind: str) -> int:
    """ARM's hourly budget (12000 reads, 1200 writes) less this hour's calls; never enforced."""
    hour = int(time.time() // 3600)
    with _budget_lock:
        used = _budget_used[(kind, hour)] = _budget_used.get((kind, hour), 0) + 1
    return max(0, (1200 if kind == "writes" else 12000) - used)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None, *, write: bool = False) -> Response:
    """A JSON answer with ARM's request id and rate-limit headers (a body of None: no content)."""
    kind = "writes" if write else "reads"
    extra = {
        "x-ms-request-id": str(uuid.uuid4()),
        f"x-ms-ratelimit-remaining-subscription-{kind}": str(_remaining(kind)),
    }
    extra |= headers or {}
    if body is None:
        return Response(status_code=status, headers=extra)
    return JSONResponse(body, status_code=status, headers=extra)


def page(state: AzureMlState, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"value", "nextLink"?}` for the `$skip`/`$top` window of items (already filtered and ordered)."""
    skip = int_query(request, "$skip", 0)
    top = int_query(request, "$top", None)
    if top is not None:
        items = items[:top]
    size = state.page_size
    body: dict[str, Any] = {"value": items[skip : skip + size]}
    if skip + size < len(items):
        query = {k: v for k, v in request.query_params.items() if k != "$skip"} | {"$skip": str(skip + size)}
        body["nextLink"] = f"{state.base}{request.url.path}?{urlencode(query, safe='$')}"
    return body


def int_query(request: Request, key: str, default: int | None) -> Any:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or (key == "$top" and int(raw) == 0):
        raise user_error(
            f"Query parameter {key} must be a {'positive' if key == '$top' else 'non-negative'} integer, got {raw!r}."
        )
    return int(raw)


def resource_id(ws: Workspace, *parts: str) -> str:
    return ws.cfg.resource_id + "".join(f"/{p}" for p in parts)
