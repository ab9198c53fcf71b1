"""Run tracking: the MLflow REST subset a client reads metrics with, run history details, discovery.

MLflow (base: the workspace's `mlFlowTrackingUri` with `azureml://` -> `https://`, then
`/api/2.0/mlflow/…`; an ARM-audience token): `runs/get?run_id={job}` answers the run with its
latest metrics, params (the literal inputs) and tags (the job's, plus mlflow.runName);
`metrics/get-history?run_id=&metric_key=` the metric's history (one point: the trainer logs each
metric once). The run id is the job name. Metrics appear once the job has trained (Running), before
the job is Completed. Errors use MLflow's shape, `{"error_code", "message"}`.

Run history (run details and log files) is in `history`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .arm import ARM_AUDIENCE, authenticate, authorize, find_workspace
from .resources import Job, Workspace
from .state import AzureMlState

WS_PATH = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
MLFLOW_STATUS = {
    "Completed": "FINISHED",
    "Failed": "FAILED",
    "Canceled": "KILLED",
    "Running": "RUNNING",
    "Finalizing": "RUNNING",
    "CancelRequested": "RUNNING",
}


def _ms(moment: float | None) -> int | None:
    return None if moment is None else int(moment * 1000)


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    def workspace(request: Request, sub: str, rg: str, ws: str) -> Workspace:
        claims = authenticate(state, request, ARM_AUDIENCE)
        found = find_workspace(state, sub, rg, ws)
        authorize(found, claims, "Microsoft.MachineLearningServices/workspaces/experiments/runs/read")
        return found

    def run_of(found: Workspace, run_id: str | None) -> Job | None:
        return found.jobs.get(run_id or "")

    def missing(run_id: str | None) -> Response:
        return JSONResponse(
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run '{run_id}' not found."}, status_code=404
        )

    @router.get("/mlflow/v1.0" + WS_PATH + "/api/2.0/mlflow/runs/get")
    async def runs_get(sub: str, rg: str, ws: str, request: Request) -> Response:
        found = workspace(request, sub, rg, ws)
        await state.faults.inject(found.cfg.name, "mlflow.read")
        run_id = request.query_params.get("run_id")
        job = run_of(found, run_id)
        if job is None:
            return missing(run_id)
        stamp = _ms(job.ended_at or job.started_at) or 0
        info = {
            "run_id": job.name,
            "run_uuid": job.name,
            "experiment_id": job.experiment_id,
            "run_name": job.spec.get("displayName") or job.name,
            "status": MLFLOW_STATUS.get(job.status, "SCHEDULED"),
            "start_time": _ms(job.started_at),
            "end_time": _ms(job.ended_at),
            "lifecycle_stage": "active",
            "artifact_uri": f"azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{job.name}/",
        }
        data: dict[str, Any] = {
            "metrics": [{"key": k, "value": v, "timestamp": stamp, "step": 0} for k, v in job.metrics.items()],
            "params": [{"key": k, "value": v} for k, v in job.params.items()],
            "tags": [{"key": "mlflow.runName", "value": info["run_name"]}]
            + [{"key": k, "value": v} for k, v in job.spec.get("tags", {}).items()],
        }
        return JSONResponse({"run": {"info": info, "data": data}})

    @router.get("/mlflow/v1.0" + WS_PATH + "/api/2.0/mlflow/metrics/get-history")
    async def metric_history(sub: str, rg: str, ws: str, request: Request) -> Response:
        found = workspace(request, sub, rg, ws)
        run_id, key = request.query_params.get("run_id"), request.query_params.get("metric_key")
        job = run_of(found, run_id)
        if job is None:
            return missing(run_id)
        if not key:
            return JSONResponse(
                {"error_code": "INVALID_PARAMETER_VALUE", "message": "metric_key is required."}, status_code=400
            )
        stamp = _ms(job.ended_at or job.started_at) or 0
        points = [{"key": key, "value": job.metrics[key], "timestamp": stamp, "step": 0}] if key in job.metrics else []
        return JSONResponse({"metrics": points})

    @router.get("/discovery")
    async def discovery() -> Response:
        base = state.base
        return JSONResponse(
            {
                "api": base,
                "catalog": base,
                "experimentation": base,
                "history": base,
                "modelmanagement": base,
                "pipelines": base,
                "studio": "https://ml.azure.com",
            }
        )

    return router
