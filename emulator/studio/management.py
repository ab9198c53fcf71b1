"""Classic web-service management: list services and endpoints, create endpoints, Update Resource (PATCH)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import ilearner, wire
from ..blobs import read_blob
from ..config import EndpointConfig, WebServiceConfig
from .bes import parse_blob_ref
from .context import StudioContext
from .errors import ServiceError, bad_argument, not_found, unauthorized


def build_router(ctx: StudioContext) -> APIRouter:
    router = APIRouter()

    def require_management_key(
        request: Request, service: WebServiceConfig, endpoint: EndpointConfig | None = None
    ) -> None:
        token = wire.bearer(request)
        allowed: set[str] = set()
        for candidate in [endpoint] if endpoint else ctx.endpoints_of(service):
            allowed |= {candidate.primary_key, candidate.secondary_key}
        if not token or token not in allowed:
            raise unauthorized()

    def endpoint_body(service: WebServiceConfig, endpoint: EndpointConfig) -> dict[str, Any]:
        served = ctx.state.models.get(endpoint.service_id)
        resources = []
        if service.kind == "scoring":
            resources.append(
                {
                    "Name": service.resource_name,
                    "Kind": "TrainedModel",
                    "Location": state_location(endpoint.service_id),
                }
            )
        return {
            "Name": endpoint.name,
            "Description": "",
            "WebServiceId": service.id,
            "WorkspaceId": ctx.config.workspace_id,
            "ApiLocation": f"{ctx.http_base}/workspaces/{ctx.config.workspace_id}/services/{endpoint.service_id}",
            "Version": served.version if served else None,
            "PreventUpdate": endpoint.name == "default",
            "MaxConcurrentCalls": 4,
            "ThrottleLevel": "Low",
            "Resources": resources,
        }

    locations = ctx.state.locations

    def state_location(service_id: str) -> dict[str, Any]:
        return locations.get(service_id, {"BaseLocation": None, "RelativeLocation": None, "SasBlobToken": None})

    @router.get("/workspaces/{ws}/webservices")
    async def list_web_services(ws: str, request: Request) -> Response:
        if ws != ctx.config.workspace_id:
            raise not_found("WorkspaceNotFound", f"Workspace {ws!r} was not found.")
        visible = []
        for service in ctx.config.web_services:
            try:
                require_management_key(request, service)
            except ServiceError:
                continue
            visible.append(
                {
                    "Id": service.id,
                    "Name": service.name,
                    "DefaultEndpointName": "default",
                    "EndpointCount": len(ctx.endpoints_of(service)),
                }
            )
        if not visible:
            raise unauthorized()
        return JSONResponse(visible)

    @router.get("/workspaces/{ws}/webservices/{ws_id}/endpoints")
    async def list_endpoints(ws: str, ws_id: str, request: Request) -> Response:
        service = ctx.web_service(ws, ws_id)
        require_management_key(request, service)
        return JSONResponse([endpoint_body(service, e) for e in ctx.endpoints_of(service)])

    def find_endpoint(service: WebServiceConfig, name: str) -> EndpointConfig:
        for endpoint in ctx.endpoints_of(service):
            if endpoint.name == name:
                return endpoint
        raise not_found("EndpointNotFound", f"Endpoint {name!r} was not found.")

    @router.get("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def get_endpoint(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = ctx.web_service(ws, ws_id)
        endpoint = find_endpoint(service, name)
        require_management_key(request, service)
        await ctx.inject(endpoint.service_id, "endpoint_get")
        return JSONResponse(endpoint_body(service, endpoint))

    @router.put("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def create_endpoint(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = ctx.web_service(ws, ws_id)
        require_management_key(request, service)
        body = await ctx.read_json(request) or {}
        if not isinstance(body, dict):
            raise bad_argument("RequestBodyInvalid", "The body must be a JSON object.")
        if not name.isidentifier() or len(name) > 24:
            raise bad_argument("InvalidEndpointName", "Endpoint names are 1-24 letters, digits or underscores.")
        if any(e.name == name for e in ctx.endpoints_of(service)):
            return JSONResponse(endpoint_body(service, find_endpoint(service, name)))
        endpoint = EndpointConfig(name, uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex)
        ctx.state.extra_endpoints.setdefault(service.id, []).append(endpoint)
        ctx.state.register_endpoint(service, endpoint)
        default = ctx.state.models.get(service.endpoints[0].service_id)
        if default is not None:
            with ctx.state.lock:
                ctx.state.models[endpoint.service_id] = default
        return JSONResponse(endpoint_body(service, endpoint), status_code=201)

    @router.patch("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def update_resource(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = ctx.web_service(ws, ws_id)
        endpoint = find_endpoint(service, name)
        require_management_key(request, service, endpoint)
        await ctx.inject(endpoint.service_id, "endpoint_patch")
        body = await ctx.read_json(request)
        if service.kind != "scoring" or not service.resource_name:
            raise bad_argument("NoUpdatableResources", "This Web Service has no updatable resources.")
        if endpoint.name == "default":
            raise ServiceError(
                "InvalidOperation",
                "DefaultEndpointNotUpdatable",
                "The default endpoint cannot be updated; create a non-default endpoint.",
            )
        if not isinstance(body, dict) or not isinstance(body.get("Resources"), list) or not body["Resources"]:
            raise bad_argument("RequestBodyInvalid", 'Body must be {"Resources": [{"Name", "Location"}]}.')
        resource = body["Resources"][0]
        if not isinstance(resource, dict) or not isinstance(resource.get("Location"), dict):
            raise bad_argument("RequestBodyInvalid", "Resources[0] needs Name and Location.")
        if resource.get("Name") != service.resource_name:
            raise bad_argument(
                "InvalidResourceName",
                f"Resources[0].Name {resource.get('Name')!r} is not an updatable resource of this endpoint.",
            )
        location = resource["Location"]
        ref = parse_blob_ref(location, "Resources[0].Location")
        if ref.extension != ".ilearner":
            raise bad_argument(
                "InvalidBlobExtension",
                f"The blob reference: {ref.relative_location} has an invalid or missing file extension. "
                'Supported file extensions for this output type are: ".ilearner".',
            )
        data = await asyncio.to_thread(read_blob, ref, "Resources[0].Location")
        try:
            ilearner.loads(data)
        except ilearner.ModelFormatError as exc:
            raise bad_argument("InvalidModel", f"The URL for the retraining model is invalid: {exc}") from None
        behaviour = ctx.state.take_update_behaviour(endpoint.service_id)
        if behaviour and behaviour.fail_message:
            raise ServiceError("InternalError", "UpdateWebServiceResourceFailed", behaviour.fail_message, 500)
        if not (behaviour and behaviour.never_succeed):

            def swap() -> None:
                ctx.state.install_model(endpoint.service_id, data)
                locations[endpoint.service_id] = {
                    "BaseLocation": location.get("BaseLocation"),
                    "RelativeLocation": ref.relative_location,
                    "SasBlobToken": None,
                }

            threading.Timer(ctx.config.update_delay_seconds, swap).start()
        ctx.state.count("classic_updates")
        return Response(status_code=200)

    @router.delete("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def delete_endpoint(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = ctx.web_service(ws, ws_id)
        endpoint = find_endpoint(service, name)
        require_management_key(request, service)
        if endpoint.name == "default":
            raise ServiceError(
                "InvalidOperation", "DefaultEndpointNotDeletable", "The default endpoint cannot be deleted."
            )
        ctx.state.extra_endpoints[service.id] = [
            e for e in ctx.state.extra_endpoints.get(service.id, []) if e.name != name
        ]
        return Response(status_code=200)

    return router
