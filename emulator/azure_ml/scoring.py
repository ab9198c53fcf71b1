"""The data planes: online scoring (`POST {scoringUri}`) and batch invocation (`POST {scoringUri}` of a batch endpoint).

Scoring URIs stand in for `https://{endpoint}.{region}.inference.ml.azure.com/score` (or `/jobs`)
as `{TLS base}/inference/{region}/{endpoint}/score` (or `/jobs`).

Online scoring authenticates per the endpoint's authMode: `Key` (a key from listKeys), `AMLToken`
(from …/token) or `AADToken` (an Entra token for https://ml.azure.com from the workspace's tenant).
The request is `{"input_data": {"columns": [...], "index": [...], "data": [[...]]}}`, or
`{"data": [[...]]}` (or `{"input_data": [[...]]}`) with the columns in the model's order; extra
columns are ignored. The answer is a JSON array with one `{"label": <class>, "probability": <of that
label>}` per row, and headers `azureml-model-deployment` (the deployment that served) and
`x-ms-emulator-model-version` (the served model's content id). The `azureml-model-deployment`
request header picks a deployment (even at 0%) and skips mirroring; otherwise the live traffic
weights pick one, drawing from the endpoint's seeded generator, and `mirrorTraffic`% of those calls
are also scored by the mirror deployment, answers discarded (counted as `mirrored`). Nothing
routable: 404 "No valid deployments to route to...". An unhealthy deployment (aml_deployment fault)
answers `error_status` for exactly `error_rate` of its calls and is `latency_s` slower, 408 past
its requestTimeout.

Batch invocation needs an Entra token for https://ml.azure.com from the workspace's principal; the
body's keys may be camelCase or PascalCase and input types `UriFile`/`uri_file` alike. It creates
a job (jobType Pipeline, tag azureml.batchrun=true) polled like any job; its first output (default
`score`) receives `<outputFileName>` (default predictions.csv): the input columns plus `label` and
`probability`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import ilearner, wire
from . import trainer
from .arm import ML_AUDIENCE, authorize
from .endpoints import aml_token_audience
from .errors import AmlError, user_error
from .jobs import check_uri, job_body
from .resources import Audit, Deployment, Endpoint, Job, Workspace
from .runner import Runner
from .state import AzureMlState
from .validation import seconds

NO_ROUTE = (
    "No valid deployments to route to. Please check that the endpoint has at least one deployment with positive "
    "weight values or use a deployment specific header to route."
)
DEPLOYMENT_HEADER = "azureml-model-deployment"


def bare(status: int, code: str, message: str) -> AmlError:
    return AmlError(status, code, message, arm=True)


def _key(body: dict[str, Any], name: str) -> Any:
    """A field by name without regard to case (the batch API is documented in both casings)."""
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


class DataPlane:
    def __init__(self, state: AzureMlState, runner: Runner) -> None:
        self.state = state
        self.runner = runner

    def endpoint(self, request: Request, region: str, name: str, batch: bool) -> tuple[Workspace, Endpoint]:
        found = self.state.endpoint_at(region, name, batch)
        if found is None:
            raise bare(404, "NotFound", f"No {'batch' if batch else 'online'} endpoint {name} in {region}.")
        request.state.aml_location = found[0].cfg.location
        return found

    def authenticate(self, request: Request, ws: Workspace, endpoint: Endpoint) -> str:
        """The caller: its appid, or "key" for an endpoint key."""
        token = wire.bearer(request)
        if token is None:
            raise bare(401, "Unauthorized", "Authorization header with a Bearer credential is required.")
        if endpoint.auth_mode == "Key" and not endpoint.batch:
            if token not in endpoint.keys:
                raise bare(401, "Unauthorized", "The key is not valid for this endpoint.")
            return "key"
        audience = aml_token_audience(ws, endpoint) if endpoint.auth_mode == "AMLToken" else ML_AUDIENCE
        claims = self.state.tokens.verify(token, audience)
        if claims is None:
            raise bare(401, "Unauthorized", f"The token is invalid, expired, or not for {audience}.")
        if endpoint.batch:
            return authorize(ws, claims, "Microsoft.MachineLearningServices/workspaces/batchEndpoints/score/action")
        if str(claims.get("tid", "")).lower() != ws.cfg.tenant.lower():
            raise bare(401, "Unauthorized", "The token is from another tenant.")
        return str(claims.get("appid", ""))

    def choose(self, ws: Workspace, endpoint: Endpoint, header: str | None) -> Deployment:
        if header:
            chosen = endpoint.deployment(header)
            if chosen is None:
                raise bare(
                    404,
                    "NotFound",
                    f"Deployment {header} not found in endpoint {endpoint.name}, workspace {ws.cfg.name}.",
                )
            if chosen.served is None:
                raise bare(
                    503, "ServiceUnavailable", f"Deployment {chosen.name} is {chosen.state} and serves no model yet."
                )
            return chosen
        weights = sorted(
            (d.name, w)
            for name, w in endpoint.live_traffic.items()
            if w > 0 and (d := endpoint.deployment(name)) is not None and d.served is not None
        )
        if not weights:
            raise bare(404, "NotFound", NO_ROUTE)
        draw = self.state.rng(f"{ws.cfg.name}/{endpoint.name}").random() * sum(w for _, w in weights)
        picked = weights[-1][0]
        for candidate, weight in weights:
            draw -= weight
            if draw < 0:
                picked = candidate
                break
        found = endpoint.deployment(picked)
        assert found is not None
        return found

    def mirror_target(self, ws: Workspace, endpoint: Endpoint) -> Deployment | None:
        for name, percent in endpoint.live_mirror.items():
            target = endpoint.deployment(name)
            if (
                percent > 0
                and target is not None
                and target.served is not None
                and self.state.rng(f"{ws.cfg.name}/{endpoint.name}/mirror").random() * 100 < percent
            ):
                return target
        return None

    async def serve(self, d: Deployment, names: list[str], rows: list[Any]) -> Response:
        """Score on one deployment, as unhealthy as its fault makes it."""
        assert d.served is not None
        headers = {DEPLOYMENT_HEADER: d.name, "x-ms-emulator-model-version": d.served.content_id}
        with self.state.lock:
            d.requests += 1
            calls = d.requests
        fault = d.fault
        if fault is not None and fault.latency_s > 0:
            timeout = seconds(d.props.get("requestSettings", {}).get("requestTimeout") or "PT5S")
            await asyncio.sleep(min(fault.latency_s, timeout))
            if fault.latency_s > timeout:
                self._failed(d)
                return JSONResponse(
                    {
                        "error": {
                            "code": "RequestTimeout",
                            "message": f"The request exceeded the {timeout:g} s request timeout.",
                        }
                    },
                    status_code=408,
                    headers=headers,
                )
        if (
            fault is not None
            and fault.error_rate > 0
            and math.floor(calls * fault.error_rate) > math.floor((calls - 1) * fault.error_rate)
        ):
            self._failed(d)
            return JSONResponse(
                {"error": {"code": "ServiceUnavailable", "message": f"Deployment {d.name} is unhealthy."}},
                status_code=fault.error_status,
                headers=headers,
            )
        try:
            predictions = trainer.predict(d.served.model, names, rows)
        except ilearner.DatasetError as exc:
            raise bare(400, "BadRequest", f"The input could not be scored: {exc}") from None
        return JSONResponse(predictions, headers=headers)

    def _failed(self, d: Deployment) -> None:
        with self.state.lock:
            d.errors += 1
        self.state.count("scoring_errors")

    async def mirror(self, d: Deployment, names: list[str], rows: list[Any]) -> None:
        with self.state.lock:
            d.mirrored += 1
        self.state.count("mirrored_requests")
        with contextlib.suppress(AmlError):
            await self.serve(d, names, rows)  # the answer is discarded


def parse_scoring_input(body: Any, model_columns: tuple[str, ...]) -> tuple[list[str], list[Any]]:
    if not isinstance(body, dict):
        raise bare(
            400,
            "BadRequest",
            'The body must be {"input_data": {"columns": [...], "data": [[...]]}} or {"data": [[...]]}.',
        )
    data = body.get("input_data", body.get("data"))
    columns: Any = list(model_columns)
    index = None
    if isinstance(data, dict):
        columns = data.get("columns", columns)
        index, data = data.get("index"), data.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bare(400, "BadRequest", "input_data.columns must be a list of column names.")
    if not isinstance(data, list) or not data or not all(isinstance(r, list) and len(r) == len(columns) for r in data):
        raise bare(400, "BadRequest", f"data must be a non-empty list of rows of {len(columns)} values each.")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise bare(400, "BadRequest", "input_data.index must list one entry per row.")
    return columns, data


def build_router(state: AzureMlState, runner: Runner) -> APIRouter:
    router = APIRouter()
    plane = DataPlane(state, runner)

    @router.post("/inference/{region}/{name}/score")
    async def score(region: str, name: str, request: Request) -> Response:
        ws, endpoint = plane.endpoint(request, region, name, batch=False)
        plane.authenticate(request, ws, endpoint)
        await state.faults.inject(ws.cfg.name, "score")
        header = request.headers.get(DEPLOYMENT_HEADER)
        chosen = plane.choose(ws, endpoint, header)
        assert chosen.served is not None
        names, rows = parse_scoring_input(
            await wire.read_json(request, state.max_body_bytes), chosen.served.model.feature_names
        )
        state.count("scoring_requests")
        if not header and (shadow := plane.mirror_target(ws, endpoint)) is not None:
            asyncio.get_running_loop().create_task(plane.mirror(shadow, names, rows))
        return await plane.serve(chosen, names, rows)

    @router.post("/inference/{region}/{name}/jobs")
    async def invoke(region: str, name: str, request: Request) -> Response:
        ws, endpoint = plane.endpoint(request, region, name, batch=True)
        principal = plane.authenticate(request, ws, endpoint)
        await state.faults.inject(ws.cfg.name, "batch.invoke")
        body = await wire.read_json(request, state.max_body_bytes)
        props = _key(body, "properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise user_error('The body must be {"properties": {"inputData": {...}, "outputData": {...}}}.')
        inputs = _batch_io(ws, _key(props, "inputData"), "inputData", "jobInputType", required=True)
        outputs = _batch_io(ws, _key(props, "outputData"), "outputData", "jobOutputType", required=False) or {
            "score": {"jobOutputType": "uri_folder", "uri": None, "mode": "ReadWriteMount"}
        }
        chosen_name = request.headers.get(DEPLOYMENT_HEADER) or endpoint.default_deployment
        chosen = endpoint.deployment(chosen_name) if chosen_name else None
        if chosen is None:
            raise user_error(NO_ROUTE, "NoValidDeployments")
        if chosen.served is None:
            raise user_error(f"Deployment {chosen.name} is {chosen.state} and cannot score yet.", "DeploymentNotReady")
        job_name = f"batchjob-{uuid.uuid4()}"
        spec = {
            "jobType": "Pipeline",
            "displayName": job_name,
            "experimentName": endpoint.name,
            "description": None,
            "computeId": chosen.props.get("compute"),
            "isArchived": False,
            "tags": {"azureml.batchrun": "true"},
            "properties": {
                "azureml.endpointName": endpoint.name,
                "azureml.deploymentName": chosen.name,
                "azureml.outputFileName": chosen.props.get("outputFileName") or "predictions.csv",
            },
            "inputs": inputs,
            "outputs": outputs,
        }
        job = Job(
            job_name,
            spec,
            Audit(principal),
            outputs={k: dict(v) for k, v in outputs.items()},
            batch=(endpoint.name, chosen.name),
            scorer=chosen.served,
        )
        with state.lock:
            ws.jobs[job_name] = job
        runner.start(ws, job)
        return JSONResponse(job_body(state, ws, job))

    @router.get("/inference/{region}/{name}/jobs/{job_name}")
    async def batch_job(region: str, name: str, job_name: str, request: Request) -> Response:
        ws, endpoint = plane.endpoint(request, region, name, batch=True)
        plane.authenticate(request, ws, endpoint)
        job = ws.jobs.get(job_name)
        if job is None or job.batch is None or job.batch[0] != endpoint.name:
            raise bare(404, "NotFound", f"Job {job_name} not found for endpoint {endpoint.name}.")
        return JSONResponse(job_body(state, ws, job))

    return router


def _batch_io(ws: Workspace, raw: Any, where: str, type_key: str, *, required: bool) -> dict[str, dict[str, Any]]:
    if raw is None and not required:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise user_error(f"properties.{where} must name at least one {'input' if required else 'output'}.")
    out = {}
    for io_name, item in raw.items():
        if not isinstance(item, dict):
            raise user_error(f"properties.{where}.{io_name} must be an object.")
        kind = str(_key(item, type_key) or "").lower().replace("_", "")
        if kind not in ("urifile", "urifolder"):
            raise user_error(f"properties.{where}.{io_name}.{type_key} must be UriFile or UriFolder.")
        uri = _key(item, "uri")
        if not isinstance(uri, str) and (required or uri is not None):
            raise user_error(f"properties.{where}.{io_name}.uri must be a string.")
        if isinstance(uri, str):
            check_uri(ws, uri, f"properties.{where}.{io_name}.uri")
        entry: dict[str, Any] = {type_key: "uri_file" if kind == "urifile" else "uri_folder", "uri": uri}
        entry["mode"] = "ReadOnlyMount" if required else "ReadWriteMount"
        out[io_name] = entry
    return out
