"""Studio's admin routes and listing: seeding an initial model, and its part of `/_emulator/services`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import ilearner
from ..config import EmulatorConfig
from .context import StudioContext
from .errors import bad_argument, not_found
from .state import EmulatorState


def build_router(ctx: StudioContext) -> APIRouter:
    router = APIRouter()

    @router.post("/_emulator/web-services/{ws_id}/seed")
    async def seed_model(ws_id: str, request: Request) -> Response:
        """Publish an initial model to every endpoint of a scoring service (what Studio's UI did)."""
        body = await ctx.read_json(request)
        service = next((s for s in ctx.config.web_services if s.id == ws_id and s.kind == "scoring"), None)
        if service is None:
            raise not_found("WebServiceNotFound", f"Scoring web service {ws_id!r} was not found.")
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("ColumnNames"), list)
            or not isinstance(body.get("Values"), list)
        ):
            raise bad_argument("RequestBodyInvalid", 'Body must be {"ColumnNames": [...], "Values": [[...]]}.')
        try:
            dataset = ilearner.table_to_dataset(body["ColumnNames"], body["Values"], body.get("LabelColumn"))
            model, _ = await asyncio.to_thread(ilearner.train, dataset, "seed", {})
        except ilearner.DatasetError as exc:
            raise bad_argument("InvalidDataset", str(exc)) from None
        data = ilearner.dumps(model)
        for endpoint in ctx.endpoints_of(service):  # the resource is the seed's now, from no location
            ctx.state.install_model(endpoint.service_id, data)
            ctx.state.locations.pop(endpoint.service_id, None)
        for arm in ctx.state.arm.values():  # the asset is the seed's now: a later PUT of any location applies
            arm.model = ctx.state.install_model(f"arm:{arm.config.name}", data)
            arm.asset_uri, arm.asset_credentials = "", None
        return JSONResponse({"model_version": ilearner.version_of(data)})

    return router


def describe_services(
    config: EmulatorConfig, state: EmulatorState, http_base: str, https_base: str, ca_file: str
) -> dict[str, Any]:
    ws = config.workspace_id
    services = []
    for service in config.web_services:
        endpoints = []
        for endpoint in [*service.endpoints, *state.extra_endpoints.get(service.id, [])]:
            api = f"{http_base}/workspaces/{ws}/services/{endpoint.service_id}"
            endpoints.append(
                {
                    "name": endpoint.name,
                    "service_id": endpoint.service_id,
                    "mlEndpoint": f"{api}/jobs",
                    "rrsEndpoint": f"{api}/execute?api-version=2.0&details=true",
                    "apiKey": endpoint.primary_key,
                    "updateResourceEndpoint": f"{http_base}/workspaces/{ws}/webservices/{service.id}/endpoints/{endpoint.name}",
                    "updatable": service.kind == "scoring" and endpoint.name != "default",
                }
            )
        default = endpoints[0]
        services.append(
            {
                "id": service.id,
                "name": service.name,
                "kind": service.kind,
                "mlEndpoint": default["mlEndpoint"],
                "apiKey": default["apiKey"],
                "inputs": list(service.input_names),
                "outputs": dict(service.outputs),
                "resourceName": service.resource_name or None,
                "endpoints": endpoints,
            }
        )
    arm = [
        {
            "name": a.name,
            "updateResourceEndpoint": (
                f"{https_base}/subscriptions/{a.subscription_id}/resourceGroups/{a.resource_group}"
                f"/providers/Microsoft.MachineLearning/webServices/{a.name}?api-version=2016-05-01-preview"
            ),
            "assetName": a.asset_name,
        }
        for a in config.arm_web_services
    ]
    principals = [
        {"tenant": p.tenant, "servicePrincipalId": p.client_id, "servicePrincipalKey": p.client_secret}
        for p in config.service_principals
    ]
    return {
        "workspaceId": ws,
        "httpBase": http_base,
        "httpsBase": https_base,
        "authorityHost": https_base,
        "caFile": ca_file,
        "webServices": services,
        "armWebServices": arm,
        "servicePrincipals": principals,
    }
