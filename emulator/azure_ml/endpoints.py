"""Online and batch endpoints: PUT/GET/DELETE/PATCH, list, listKeys, regenerateKeys, token.

PUT replaces the whole endpoint: an omitted `traffic` or `mirrorTraffic` becomes `{}`. Creating
answers 201, updating 200; both carry `Azure-AsyncOperation` (also copied into
`properties.properties.AzureAsyncOperationUri`) and move provisioningState Creating/Updating ->
Succeeded. Routing follows the new traffic only once the operation has succeeded. Traffic rules
(400 UserError): integer percentages over existing deployments summing to 100, or to 0 (no live
traffic); `mirrorTraffic` at most 50 in all, to one deployment, which has no live traffic. A
deployment that is still provisioning cannot be given traffic (409); a Failed one cannot (400).
The endpoint location must be the workspace's; its name must be free in the region (online and
batch endpoints share host names). PATCH takes only `tags` and `identity` (200). A mutation of an
endpoint that is not in a terminal provisioningState is 409 Conflict.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .arm import Call, answer, arm_call, check_name, page, read_object, resource_id
from .errors import conflict, not_found, user_error
from .jobs import WS
from .lro import delete_later, provision
from .resources import TERMINAL_PROVISIONING, Audit, Endpoint, Workspace
from .state import AzureMlState
from .validation import choice, obj, opt_obj, required_text, str_map, text

F = TypeVar("F", bound=Callable[..., Any])
AUTH_MODES = ("Key", "AMLToken", "AADToken")
AML_TOKEN_LIFETIME_S = 3600


def segment(batch: bool) -> str:
    return "batchEndpoints" if batch else "onlineEndpoints"


def find_endpoint(ws: Workspace, name: str, batch: bool) -> Endpoint:
    endpoint = ws.endpoints(batch).get(name.lower())
    if endpoint is None:
        raise not_found(f"{'Batch' if batch else 'Online'} endpoint {name} not found in workspace {ws.cfg.name}.")
    return endpoint


def require_idle(endpoint: Endpoint, action: str) -> None:
    if endpoint.state not in TERMINAL_PROVISIONING:
        raise conflict(f"Cannot {action} because endpoint {endpoint.name} is in {endpoint.state} provisioning state.")


def aml_token_audience(ws: Workspace, endpoint: Endpoint) -> str:
    return f"amltoken:{resource_id(ws, segment(endpoint.batch), endpoint.name)}".lower()


def endpoint_body(state: AzureMlState, ws: Workspace, endpoint: Endpoint) -> dict[str, Any]:
    props: dict[str, Any] = {
        "authMode": endpoint.auth_mode,
        "description": endpoint.description,
        "properties": endpoint.user_properties,
        "scoringUri": state.scoring_uri(endpoint),
        "provisioningState": endpoint.state,
        "keys": None,
    }
    if endpoint.batch:
        props["defaults"] = {"deploymentName": endpoint.default_deployment}
    else:
        props |= {
            "swaggerUri": state.scoring_uri(endpoint).rsplit("/", 1)[0] + "/swagger.json",
            "traffic": endpoint.traffic,
            "mirrorTraffic": endpoint.mirror,
            "publicNetworkAccess": "Enabled",
            "compute": None,
        }
    return {
        "id": resource_id(ws, segment(endpoint.batch), endpoint.name),
        "name": endpoint.name,
        "type": f"Microsoft.MachineLearningServices/workspaces/{segment(endpoint.batch)}",
        "location": endpoint.location,
        "tags": endpoint.tags,
        "kind": "Managed",
        "systemData": endpoint.audit.body(),
        "identity": endpoint.identity
        | {"principalId": "00000000-0000-0000-0000-0000000000e1", "tenantId": ws.cfg.tenant},
        "properties": props,
    }


def _weights(raw: Any, where: str, endpoint: Endpoint | None, ws: Workspace) -> dict[str, int]:
    """Percentages keyed by existing deployments (canonical names), each 0..100."""
    if raw is None:
        return {}
    weights = obj(raw, where)
    out: dict[str, int] = {}
    for name, value in weights.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            raise user_error(
                f"{where}.{name} must be an integer percentage from 0 to 100; got {value!r}.", "InvalidTraffic"
            )
        deployment = endpoint.deployment(name) if endpoint else None
        if deployment is None:
            raise user_error(
                f"{where}: deployment {name} not found in endpoint {endpoint.name if endpoint else '(new)'}, "
                f"workspace {ws.cfg.name}; set traffic only on deployments that exist.",
                "InvalidTraffic",
            )
        if value > 0 and deployment.state in ("Failed", "Canceled"):
            raise user_error(
                f"{where}: deployment {deployment.name} is in {deployment.state} state and cannot take traffic.",
                "InvalidTraffic",
            )
        if value > 0 and deployment.state not in TERMINAL_PROVISIONING:
            raise conflict(
                f"Cannot set traffic to deployment {deployment.name} because it is in {deployment.state} provisioning state."
            )
        out[deployment.name] = value
    return out


async def tracked_put(
    state: AzureMlState, request: Request, sub: str, rg: str, ws: str, op: str, kind: str, name: str
) -> tuple[Call, dict[str, Any]]:
    """The checks every PUT of a tracked resource (endpoint, deployment) starts with; (call, body)."""
    call = await arm_call(state, request, sub, rg, ws, op)
    check_name(kind, name)
    body = await read_object(state, request)
    location = required_text(body, "location", "")
    if location.replace(" ", "").lower() != call.ws.cfg.location.lower():
        raise user_error(
            f"location {location!r} must be the workspace's location, {call.ws.cfg.location}.", "InvalidLocation"
        )
    return call, body


async def tracked_patch(
    state: AzureMlState, request: Request, sub: str, rg: str, ws: str, op: str, allowed: tuple[str, str], kind: str
) -> tuple[Call, dict[str, Any]]:
    """A PATCH body, which may carry only the two `allowed` fields; (call, body)."""
    call = await arm_call(state, request, sub, rg, ws, op)
    body = await read_object(state, request)
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise user_error(
            f"PATCH takes only {' and '.join(allowed)}; change {', '.join(extra)} with a PUT of the whole {kind}."
        )
    return call, body


def check_traffic(traffic: dict[str, int], mirror: dict[str, int]) -> None:
    total = sum(traffic.values())
    if total not in (0, 100):
        raise user_error(
            f"Traffic values need to sum to 100 (or to 0 when no deployment should get traffic); they sum to {total}.",
            "InvalidTraffic",
        )
    mirrored = {k: v for k, v in mirror.items() if v > 0}
    if sum(mirrored.values()) > 50:
        raise user_error(
            f"Mirror traffic values need to sum to at most 50; they sum to {sum(mirrored.values())}.", "InvalidTraffic"
        )
    if len(mirrored) > 1:
        raise user_error("Mirror traffic can go to one deployment only.", "InvalidTraffic")
    both = [k for k in mirrored if traffic.get(k, 0) > 0]
    if both:
        raise user_error(f"Deployment {both[0]} cannot receive both live and mirrored traffic.", "InvalidTraffic")


def is_batch(request: Request) -> bool:
    return "/batchEndpoints/" in request.scope["path"] + "/"


def on_both(router: APIRouter, method: str, suffix: str) -> Callable[[F], F]:
    """Serve one handler under `onlineEndpoints` and `batchEndpoints`; it tells them apart by `is_batch`."""

    def register(handler: F) -> F:
        for batch in (False, True):
            router.add_api_route(f"{WS}/{segment(batch)}{suffix}", handler, methods=[method])
        return handler

    return register


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    @on_both(router, "PUT", "/{name}")
    async def put_endpoint(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call, body = await tracked_put(state, request, sub, rg, ws, f"{segment(batch)}.write", "Endpoint", name)
        props = obj(body.get("properties"), "properties")
        auth_mode = choice(props, "authMode", "properties", AUTH_MODES, ignore_case=True)
        if auth_mode is None:
            raise user_error("properties.authMode is required.", "MissingRequiredField")
        if batch and auth_mode != "AADToken":
            raise user_error("Batch endpoints support authMode AADToken only.", "InvalidAuthMode")
        tags = str_map(body, "tags", "")
        identity = opt_obj(body, "identity", "") or {"type": "SystemAssigned"}
        description = text(props, "description", "properties", default="") or ""
        user_properties = str_map(props, "properties", "properties")
        defaults = opt_obj(props, "defaults", "properties") if batch else None
        default = text(defaults, "deploymentName", "properties.defaults") if defaults else None
        with state.lock:
            endpoint = call.ws.endpoints(batch).get(name.lower())
            if endpoint is None and state.name_taken(call.ws.cfg.location, name):
                raise user_error(
                    f"Endpoint name {name} is already in use in region {call.ws.cfg.location}.", "NameTaken"
                )
            if endpoint is not None:
                require_idle(endpoint, "update the endpoint")
            traffic = _weights(props.get("traffic"), "properties.traffic", endpoint, call.ws)
            mirror = _weights(props.get("mirrorTraffic"), "properties.mirrorTraffic", endpoint, call.ws)
            check_traffic(traffic, mirror)
            chosen = endpoint.deployment(default) if endpoint is not None and default else None
            if default is not None and chosen is None:
                raise user_error(
                    f"properties.defaults.deploymentName: deployment {default} not found in endpoint {name}.",
                    "NotFound",
                )
            created = endpoint is None
            if endpoint is None:
                endpoint = Endpoint(
                    name,
                    batch,
                    call.ws.cfg.location,
                    tags,
                    identity,
                    auth_mode,
                    description,
                    user_properties,
                    Audit(call.principal),
                )
                call.ws.endpoints(batch)[name.lower()] = endpoint
            else:
                endpoint.tags, endpoint.identity, endpoint.auth_mode = tags, identity, auth_mode
                endpoint.description = description
                endpoint.user_properties = user_properties | endpoint.user_properties
                endpoint.audit.touch(call.principal)
            endpoint.traffic, endpoint.mirror = traffic, mirror
            endpoint.default_deployment = chosen.name if chosen else None
            live = endpoint

            def go_live() -> None:
                with state.lock:
                    live.live_traffic, live.live_mirror = dict(live.traffic), dict(live.mirror)

            op = provision(
                state,
                call.ws,
                endpoint,
                "be" if batch else "oe",
                "Creating" if created else "Updating",
                on_success=go_live,
            )
            headers = state.async_headers(op)
            endpoint.user_properties = endpoint.user_properties | {
                "AzureAsyncOperationUri": headers["Azure-AsyncOperation"]
            }
        return answer(endpoint_body(state, call.ws, endpoint), 201 if created else 200, headers, write=True)

    @on_both(router, "GET", "/{name}")
    async def get_endpoint(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.read")
        return answer(endpoint_body(state, call.ws, find_endpoint(call.ws, name, batch)))

    @on_both(router, "GET", "")
    async def list_endpoints(sub: str, rg: str, ws: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.read")
        items = sorted(call.ws.endpoints(batch).values(), key=lambda e: e.name.lower())
        return answer(page(state, request, [endpoint_body(state, call.ws, e) for e in items]))

    @on_both(router, "DELETE", "/{name}")
    async def delete_endpoint(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.delete")
        with state.lock:
            endpoint = call.ws.endpoints(batch).get(name.lower())
            if endpoint is None:
                return answer(None, 204, write=True)
            require_idle(endpoint, "delete the endpoint")
            for deployment in endpoint.deployments.values():
                deployment.state = "Deleting"
            op = delete_later(
                state,
                call.ws,
                endpoint,
                "be" if batch else "oe",
                lambda: call.ws.endpoints(batch).pop(name.lower(), None),
            )
        return answer(None, 202, state.location_headers(op), write=True)

    @on_both(router, "PATCH", "/{name}")
    async def patch_endpoint(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call, body = await tracked_patch(
            state, request, sub, rg, ws, f"{segment(batch)}.write", ("tags", "identity"), "endpoint"
        )
        tags = str_map(body, "tags", "") if "tags" in body else None
        identity = opt_obj(body, "identity", "")
        with state.lock:
            endpoint = find_endpoint(call.ws, name, batch)
            require_idle(endpoint, "update the endpoint")
            endpoint.tags = tags if tags is not None else endpoint.tags
            endpoint.identity = identity or endpoint.identity
            endpoint.audit.touch(call.principal)
        return answer(endpoint_body(state, call.ws, endpoint), write=True)

    def keyed(call_ws: Workspace, name: str, batch: bool) -> Endpoint:
        endpoint = find_endpoint(call_ws, name, batch)
        if endpoint.auth_mode != "Key":
            raise user_error(
                f"Endpoint {endpoint.name} uses authMode {endpoint.auth_mode}; keys exist only for authMode Key.",
                "InvalidAuthMode",
            )
        return endpoint

    @on_both(router, "POST", "/{name}/listKeys")
    async def list_keys(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.listkeys")
        endpoint = keyed(call.ws, name, batch)
        return answer({"primaryKey": endpoint.keys[0], "secondaryKey": endpoint.keys[1]})

    @on_both(router, "POST", "/{name}/regenerateKeys")
    async def regenerate_keys(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.regenerateKeys")
        body = await read_object(state, request)
        key_type = choice(body, "keyType", "", ("Primary", "Secondary"), ignore_case=True)
        value = text(body, "keyValue", "")
        if key_type is None:
            raise user_error("keyType is required (Primary or Secondary).", "MissingRequiredField")
        endpoint = keyed(call.ws, name, batch)
        op = state.start_operation(call.ws, "rk")

        def swap() -> None:
            fresh = value or secrets.token_urlsafe(24)
            with state.lock:
                endpoint.keys = (fresh, endpoint.keys[1]) if key_type == "Primary" else (endpoint.keys[0], fresh)
            state.finish_operation(op)

        state.scheduler.call_later(state.timings.lro_s, swap)
        return answer(None, 202, state.location_headers(op), write=True)

    @router.post(WS + "/onlineEndpoints/{name}/token")
    async def endpoint_token(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "onlineEndpoints.token")
        endpoint = find_endpoint(call.ws, name, False)
        if endpoint.auth_mode != "AMLToken":
            raise user_error(
                f"Endpoint {endpoint.name} uses authMode {endpoint.auth_mode}; tokens exist only for authMode AMLToken.",
                "InvalidAuthMode",
            )
        now = int(time.time())
        token = state.tokens.issue(
            call.ws.cfg.tenant, call.principal, aml_token_audience(call.ws, endpoint), AML_TOKEN_LIFETIME_S
        )
        return answer(
            {
                "accessToken": token,
                "tokenType": "Bearer",
                "expiryTimeUtc": now + AML_TOKEN_LIFETIME_S,
                "refreshAfterTimeUtc": now + AML_TOKEN_LIFETIME_S // 2,
            }
        )

    return router
