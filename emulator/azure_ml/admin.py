"""Azure ML admin routes (seed, Event Grid subscribers, settings) and its parts of the inspection routes.

- `POST /_emulator/azure-ml/workspaces/{ws}/seed` `{"ColumnNames", "Values", "model", "LabelColumn"?}`
  trains on the table, writes the model folder to the default datastore at `seed/{model}/1/`,
  registers it as version 1 of `model` (tag source=seed), and makes deployment `blue` serve it on
  the workspace's first online endpoint (traffic {"blue": 100}) and first batch endpoint (its
  default), Succeeded at once. Answers `{"model", "version": "1", "deployment": "blue",
  "modelVersion": <content id>}`. Calling it again retrains, rewrites the same files, re-creates
  `blue` and resets traffic to {"blue": 100} and mirror traffic to {} (other deployments stay, at
  0%). 409 if an endpoint is busy, or if version 1 was registered elsewhere by a client.
- `POST /_emulator/azure-ml/event-subscriptions` `{"workspace", "url", "eventTypes"?}` registers a
  webhook after the validation handshake (201 `{"id", ...}`; 400 if the handshake fails);
  `GET` lists them, `DELETE …/{id}` removes one. Listings show a URL without its query (the key).
- `GET/POST/DELETE /_emulator/azure-ml/settings`: read, change (`{"timings": {...}, "routingSeed":
  n|null, "pageSize": n}`, any subset) or restore the durations, routing seed and page size.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import ilearner, typed, wire
from . import trainer
from .arm import check_name, resource_id
from .config import Timings
from .deployments import parse_batch, parse_online
from .endpoints import require_idle
from .errors import conflict, not_found, user_error
from .events import EVENT_TYPES, HandshakeFailed
from .models import find_version, register
from .resources import Audit, Deployment, Endpoint, ServedModel, Workspace
from .state import AzureMlState
from .storage import Location

SEED_DEPLOYMENT = "blue"
PREFIX = "/_emulator/azure-ml"


def seed_workspace(state: AzureMlState, ws: Workspace, model: str, trained: trainer.Trained) -> None:
    store = ws.cfg.default_datastore
    root = state.storage.datastore(ws.cfg, store.name)
    path = f"seed/{model}/1/"
    uri = (
        f"azureml://subscriptions/{ws.cfg.subscription_id}/resourcegroups/{ws.cfg.resource_group}/workspaces/{ws.cfg.name}"
        f"/datastores/{store.name}/paths/{path}"
    )
    existing = find_version(ws, model, "1")
    if existing is not None and existing.props["modelUri"] != uri:
        raise conflict(f"Version 1 of model {model} was registered by a client; the seed will not replace it.")
    online = next(iter(ws.online.values()), None)
    batch = next(iter(ws.batch.values()), None)
    for endpoint in (online, batch):
        if endpoint is not None:
            require_idle(endpoint, "seed it")
    trainer.write_model_folder(
        state.storage, Location(root.connection_string, root.container, path), trained, f"seed-{model}"
    )
    props = {
        "modelUri": uri,
        "modelType": "custom_model",
        "description": "Seeded by the emulator",
        "jobName": None,
        "tags": {"source": "seed"},
        "properties": {},
        "stage": "Development",
        "isArchived": False,
        "isAnonymous": False,
        "flavors": {},
    }
    register(state, ws, model, "1", props, "emulator-seed")
    model_id = resource_id(ws, "models", model, "versions", "1")
    served = ServedModel(model_id, trained.content_id, trained.model)
    with state.lock:
        if online is not None:
            props_online, _ = parse_online(ws, {"endpointComputeType": "Managed", "model": model_id})
            _install(
                online,
                Deployment(
                    SEED_DEPLOYMENT,
                    online.name,
                    False,
                    ws.cfg.location,
                    {},
                    {"name": "Default", "capacity": 1},
                    props_online,
                    Audit("emulator-seed"),
                    model_id,
                    state="Succeeded",
                    served=served,
                ),
            )
            online.traffic = online.live_traffic = {SEED_DEPLOYMENT: 100}
            online.mirror, online.live_mirror = {}, {}
        if batch is not None:
            compute = resource_id(ws, "computes", ws.cfg.compute)
            props_batch, _ = parse_batch(
                ws, {"model": {"referenceType": "Id", "assetId": model_id}, "compute": compute}
            )
            _install(
                batch,
                Deployment(
                    SEED_DEPLOYMENT,
                    batch.name,
                    True,
                    ws.cfg.location,
                    {},
                    None,
                    props_batch,
                    Audit("emulator-seed"),
                    model_id,
                    state="Succeeded",
                    served=served,
                ),
            )
            batch.default_deployment = SEED_DEPLOYMENT
    state.count("seeds")


def _install(endpoint: Endpoint, deployment: Deployment) -> None:
    endpoint.deployments[deployment.name.lower()] = deployment
    deployment.logs.append(
        f"InferenceServer: model {deployment.served.content_id if deployment.served else '?'} loaded (seeded)"
    )


def describe(state: AzureMlState) -> dict[str, Any]:
    """The `azureMl` entry of `GET /_emulator/services`."""
    workspaces = []
    for ws in state.workspaces.values():
        cfg = ws.cfg
        stores = []
        for store in cfg.datastores:
            account = state.storage.account_for(store.account)
            stores.append(
                {
                    "name": store.name,
                    "default": store is cfg.default_datastore,
                    "accountUrl": account.url if account else None,
                    "container": store.container,
                }
            )
        workspaces.append(
            {
                "name": cfg.name,
                "subscriptionId": cfg.subscription_id,
                "resourceGroup": cfg.resource_group,
                "location": cfg.location,
                "resourceId": cfg.resource_id,
                "managementEndpoint": state.base,
                "apiVersion": "2024-04-01",
                "tenant": cfg.tenant,
                "servicePrincipalId": cfg.client_id,
                "servicePrincipalKey": cfg.client_secret,
                "authorityHost": state.base,
                "computeId": resource_id(ws, "computes", cfg.compute),
                "environmentId": resource_id(ws, "environments", cfg.environment, "versions", cfg.environment_version),
                "mlFlowTrackingUri": state.mlflow_uri(ws),
                "datastores": stores,
                "onlineEndpoints": [
                    {"name": e.name, "scoringUri": state.scoring_uri(e), "authMode": e.auth_mode}
                    for e in ws.online.values()
                ],
                "batchEndpoints": [{"name": e.name, "scoringUri": state.scoring_uri(e)} for e in ws.batch.values()],
            }
        )
    return {"workspaces": workspaces}


def snapshot(state: AzureMlState) -> dict[str, Any]:
    """The `azureMl` entry of `GET /_emulator/state`."""

    def deployments(endpoint: Endpoint) -> list[dict[str, Any]]:
        return [
            {
                "name": d.name,
                "provisioningState": d.state,
                "model": d.model_id,
                "modelVersion": d.served.content_id if d.served else None,
                "servedModel": d.served.model_id if d.served else None,
                "requests": d.requests,
                "errors": d.errors,
                "mirrored": d.mirrored,
            }
            for d in endpoint.deployments.values()
        ]

    with state.lock:
        workspaces = [
            {
                "name": ws.cfg.name,
                "jobs": [
                    {
                        "name": j.name,
                        "jobType": j.spec["jobType"],
                        "status": j.status,
                        "error": j.error,
                        "outputs": {k: v.get("uri") for k, v in j.outputs.items()},
                        "metrics": j.metrics,
                        "startedAt": j.started_at,
                        "endedAt": j.ended_at,
                    }
                    for j in ws.jobs.values()
                ],
                "models": [
                    {
                        "name": mv.name,
                        "version": mv.version,
                        "modelUri": mv.props["modelUri"],
                        "jobName": mv.props["jobName"],
                    }
                    for versions in ws.models.values()
                    for mv in versions.values()
                ],
                "onlineEndpoints": [
                    {
                        "name": e.name,
                        "provisioningState": e.state,
                        "traffic": e.traffic,
                        "liveTraffic": e.live_traffic,
                        "mirrorTraffic": e.mirror,
                        "liveMirrorTraffic": e.live_mirror,
                        "deployments": deployments(e),
                    }
                    for e in ws.online.values()
                ],
                "batchEndpoints": [
                    {
                        "name": e.name,
                        "provisioningState": e.state,
                        "defaultDeployment": e.default_deployment,
                        "deployments": deployments(e),
                    }
                    for e in ws.batch.values()
                ],
                "eventSubscriptions": [
                    {"id": s.id, "url": s.shown_url, "validated": s.validated, "eventTypes": s.event_types}
                    for s in state.events.subscriptions.values()
                    if s.workspace == ws.cfg.name
                ],
            }
            for ws in state.workspaces.values()
        ]
        return {"workspaces": workspaces, "counters": dict(state.counters), "settings": state.settings_body()}


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    def workspace(name: str) -> Workspace:
        found = state.workspace_named(name)
        if found is None:
            raise not_found(f"Workspace {name} is not configured in this emulator.")
        return found

    @router.post(PREFIX + "/workspaces/{ws}/seed")
    async def seed(ws: str, request: Request) -> Response:
        found = workspace(ws)
        body = await wire.read_json(request, state.max_body_bytes)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("ColumnNames"), list)
            or not isinstance(body.get("Values"), list)
            or not all(isinstance(c, str) for c in body["ColumnNames"])
            or not isinstance(body.get("model"), str)
        ):
            raise user_error('Body must be {"ColumnNames": [...], "Values": [[...]], "model": "<name>"}.')
        check_name("Model", body["model"])
        label = body.get("LabelColumn")
        if label is not None and not isinstance(label, str):
            raise user_error("LabelColumn must be a string.")
        try:
            trained = await asyncio.to_thread(
                trainer.train_on_table, body["ColumnNames"], body["Values"], label, f"seed-{body['model']}"
            )
        except ilearner.DatasetError as exc:
            raise user_error(f"The seed table cannot be trained on: {exc}", "InvalidDataset") from None
        await asyncio.to_thread(seed_workspace, state, found, body["model"], trained)
        return JSONResponse(
            {"model": body["model"], "version": "1", "deployment": SEED_DEPLOYMENT, "modelVersion": trained.content_id}
        )

    @router.post(PREFIX + "/event-subscriptions")
    async def subscribe(request: Request) -> Response:
        body = await wire.read_json(request, state.max_body_bytes)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("workspace"), str)
            or not isinstance(body.get("url"), str)
        ):
            raise user_error('Body must be {"workspace": "<name>", "url": "http(s)://...", "eventTypes": [...]}.')
        found = workspace(body["workspace"])
        if not body["url"].lower().startswith(("http://", "https://")):
            raise user_error("url must be an http(s) URL.")
        types = body.get("eventTypes")
        if types is not None and (not isinstance(types, list) or not all(t in EVENT_TYPES for t in types)):
            raise user_error(f"eventTypes must list some of {', '.join(EVENT_TYPES)}.")
        try:
            sub = await asyncio.to_thread(
                state.events.subscribe,
                found.cfg.name,
                found.cfg.resource_id,
                body["url"],
                tuple(types) if types is not None else None,
                True,
            )
        except HandshakeFailed as exc:
            raise user_error(f"Webhook validation handshake failed: {exc}.", "WebhookValidationFailed") from None
        return JSONResponse(
            {
                "id": sub.id,
                "workspace": sub.workspace,
                "url": sub.shown_url,
                "eventTypes": list(types) if types else None,
                "validated": sub.validated,
            },
            status_code=201,
        )

    @router.get(PREFIX + "/event-subscriptions")
    async def subscriptions() -> Response:
        return JSONResponse(
            [
                {"id": s.id, "workspace": s.workspace, "url": s.shown_url, "validated": s.validated}
                for s in state.events.subscriptions.values()
            ]
        )

    @router.delete(PREFIX + "/event-subscriptions/{sub_id}")
    async def unsubscribe(sub_id: str) -> Response:
        if not state.events.unsubscribe(sub_id):
            raise not_found(f"Event subscription {sub_id} not found.")
        return Response(status_code=204)

    @router.get(PREFIX + "/settings")
    async def settings() -> Response:
        return JSONResponse(state.settings_body())

    @router.post(PREFIX + "/settings")
    async def change_settings(request: Request) -> Response:
        body = await wire.read_json(request, state.max_body_bytes)
        if not isinstance(body, dict) or set(body) - {"timings", "routingSeed", "pageSize"}:
            raise user_error('Body must be an object with any of "timings", "routingSeed", "pageSize".')
        timings = body.get("timings") or {}
        if not isinstance(timings, dict):
            raise user_error("timings must be an object of durations.")
        try:
            new_timings = typed.build(Timings, asdict(state.timings) | timings, "timings")
        except typed.ShapeError as exc:
            raise user_error(str(exc)) from None
        seed = body.get("routingSeed", "keep")
        if seed != "keep" and seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise user_error("routingSeed must be an integer or null.")
        page_size = body.get("pageSize")
        if page_size is not None and (not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1):
            raise user_error("pageSize must be a positive integer.")
        state.update_settings(new_timings, seed, page_size)
        return JSONResponse(state.settings_body())

    @router.delete(PREFIX + "/settings")
    async def reset_settings() -> Response:
        state.reset_settings()
        return JSONResponse(state.settings_body())

    return router
