"""Code assets: `codes/{name}` and `codes/{name}/versions/{version}`, the snapshots a job's `codeId` names.

A version records where its files are (`codeUri`: a blob URL or an azureml:// URI of a datastore of the
workspace); the emulator neither reads nor checks the files (jobs do not run their command). As for
models: PUT of a version auto-creates the container, 201 when new, 200 when the same `codeUri` is put
again (description, tags, properties applied), 400 "Asset paths cannot be updated." for another
`codeUri`. The container answers `latestVersion` (most recently created) and `nextVersion` (the
largest integer version + 1). What the SDK does before the PUT, uploading local files to
`https://{account}.blob.{storage suffix}`, is out of the emulator's reach (see the package docstring).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .arm import answer, arm_call, check_name, page, read_object, resource_id
from .errors import not_found, user_error
from .jobs import WS, check_uri
from .resources import Audit, CodeVersion, Workspace
from .state import AzureMlState
from .validation import flag, obj, required_text, str_map, text

CODE_TYPE = "Microsoft.MachineLearningServices/workspaces/codes"


def _version_body(ws: Workspace, cv: CodeVersion) -> dict[str, Any]:
    return {
        "id": resource_id(ws, "codes", cv.name, "versions", cv.version),
        "name": cv.version,
        "type": f"{CODE_TYPE}/versions",
        "systemData": cv.audit.body(),
        "properties": cv.props | {"provisioningState": "Succeeded"},
    }


def _container_body(ws: Workspace, name: str) -> dict[str, Any]:
    versions = ws.codes[name]
    latest = max(versions.values(), key=lambda v: v.order)
    numbers = [int(v) for v in versions if v.isdigit()]
    return {
        "id": resource_id(ws, "codes", name),
        "name": name,
        "type": CODE_TYPE,
        "systemData": latest.audit.body(),
        "properties": {
            "latestVersion": latest.version,
            "nextVersion": str(max(numbers, default=0) + 1),
            "isArchived": False,
            "provisioningState": "Succeeded",
        },
    }


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    def find(ws: Workspace, name: str) -> dict[str, CodeVersion]:
        if name not in ws.codes:
            raise not_found(f"Code container {name} not found in workspace {ws.cfg.name}.")
        return ws.codes[name]

    @router.get(WS + "/codes")
    async def list_containers(sub: str, rg: str, ws: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "codes.read")
        with state.lock:
            items = [_container_body(call.ws, n) for n in sorted(call.ws.codes)]
        return answer(page(state, request, items))

    @router.get(WS + "/codes/{name}")
    async def get_container(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "codes.read")
        with state.lock:
            find(call.ws, name)
            return answer(_container_body(call.ws, name))

    @router.get(WS + "/codes/{name}/versions")
    async def list_versions(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "codes.versions.read")
        with state.lock:
            versions = sorted(call.ws.codes.get(name, {}).values(), key=lambda v: v.order, reverse=True)
            items = [_version_body(call.ws, v) for v in versions]
        return answer(page(state, request, items))

    @router.get(WS + "/codes/{name}/versions/{version}")
    async def get_version(sub: str, rg: str, ws: str, name: str, version: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "codes.versions.read")
        with state.lock:
            cv = find(call.ws, name).get(version)
            if cv is None:
                raise not_found(f"Code {name}:{version} not found in workspace {call.ws.cfg.name}.")
            return answer(_version_body(call.ws, cv))

    @router.put(WS + "/codes/{name}/versions/{version}")
    async def put_version(sub: str, rg: str, ws: str, name: str, version: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "codes.versions.write")
        check_name("Code", name)
        props = obj((await read_object(state, request)).get("properties"), "properties")
        uri = required_text(props, "codeUri", "properties")
        check_uri(call.ws, uri, "properties.codeUri")
        parsed = {
            "codeUri": uri,
            "description": text(props, "description", "properties"),
            "tags": str_map(props, "tags", "properties"),
            "properties": str_map(props, "properties", "properties"),
            "isAnonymous": flag(props, "isAnonymous", "properties"),
            "isArchived": flag(props, "isArchived", "properties"),
        }
        with state.lock:
            versions = call.ws.codes.setdefault(name, {})
            existing = versions.get(version)
            if existing is not None:
                if existing.props["codeUri"] != uri:
                    raise user_error("Asset paths cannot be updated.", "Immutable")
                existing.props.update(parsed)
                existing.audit.touch(call.principal)
                return answer(_version_body(call.ws, existing), write=True)
            order = 1 + max((v.order for c in call.ws.codes.values() for v in c.values()), default=0)
            cv = versions[version] = CodeVersion(name, version, parsed, Audit(call.principal), order)
            return answer(_version_body(call.ws, cv), 201, write=True)

    return router
