"""Batch Execution Service (BES, api-version 2.0) and Request-Response Service (RRS) routes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import ilearner
from ..blobs import BlobRef
from ..config import WebServiceConfig
from .context import StudioContext
from .errors import ServiceError, bad_argument, not_found

DATASET_EXTENSIONS = (".csv", ".tsv", ".arff")


def build_router(ctx: StudioContext) -> APIRouter:
    router = APIRouter()

    @router.post("/{scope_kind}/{scope_id}/services/{service_id}/jobs")
    async def submit_job(scope_kind: str, scope_id: str, service_id: str, request: Request) -> Response:
        service, endpoint = await ctx.call(scope_kind, scope_id, service_id, request, "submit")
        body = await ctx.read_json(request)
        inputs, outputs, parameters = parse_job_request(body, service)
        job = ctx.state.submit(service, endpoint, inputs, outputs, parameters)
        return JSONResponse(job.id)

    @router.post("/{scope_kind}/{scope_id}/services/{service_id}/jobs/{job_id}/start")
    async def start_job(scope_kind: str, scope_id: str, service_id: str, job_id: str, request: Request) -> Response:
        _, endpoint = await ctx.call(scope_kind, scope_id, service_id, request, "start")
        ctx.state.start(ctx.job_of(endpoint, job_id))
        return Response(status_code=200)

    @router.get("/{scope_kind}/{scope_id}/services/{service_id}/jobs/{job_id}")
    async def job_status(scope_kind: str, scope_id: str, service_id: str, job_id: str, request: Request) -> Response:
        _, endpoint = await ctx.call(scope_kind, scope_id, service_id, request, "status")
        job = ctx.job_of(endpoint, job_id)
        body = await asyncio.to_thread(ctx.state.status_body, job)
        return JSONResponse(body)

    @router.delete("/{scope_kind}/{scope_id}/services/{service_id}/jobs/{job_id}")
    async def delete_job(scope_kind: str, scope_id: str, service_id: str, job_id: str, request: Request) -> Response:
        _, endpoint = await ctx.call(scope_kind, scope_id, service_id, request, "delete")
        job = ctx.job_of(endpoint, job_id)
        if not ctx.state.cancel(job):
            with ctx.state.lock:
                ctx.state.jobs.pop(job.id, None)
        return Response(status_code=200)

    # ---- RRS ------------------------------------------------------------------------------------

    @router.post("/{scope_kind}/{scope_id}/services/{service_id}/execute")
    async def execute(scope_kind: str, scope_id: str, service_id: str, request: Request) -> Response:
        service, endpoint = await ctx.call(scope_kind, scope_id, service_id, request, "execute")
        if service.kind != "scoring":
            raise bad_argument("InvalidOperation", "Only scoring services answer request-response calls.")
        served = ctx.state.models.get(endpoint.service_id)
        if served is None:
            raise not_found("ModelPackageNotFound", "The endpoint has no trained model yet.")
        body = await ctx.read_json(request)
        names, values = parse_rrs_request(body, service)
        try:
            dataset = ilearner.table_to_dataset(names, values, "")
            out_names, rows = ilearner.score_table(served.model, dataset)
        except ilearner.DatasetError as exc:
            raise ServiceError("ModuleExecutionError", "ModuleExecutionError", str(exc), 400) from None
        types = ["Numeric"] * (len(out_names) - 2) + ["String", "Numeric"]
        result = {
            "Results": {
                "output1": {"type": "table", "value": {"ColumnNames": out_names, "ColumnTypes": types, "Values": rows}}
            }
        }
        return JSONResponse(result, headers={"x-ms-emulator-model-version": served.version})

    return router


def parse_blob_ref(raw: Any, where: str) -> BlobRef:
    """A BES blob reference: `ConnectionString`, or `BaseLocation` + `SasBlobToken`, and `RelativeLocation`."""
    if not isinstance(raw, dict):
        raise bad_argument("RequestBodyInvalid", f"{where} must be an object with RelativeLocation.")
    for key in ("ConnectionString", "RelativeLocation", "BaseLocation", "SasBlobToken"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise bad_argument("RequestBodyInvalid", f"{where}.{key} must be a string.")
    relative = (raw.get("RelativeLocation") or "").lstrip("/")
    if "/" not in relative or relative.endswith("/") or ".." in relative.split("/"):
        raise bad_argument(
            "MissingInputBlobInformation",
            f"{where}.RelativeLocation must be 'container/path/file.ext', got {relative!r}.",
        )
    ref = BlobRef(raw.get("ConnectionString"), relative, raw.get("BaseLocation"), raw.get("SasBlobToken"))
    if not ref.connection_string and not (ref.base_location and ref.sas_blob_token):
        raise bad_argument(
            "MissingInputBlobInformation",
            f"{where} needs a ConnectionString, or BaseLocation and SasBlobToken.",
        )
    return ref


def parse_job_request(
    body: Any, service: WebServiceConfig
) -> tuple[dict[str, BlobRef], dict[str, BlobRef], dict[str, str]]:
    """Validate a BES submit body against the service's ports, extensions and parameters."""
    if not isinstance(body, dict):
        raise bad_argument("RequestBodyInvalid", "The request body must be a JSON object.")
    allowed = {"Input", "Inputs", "Output", "Outputs", "GlobalParameters", "AzureBatchPoolId"}
    unknown = set(body) - allowed
    if unknown:
        raise bad_argument("RequestBodyInvalid", f"Unknown field(s) in the request body: {sorted(unknown)}.")
    if body.get("Input") is not None and body.get("Inputs") is not None:
        raise bad_argument(
            "DuplicateInputInBatchCall", "Cannot specify both single and multiple input at the same time."
        )
    raw_inputs = body.get("Inputs")
    if body.get("Input") is not None:
        raw_inputs = {service.input_names[0]: body["Input"]}
    if raw_inputs is None or raw_inputs == {}:
        raise bad_argument(
            "BatchJobInputsNotSpecified",
            "The following required input(s) were not specified with the request: " + ", ".join(service.input_names),
        )
    if not isinstance(raw_inputs, dict):
        raise bad_argument("RequestBodyInvalid", "Inputs must be an object keyed by input name.")
    unknown_inputs = [n for n in raw_inputs if n not in service.input_names]
    if unknown_inputs:
        raise bad_argument(
            "InvalidInputNames", f"Invalid service input name(s) specified: {', '.join(unknown_inputs)}."
        )
    if len(raw_inputs) > len(service.input_names):
        raise bad_argument("BatchJobInputsTooManySpecified", "Too many inputs were specified.")
    missing_inputs = [n for n in service.input_names if n not in raw_inputs]
    if missing_inputs:
        raise bad_argument(
            "BatchJobInputsNotSpecified",
            f"The following required input(s) were not specified with the request: {', '.join(missing_inputs)}",
        )
    inputs = {}
    for name, raw in raw_inputs.items():
        ref = parse_blob_ref(raw, f"Inputs.{name}")
        if ref.extension not in DATASET_EXTENSIONS:
            raise bad_argument(
                "InvalidBlobExtension",
                f"The blob reference: {ref.relative_location} has an invalid or missing file extension. "
                f'Supported file extensions for this output type are: "{", ".join(DATASET_EXTENSIONS)}".',
            )
        inputs[name] = ref
    raw_outputs = body.get("Outputs")
    if body.get("Output") is not None:
        raw_outputs = {next(iter(service.outputs)): body["Output"]}
    raw_outputs = raw_outputs or {}
    if not isinstance(raw_outputs, dict):
        raise bad_argument("RequestBodyInvalid", "Outputs must be an object keyed by output name.")
    outputs = {}
    for name, raw in raw_outputs.items():
        if name not in service.outputs:
            raise bad_argument("InvalidOutputOverrideName", f"Invalid output override name specified: {name}.")
        ref = parse_blob_ref(raw, f"Outputs.{name}")
        if ref.extension != service.outputs[name]:
            raise bad_argument(
                "InvalidBlobExtension",
                f"The blob reference: {ref.relative_location} has an invalid or missing file extension. "
                f'Supported file extensions for this output type are: "{service.outputs[name]}".',
            )
        outputs[name] = ref
    if not outputs:
        # The emulator keeps no storage account of its own for default output locations.
        raise bad_argument(
            "MissingRequiredOutputOverrides", "Output overrides are required by this emulator for every output."
        )
    parameters = body.get("GlobalParameters") or {}
    if not isinstance(parameters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()
    ):
        raise bad_argument("RequestBodyInvalid", "GlobalParameters must map names to string values.")
    missing = [p for p in service.required_global_parameters if p not in parameters]
    if missing:
        raise bad_argument(
            "MissingRequiredGlobalParameters", f"Missing required global parameters: {', '.join(missing)}."
        )
    return inputs, outputs, dict(parameters)


def parse_rrs_request(body: Any, service: WebServiceConfig) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(body, dict) or not isinstance(body.get("Inputs"), dict):
        raise bad_argument("RequestBodyInvalid", 'Body must be {"Inputs": {"input1": {"ColumnNames", "Values"}}}.')
    inputs = body["Inputs"]
    unknown = [n for n in inputs if n not in service.input_names]
    if unknown:
        raise bad_argument("InvalidInputNames", f"Invalid service input name(s) specified: {', '.join(unknown)}.")
    table = inputs.get(service.input_names[0])
    if (
        not isinstance(table, dict)
        or not isinstance(table.get("ColumnNames"), list)
        or not isinstance(table.get("Values"), list)
    ):
        raise bad_argument("RequestBodyInvalid", f"Inputs.{service.input_names[0]} needs ColumnNames and Values lists.")
    names = table["ColumnNames"]
    if not all(isinstance(n, str) for n in names) or not all(isinstance(r, list) for r in table["Values"]):
        raise bad_argument("RequestBodyInvalid", "ColumnNames must be strings and Values a list of rows.")
    return names, table["Values"]
