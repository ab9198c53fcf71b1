"""Read-only workspace resources: the workspace, its compute, environment version and datastores.

They exist so clients can check the ids they send; the emulator neither creates nor changes them.
The workspace's `mlFlowTrackingUri` is `azureml://{emulator TLS host}/mlflow/v1.0{workspace id}`,
its `discoveryUrl` `{TLS base}/discovery`.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .arm import answer, arm_call, page, resource_id
from .errors import not_found
from .jobs import WS
from .resources import Workspace
from .state import AzureMlState

TYPE = "Microsoft.MachineLearningServices/workspaces"


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    def workspace_body(ws: Workspace) -> dict[str, Any]:
        account = state.storage.account_for(ws.cfg.default_datastore.account)
        storage_id = (
            (
                f"/subscriptions/{ws.cfg.subscription_id}/resourceGroups/{ws.cfg.resource_group}/providers/"
                f"Microsoft.Storage/storageAccounts/{account.name}"
            )
            if account
            else None
        )
        return {
            "id": ws.cfg.resource_id,
            "name": ws.cfg.name,
            "type": TYPE,
            "location": ws.cfg.location,
            "tags": {},
            "identity": {"type": "SystemAssigned", "tenantId": ws.cfg.tenant},
            "sku": {"name": "Basic", "tier": "Basic"},
            "kind": "Default",
            "properties": {
                "friendlyName": ws.cfg.name,
                "provisioningState": "Succeeded",
                "storageAccount": storage_id,
                "mlFlowTrackingUri": state.mlflow_uri(ws),
                "discoveryUrl": f"{state.base}/discovery",
                "workspaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, ws.cfg.resource_id.lower())),
                "publicNetworkAccess": "Enabled",
            },
        }

    @router.get(WS)
    async def get_workspace(sub: str, rg: str, ws: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "read")
        return answer(workspace_body(call.ws))

    @router.get(WS + "/computes/{name}")
    async def get_compute(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "computes.read")
        if name.lower() != call.ws.cfg.compute.lower():
            raise not_found(f"Compute {name} not found in workspace {call.ws.cfg.name}.")
        return answer(
            {
                "id": resource_id(call.ws, "computes", call.ws.cfg.compute),
                "name": call.ws.cfg.compute,
                "type": f"{TYPE}/computes",
                "location": call.ws.cfg.location,
                "properties": {
                    "computeType": "AmlCompute",
                    "provisioningState": "Succeeded",
                    "properties": {
                        "vmSize": "STANDARD_DS3_V2",
                        "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4},
                    },
                },
            }
        )

    @router.get(WS + "/environments/{name}/versions/{version}")
    async def get_environment(sub: str, rg: str, ws: str, name: str, version: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "environments.read")
        cfg = call.ws.cfg
        if (name, version) != (cfg.environment, cfg.environment_version):
            raise not_found(f"Environment {name}:{version} not found in workspace {cfg.name}.")
        return answer(
            {
                "id": resource_id(call.ws, "environments", name, "versions", version),
                "name": version,
                "type": f"{TYPE}/environments/versions",
                "properties": {
                    "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04",
                    "osType": "Linux",
                    "provisioningState": "Succeeded",
                    "description": "scikit-learn (emulated)",
                },
            }
        )

    def datastore_body(ws: Workspace, name: str) -> dict[str, Any]:
        store = next(d for d in ws.cfg.datastores if d.name == name)
        account = state.storage.account_for(store.account)
        return {
            "id": resource_id(ws, "datastores", store.name),
            "name": store.name,
            "type": f"{TYPE}/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "isDefault": store.default,
                "containerName": store.container,
                "accountName": account.name if account else None,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "None"},
            },
        }

    @router.get(WS + "/datastores")
    async def list_datastores(sub: str, rg: str, ws: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "datastores.read")
        return answer(page(state, request, [datastore_body(call.ws, d.name) for d in call.ws.cfg.datastores]))

    @router.get(WS + "/datastores/{name}")
    async def get_datastore(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "datastores.read")
        if all(d.name != name for d in call.ws.cfg.datastores):
            raise not_found(f"Datastore {name} not found in workspace {call.ws.cfg.name}.")
        return answer(datastore_body(call.ws, name))

    return router
