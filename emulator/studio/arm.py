"""Azure Resource Manager `Microsoft.MachineLearning/webServices`: GET, PATCH/PUT (asset swap), listKeys."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import ilearner, wire
from ..blobs import RETRY
from ..security import bearer_claims
from .context import StudioContext
from .errors import ArmError
from .state import ArmService, AsyncOperation

ARM_API_VERSIONS = ("2016-05-01-preview", "2017-01-01")
ARM_AUDIENCE = "https://management.azure.com"


def build_router(ctx: StudioContext) -> APIRouter:
    router = APIRouter()

    def require_arm(request: Request) -> dict[str, Any]:
        version = request.query_params.get("api-version")
        if version not in ARM_API_VERSIONS:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. Supported: {', '.join(ARM_API_VERSIONS)}.",
            )
        return bearer_claims(ctx.tokens, wire.bearer(request), ARM_AUDIENCE)

    def arm_service(sub: str, rg: str, name: str) -> ArmService:
        found = ctx.state.arm.get(name.lower())
        if found is None or found.config.subscription_id != sub or found.config.resource_group.lower() != rg.lower():
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearning/webServices/{name}' under resource group '{rg}' was not found.",
            )
        return found

    def arm_body(svc: ArmService, request: Request) -> dict[str, Any]:
        cfg = svc.config
        rid = (
            f"/subscriptions/{cfg.subscription_id}/resourceGroups/{cfg.resource_group}"
            f"/providers/Microsoft.MachineLearning/webServices/{cfg.name}"
        )
        return {
            "id": rid,
            "name": cfg.name,
            "type": "Microsoft.MachineLearning/webServices",
            "location": svc.location,
            "tags": {},
            "properties": {
                "title": svc.title,
                "description": svc.description,
                "createdOn": svc.created_on,
                "modifiedOn": svc.modified_on or svc.created_on,
                "provisioningState": svc.provisioning_state,
                "readOnly": False,
                "exposeSampleData": False,
                "packageType": "Graph",
                "realtimeConfiguration": {"maxConcurrentCalls": 4},
                "diagnostics": {"level": "None"},
                "storageAccount": {"name": "emulatorstorage"},
                "machineLearningWorkspace": {"id": ctx.config.workspace_id},
                "assets": {
                    "asset1": {
                        "name": cfg.asset_name,
                        "id": "asset1",
                        "type": "Resource",
                        "locationInfo": {"uri": svc.asset_uri},
                    },
                    "asset2": {
                        "name": "Score Model",
                        "id": "asset2",
                        "type": "Module",
                        "locationInfo": {"uri": "aml://module/score-model"},
                    },
                },
                "package": {
                    "nodes": {"node1": {"assetId": "asset1"}, "node2": {"assetId": "asset2"}},
                    "edges": [
                        {
                            "sourceNodeId": "node1",
                            "sourcePortId": "Results dataset",
                            "targetNodeId": "node2",
                            "targetPortId": "Trained model",
                        }
                    ],
                    "graphParameters": {},
                },
            },
        }

    def apply_arm_update(svc: ArmService, body: Any, request: Request) -> dict[str, str]:
        if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content must be a web service object with 'properties'."
            )
        props = body.get("properties") or {}
        assets = props.get("assets", {})
        if not isinstance(assets, dict):
            raise ArmError(400, "InvalidRequestContent", "properties.assets must be an object.")
        for key in ("title", "description"):
            if key in props and not isinstance(props[key], str):
                raise ArmError(400, "InvalidRequestContent", f"properties.{key} must be a string.")
        new_uri, credentials = None, None
        for asset_id, asset in assets.items():
            if asset_id not in ("asset1", "asset2") or not isinstance(asset, dict):
                raise ArmError(
                    400, "InvalidRequestContent", f"properties.assets.{asset_id} is not an asset of this service."
                )
            info = asset.get("locationInfo")
            if asset_id == "asset1" and isinstance(info, dict) and info.get("uri") != svc.asset_uri:
                if not isinstance(info.get("uri"), str) or not info["uri"].startswith(("http://", "https://")):
                    raise ArmError(
                        400,
                        "InvalidRequestContent",
                        "properties.assets.asset1.locationInfo.uri must be an http(s) URL.",
                    )
                if info.get("credentials") is not None and not isinstance(info["credentials"], str):
                    raise ArmError(400, "InvalidRequestContent", "locationInfo.credentials must be a string.")
                new_uri, credentials = info["uri"], info.get("credentials")
        svc.title = props.get("title", svc.title)
        svc.description = props.get("description", svc.description)
        svc.modified_on = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        op = AsyncOperation(uuid.uuid4().hex)
        ctx.state.operations[op.id] = op
        svc.provisioning_state = "Provisioning"
        behaviour = ctx.state.take_update_behaviour(svc.config.name)

        def provision() -> None:
            try:
                if behaviour and behaviour.never_succeed:
                    return
                if behaviour and behaviour.fail_message:
                    raise ValueError(behaviour.fail_message)
                if new_uri is not None:
                    data = _download_uri(new_uri, credentials)
                    served = ctx.state.install_model(f"arm:{svc.config.name}", data)
                    svc.model, svc.asset_uri, svc.asset_credentials = served, new_uri, credentials
                op.status = svc.provisioning_state = "Succeeded"
            except Exception as exc:
                op.status = svc.provisioning_state = "Failed"
                op.error = {"code": "UpdateWebServiceResourceFailed", "message": str(exc)[:300]}
            op.ended = time.time()

        threading.Timer(ctx.config.update_delay_seconds, provision).start()
        ctx.state.count("arm_updates")
        base = str(request.base_url).rstrip("/")
        return {
            "Azure-AsyncOperation": (
                f"{base}/subscriptions/{svc.config.subscription_id}/providers/"
                f"Microsoft.MachineLearning/locations/{svc.location}/operationsStatus/{op.id}"
                f"?api-version={request.query_params.get('api-version')}"
            )
        }

    arm_path = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearning/webServices/{name}"

    @router.get(arm_path)
    async def arm_get(sub: str, rg: str, name: str, request: Request) -> Response:
        require_arm(request)
        await ctx.inject(name, "arm_get")
        return JSONResponse(arm_body(arm_service(sub, rg, name), request))

    @router.api_route(arm_path, methods=["PATCH", "PUT"])
    async def arm_update(sub: str, rg: str, name: str, request: Request) -> Response:
        """PATCH and PUT both apply the given properties (fault ops arm_patch / arm_put)."""
        require_arm(request)
        await ctx.inject(name, f"arm_{request.method.lower()}")
        svc = arm_service(sub, rg, name)
        headers = apply_arm_update(svc, await ctx.read_json(request), request)
        return JSONResponse(arm_body(svc, request), headers=headers)

    @router.get(arm_path + "/listKeys")
    async def arm_list_keys(sub: str, rg: str, name: str, request: Request) -> Response:
        require_arm(request)
        svc = arm_service(sub, rg, name)
        return JSONResponse({"primary": svc.config.primary_key, "secondary": svc.config.secondary_key})

    @router.get("/subscriptions/{sub}/providers/Microsoft.MachineLearning/locations/{loc}/operationsStatus/{op_id}")
    async def arm_operation(sub: str, loc: str, op_id: str, request: Request) -> Response:
        require_arm(request)
        op = ctx.state.operations.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
        body: dict[str, Any] = {
            "id": op.id,
            "name": op.id,
            "status": op.status,
            "provisioningState": op.status,
            "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(op.started)),
            "percentComplete": 1.0 if op.ended else 0.5,
        }
        if op.error:
            body["errorInfo"] = op.error
        return JSONResponse(body)

    return router


def _download_uri(uri: str, credentials: str | None) -> bytes:
    """Fetch an ARM asset's model: `uri` plus, for private blobs, a SAS in `credentials`."""
    from azure.storage.blob import BlobClient

    token = (credentials or "").lstrip("?")
    url = f"{uri}?{token}" if token else uri
    data: bytes = BlobClient.from_blob_url(url, **RETRY).download_blob().readall()
    ilearner.loads(data)
    return data
