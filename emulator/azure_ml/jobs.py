"""Jobs: `PUT/GET/DELETE …/jobs/{name}`, list, and `POST …/jobs/{name}/cancel` (Command jobs).

PUT of a new name answers 201 and starts the job. PUT of a known name answers 200 if nothing
create-only changed and applies description, displayName, tags (replaced), properties (added to)
and isArchived; otherwise 400 UserError, InnerError JobPropertyImmutable, with the property in
MessageParameters. A request that round-trips a GET body (status, services, output URIs the
service filled in) counts as unchanged. Cancel answers 202 + Location + Retry-After (200 if the job
had already ended); the Location poll answers 202 until the job is Canceled, then 200.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .arm import answer, arm_call, check_name, page, read_object, resource_id
from .errors import not_found, user_error
from .resources import Audit, Job, Workspace
from .runner import Runner
from .state import AzureMlState
from .storage import parse_uri
from .validation import choice, duration, flag, integer, obj, opt_obj, required_text, str_map, text

WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
INPUT_TYPES = ("literal", "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model")
OUTPUT_TYPES = ("uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model")
INPUT_MODES = ("ReadOnlyMount", "ReadWriteMount", "Download", "Direct", "EvalMount", "EvalDownload")
OUTPUT_MODES = ("ReadWriteMount", "Upload", "Direct")
MUTABLE = ("description", "displayName", "tags", "properties", "isArchived", "notificationSetting")
IO_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,254}$")
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([^}\s]+?)\s*\}\}")
IMMUTABLE_MESSAGE = (
    "A job with this name already exists. If you are trying to create a new job, use a different name. "
    "If you are trying to update an existing job, the existing job's Settings, Inputs, Outputs, Jobs, "
    "InputBindings, OutputBindings cannot be changed. Only description, tags, displayName, properties, "
    "and isArchived can be updated."
)


def check_asset_id(ws: Workspace, value: str, where: str, kind: str) -> None:
    """An environment or compute reference: this workspace's ARM id (which must exist) or a registry URI."""
    if kind == "environments" and value.lower().startswith("azureml://registries/"):
        return
    ours = f"{ws.cfg.resource_id}/{kind}/".lower()
    if not value.lower().startswith(ours):
        raise user_error(f"{where} {value!r} is not a {kind[:-1]} of workspace {ws.cfg.name}.", "InvalidReference")
    rest = value[len(ours) :].split("/")
    known = (
        (ws.cfg.environment, "versions", ws.cfg.environment_version) if kind == "environments" else (ws.cfg.compute,)
    )
    if tuple(p.lower() for p in rest) != tuple(p.lower() for p in known):
        raise user_error(f"{where} {value!r} was not found in workspace {ws.cfg.name}.", "NotFound")


def check_uri(ws: Workspace, value: str, where: str) -> None:
    try:
        uri = parse_uri(value)
    except ValueError as exc:
        raise user_error(f"{where}: {exc}.", "InvalidUri") from None
    if uri.datastore is not None and all(d.name != uri.datastore for d in ws.cfg.datastores):
        raise user_error(f"{where}: datastore {uri.datastore!r} was not found in workspace {ws.cfg.name}.", "NotFound")


def _io_items(
    raw: dict[str, Any] | None, where: str, type_key: str, allowed: tuple[str, ...]
) -> list[tuple[str, str, dict[str, Any], str]]:
    """(name, path, item, type) of each job input or output, with its name and type checked."""
    items = []
    for name, item in (raw or {}).items():
        here = f"{where}.{name}"
        if not IO_NAME.match(name):
            raise user_error(f"{where}: name {name!r} must be an identifier.")
        item = obj(item, here)
        kind = choice(item, type_key, here, allowed)
        if kind is None:
            raise user_error(f"{here}.{type_key} is required.", "MissingRequiredField")
        items.append((name, here, item, kind))
    return items


def _described(entry: dict[str, Any], item: dict[str, Any], here: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return entry | {key: value for key in keys if (value := text(item, key, here)) is not None}


def parse_inputs(ws: Workspace, raw: dict[str, Any] | None, where: str) -> dict[str, dict[str, Any]]:
    inputs = {}
    for name, here, item, kind in _io_items(raw, where, "jobInputType", INPUT_TYPES):
        entry: dict[str, Any] = {"jobInputType": kind}
        if kind == "literal":
            entry["value"] = required_text(item, "value", here)
        else:
            entry["uri"] = required_text(item, "uri", here)
            check_uri(ws, entry["uri"], f"{here}.uri")
            entry["mode"] = choice(item, "mode", here, INPUT_MODES, default="ReadOnlyMount")
        inputs[name] = _described(entry, item, here, ("description",))
    return inputs


def parse_outputs(ws: Workspace, raw: dict[str, Any] | None, where: str) -> dict[str, dict[str, Any]]:
    outputs = {}
    for name, here, item, kind in _io_items(raw, where, "jobOutputType", OUTPUT_TYPES):
        uri = text(item, "uri", here)
        if uri is not None:
            check_uri(ws, uri, f"{here}.uri")
        entry = {
            "jobOutputType": kind,
            "uri": uri,
            "mode": choice(item, "mode", here, OUTPUT_MODES, default="ReadWriteMount"),
        }
        outputs[name] = _described(entry, item, here, ("description", "assetName"))
    return outputs


def parse_job(ws: Workspace, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request's properties, checked and with the service's defaults filled in."""
    props = obj(body.get("properties"), "properties")
    job_type = required_text(props, "jobType", "properties")
    if job_type != "Command":
        raise user_error(
            f"properties.jobType {job_type!r} is not supported by this emulator; use Command.", "NotSupported"
        )
    environment = required_text(props, "environmentId", "properties")
    check_asset_id(ws, environment, "properties.environmentId", "environments")
    compute = text(props, "computeId", "properties")
    if compute is not None:
        check_asset_id(ws, compute, "properties.computeId", "computes")
    resources = opt_obj(props, "resources", "properties") or {}
    limits = opt_obj(props, "limits", "properties")
    spec: dict[str, Any] = {
        "jobType": "Command",
        "command": required_text(props, "command", "properties"),
        "environmentId": environment,
        "computeId": compute,
        "codeId": text(props, "codeId", "properties"),
        "displayName": text(props, "displayName", "properties", default=name),
        "description": text(props, "description", "properties"),
        "experimentName": text(props, "experimentName", "properties", default="Default"),
        "tags": str_map(props, "tags", "properties"),
        "properties": str_map(props, "properties", "properties"),
        "isArchived": flag(props, "isArchived", "properties"),
        "environmentVariables": str_map(props, "environmentVariables", "properties"),
        "resources": resources
        | {"instanceCount": integer(resources, "instanceCount", "properties.resources", minimum=1, default=1)},
        "limits": None
        if limits is None
        else limits | {"jobLimitsType": "Command", "timeout": duration(limits, "timeout", "properties.limits")},
        "distribution": opt_obj(props, "distribution", "properties"),
        "notificationSetting": opt_obj(props, "notificationSetting", "properties"),
        "inputs": parse_inputs(ws, opt_obj(props, "inputs", "properties"), "properties.inputs"),
        "outputs": parse_outputs(ws, opt_obj(props, "outputs", "properties"), "properties.outputs"),
    }
    for kind, io_name in PLACEHOLDER.findall(spec["command"]):
        if io_name not in spec[kind]:
            raise user_error(
                f"properties.command refers to ${{{{{kind}.{io_name}}}}}, which is not defined in {kind}.",
                "InvalidReference",
            )
    return spec


def job_body(state: AzureMlState, ws: Workspace, job: Job) -> dict[str, Any]:
    tracking = state.mlflow_uri(ws)
    services = {
        "Studio": {
            "jobServiceType": "Studio",
            "endpoint": f"https://ml.azure.com/runs/{job.name}?wsid={ws.cfg.resource_id}",
            "status": None,
            "errorMessage": None,
            "port": None,
            "properties": None,
            "nodes": None,
        },
        "Tracking": {
            "jobServiceType": "Tracking",
            "endpoint": tracking,
            "status": None,
            "errorMessage": None,
            "port": None,
            "properties": None,
            "nodes": None,
        },
    }
    properties = dict(job.spec) | {
        "status": job.status,
        "services": services,
        "outputs": job.outputs,
        "parameters": {k: v["value"] for k, v in job.spec.get("inputs", {}).items() if v["jobInputType"] == "literal"},
    }
    return {
        "id": resource_id(ws, "jobs", job.name),
        "name": job.name,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "systemData": job.audit.body(),
        "properties": properties,
    }


def _unchanged(job: Job, spec: dict[str, Any]) -> str | None:
    """None if only mutable fields differ from the job as created, else the first create-only field that does."""
    for key, value in spec.items():
        if key in MUTABLE:
            continue
        if key == "outputs":  # a round-tripped GET body carries the URIs the service filled in
            value = {name: _as_submitted(job, name, output) for name, output in value.items()}
        if value != job.spec.get(key):
            return key
    return None


def _as_submitted(job: Job, name: str, output: dict[str, Any]) -> dict[str, Any]:
    submitted = job.spec["outputs"].get(name, {})
    if submitted.get("uri") is None and output.get("uri") == job.outputs.get(name, {}).get("uri"):
        return output | {"uri": None}
    return output


def build_router(state: AzureMlState, runner: Runner) -> APIRouter:
    router = APIRouter()

    def find(ws: Workspace, name: str) -> Job:
        job = ws.jobs.get(name)
        if job is None:
            raise not_found(f"Job {name} not found in workspace {ws.cfg.name}.")
        return job

    @router.put(WS + "/jobs/{name}")
    async def put_job(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "jobs.write")
        check_name("Job", name)
        spec = parse_job(call.ws, name, await read_object(state, request))
        with state.lock:
            job = call.ws.jobs.get(name)
            if job is None:
                job = Job(
                    name,
                    spec,
                    Audit(call.principal),
                    outputs={k: dict(v) for k, v in spec["outputs"].items()},
                    params={k: v["value"] for k, v in spec["inputs"].items() if v["jobInputType"] == "literal"},
                )
                call.ws.jobs[name] = job
                created = True
            else:
                changed = _unchanged(job, spec)
                if changed is not None:
                    raise user_error(IMMUTABLE_MESSAGE, "JobPropertyImmutable", parameters={"property": changed})
                job.spec |= {
                    k: spec[k] for k in ("description", "displayName", "tags", "isArchived", "notificationSetting")
                }
                job.spec["properties"] = job.spec["properties"] | spec["properties"]
                job.audit.touch(call.principal)
                created = False
        if created:
            runner.start(call.ws, job)
        return answer(job_body(state, call.ws, job), 201 if created else 200, write=True)

    @router.get(WS + "/jobs/{name}")
    async def get_job(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "jobs.read")
        return answer(job_body(state, call.ws, find(call.ws, name)))

    @router.get(WS + "/jobs")
    async def list_jobs(sub: str, rg: str, ws: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "jobs.read")
        query = request.query_params
        view = query.get("listViewType", "ActiveOnly")
        if view not in ("ActiveOnly", "ArchivedOnly", "All"):
            raise user_error(f"listViewType must be ActiveOnly, ArchivedOnly or All; got {view!r}.")
        jobs = [
            j
            for j in call.ws.jobs.values()
            if (view == "All" or j.spec["isArchived"] == (view == "ArchivedOnly"))
            and (not query.get("jobType") or query["jobType"] == j.spec["jobType"])
            and (not query.get("tag") or query["tag"] in j.spec["tags"])
        ]
        jobs.sort(key=lambda j: j.audit.created_at, reverse=True)
        return answer(page(state, request, [job_body(state, call.ws, j) for j in jobs]))

    @router.post(WS + "/jobs/{name}/cancel")
    async def cancel_job(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "jobs.cancel")
        job = find(call.ws, name)
        if not runner.cancel(call.ws, job):
            return answer(None, 200, write=True)
        op = state.start_operation(call.ws, "jc")
        watch_until_terminal(state, op, job)
        return answer(None, 202, state.location_headers(op), write=True)

    @router.delete(WS + "/jobs/{name}")
    async def delete_job(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "jobs.delete")
        job = find(call.ws, name)
        runner.cancel(call.ws, job)
        op = state.start_operation(call.ws, "jd", done_status=204)

        def forget() -> None:
            with state.lock:
                call.ws.jobs.pop(name, None)
            state.finish_operation(op)

        state.scheduler.call_later(state.timings.delete_s + state.timings.cancel_s, forget)
        return answer(None, 202, state.location_headers(op), write=True)

    return router


def watch_until_terminal(state: AzureMlState, op: Any, job: Job) -> None:
    """Finish `op` once the job has ended (polled, so a cancel racing completion still ends it)."""

    def check() -> None:
        if job.terminal:
            state.finish_operation(op)
        else:
            state.scheduler.call_later(0.02, check)

    check()
