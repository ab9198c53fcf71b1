"""The model registry: `PUT/GET/DELETE …/models/{name}/versions/{version}`, lists, and the container.

PUT of a new version answers 201 (and emits ModelRegistered); of a known one 200, applying
description, stage, isArchived, flavors and tags (replaced) while properties are add-only (values
already set are kept). A different `modelUri` is 400 "Asset paths cannot be updated.". The
version's bytes are not checked at registration; a deployment of a version whose files are
missing fails provisioning. `GET …/models/{name}` shows latestVersion (most recently created) and
nextVersion (highest numeric version + 1). Lists take `$orderBy=createdtime desc|asc` (default
desc), `$top`, `$skip` (from nextLink), `tags=t1,t2=v`, `listViewType`, `version`, `stage`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .arm import answer, arm_call, check_name, page, read_object, resource_id
from .errors import not_found, user_error
from .jobs import WS, check_uri
from .resources import Audit, ModelVersion, Workspace
from .state import AzureMlState
from .validation import flag, obj, opt_obj, required_text, str_map, text

VERSION = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,254}$")
MODEL_TYPE = "Microsoft.MachineLearningServices/workspaces/models"


def parse_version(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    props = obj(body.get("properties"), "properties")
    uri = required_text(props, "modelUri", "properties")
    check_uri(ws, uri, "properties.modelUri")
    job_name = text(props, "jobName", "properties")
    if job_name is not None and job_name not in ws.jobs:
        raise user_error(f"properties.jobName: job {job_name!r} was not found in workspace {ws.cfg.name}.", "NotFound")
    return {
        "modelUri": uri,
        "modelType": text(props, "modelType", "properties", default="custom_model"),
        "description": text(props, "description", "properties"),
        "jobName": job_name,
        "tags": str_map(props, "tags", "properties"),
        "properties": str_map(props, "properties", "properties"),
        "stage": text(props, "stage", "properties", default="Development"),
        "isArchived": flag(props, "isArchived", "properties"),
        "isAnonymous": flag(props, "isAnonymous", "properties"),
        "flavors": opt_obj(props, "flavors", "properties") or {},
    }


def version_body(ws: Workspace, mv: ModelVersion) -> dict[str, Any]:
    return {
        "id": resource_id(ws, "models", mv.name, "versions", mv.version),
        "name": mv.version,
        "type": f"{MODEL_TYPE}/versions",
        "systemData": mv.audit.body(),
        "properties": mv.props | {"provisioningState": "Succeeded"},
    }


def next_version(versions: dict[str, ModelVersion]) -> str:
    numbers = [int(v) for v in versions if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def find_version(ws: Workspace, name: str, version: str) -> ModelVersion | None:
    return ws.models.get(name, {}).get(version)


def register(
    state: AzureMlState, ws: Workspace, name: str, version: str, props: dict[str, Any], principal: str
) -> tuple[ModelVersion, bool]:
    """Create or update a version; (version, created). Raises 400 on a changed modelUri."""
    with state.lock:
        existing = find_version(ws, name, version)
        if existing is None:
            mv = ModelVersion(name, version, props, Audit(principal), next(state.model_order))
            ws.models.setdefault(name, {})[version] = mv
        elif existing.props["modelUri"] != props["modelUri"]:
            raise user_error("Asset paths cannot be updated.", "Immutable", parameters={"property": "modelUri"})
        else:
            kept = existing.props["properties"]
            existing.props = props | {"properties": props["properties"] | kept, "jobName": existing.props["jobName"]}
            existing.audit.touch(principal)
            return existing, False
    state.count("models_registered")
    state.publish(
        ws,
        "ModelRegistered",
        f"models/{name}:{version}",
        {
            "ModelName": name,
            "ModelVersion": version,
            "ModelTags": dict(props["tags"]),
            "ModelProperties": dict(props["properties"]),
        },
    )
    return mv, True


def _matches_tags(mv: ModelVersion, spec: str) -> bool:
    for term in filter(None, (t.strip() for t in spec.split(","))):
        key, has_value, value = term.partition("=")
        if key not in mv.props["tags"] or (has_value and mv.props["tags"][key] != value):
            return False
    return True


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    @router.put(WS + "/models/{name}/versions/{version}")
    async def put_version(sub: str, rg: str, ws: str, name: str, version: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "models.versions.write")
        check_name("Model", name)
        if not VERSION.match(version):
            raise user_error(f"Model version {version!r} is invalid: it must match {VERSION.pattern}.", "InvalidName")
        props = parse_version(call.ws, await read_object(state, request))
        mv, created = register(state, call.ws, name, version, props, call.principal)
        return answer(version_body(call.ws, mv), 201 if created else 200, write=True)

    @router.get(WS + "/models/{name}/versions/{version}")
    async def get_version(sub: str, rg: str, ws: str, name: str, version: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "models.versions.read")
        mv = find_version(call.ws, name, version)
        if mv is None:
            raise not_found(f"Model container with name: {name} version: {version} not found.")
        return answer(version_body(call.ws, mv))

    @router.delete(WS + "/models/{name}/versions/{version}")
    async def delete_version(sub: str, rg: str, ws: str, name: str, version: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "models.versions.delete")
        with state.lock:
            versions = call.ws.models.get(name, {})
            gone = versions.pop(version, None)
            if not versions:
                call.ws.models.pop(name, None)
        return answer(None, 200 if gone else 204, write=True)

    @router.get(WS + "/models/{name}/versions")
    async def list_versions(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "models.versions.read")
        query = request.query_params
        order = " ".join(query.get("$orderBy", "createdtime desc").lower().split())
        if order not in ("createdtime desc", "createdtime asc"):
            raise user_error(
                f"$orderBy {query['$orderBy']!r} is not supported; use 'createdtime desc' or 'createdtime asc'."
            )
        view = query.get("listViewType", "ActiveOnly")
        if view not in ("ActiveOnly", "ArchivedOnly", "All"):
            raise user_error(f"listViewType must be ActiveOnly, ArchivedOnly or All; got {view!r}.")
        versions = sorted(call.ws.models.get(name, {}).values(), key=lambda v: v.order, reverse=order.endswith("desc"))
        versions = [
            v
            for v in versions
            if (view == "All" or v.props["isArchived"] == (view == "ArchivedOnly"))
            and _matches_tags(v, query.get("tags", ""))
            and query.get("version", v.version) == v.version
            and query.get("stage", v.props["stage"]) == v.props["stage"]
        ]
        return answer(page(state, request, [version_body(call.ws, v) for v in versions]))

    def container_body(ws: Workspace, name: str) -> dict[str, Any]:
        versions = ws.models[name]
        latest = max(versions.values(), key=lambda v: v.order)
        first = min(versions.values(), key=lambda v: v.order)
        return {
            "id": resource_id(ws, "models", name),
            "name": name,
            "type": MODEL_TYPE,
            "systemData": first.audit.body(),
            "properties": {
                "description": None,
                "tags": {},
                "properties": {},
                "isArchived": False,
                "latestVersion": latest.version,
                "nextVersion": next_version(versions),
                "provisioningState": "Succeeded",
            },
        }

    @router.get(WS + "/models/{name}")
    async def get_container(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "models.read")
        if not call.ws.models.get(name):
            raise not_found(f"Model container with name: {name} not found.")
        return answer(container_body(call.ws, name))

    @router.get(WS + "/models")
    async def list_containers(sub: str, rg: str, ws: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "models.read")
        return answer(page(state, request, [container_body(call.ws, n) for n in sorted(call.ws.models)]))

    return router
