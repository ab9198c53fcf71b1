"""Run history: a job's run details and its log files, as `MLClient.jobs.stream`/`get` read them.

`GET {TLS base}/history/v1.0{workspace id}/runs/{job}/details` (ARM-audience token) answers the
run-history `RunDetails` shape of azure-ai-ml's generated `runhistory` client: `runId`, `runUuid`,
`status`, `target`, `createdTimeUtc`, `startTimeUtc`, `endTimeUtc`, `error` (`{"error": {"code",
"message"}}` or null: where a failed job's reason is, the ARM job carries none), `warnings`
(`[{"source", "message"}]`), `tags`, `properties` (strings), `parameters`, `services`,
`inputDatasets`, `outputDatasets`, `runDefinition`, and `logFiles`: log name -> URL.

`logFiles` is the one log the emulator writes, `user_logs/std_log.txt` (the name the SDK streams),
once the job has started; empty before. Its URL stands in for the service's blob SAS URL: it is
readable without a bearer token, its `sig` (an HMAC over workspace, job and name) is its credential.
The log is a summary the emulator writes, not the output of the job's command (which is not run).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .arm import ARM_AUDIENCE, authenticate, authorize, find_workspace
from .resources import Job, Workspace
from .state import AzureMlState

WS_PATH = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
STD_LOG = "user_logs/std_log.txt"
_KEY = secrets.token_bytes(32)


def _iso(moment: float | None) -> str | None:
    return None if moment is None else dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


def _sig(ws: Workspace, job: str, name: str) -> str:
    return hmac.new(_KEY, f"{ws.cfg.resource_id.lower()}|{job}|{name}".encode(), hashlib.sha256).hexdigest()


def log_text(job: Job) -> str:
    """What the emulator writes to a job's std_log.txt."""
    spec = job.spec
    lines = [
        f"[emulator] run {job.name} (experiment {spec.get('experimentName', 'Default')})",
        f"[emulator] command: {spec.get('command', '')}",
        f"[emulator] compute: {spec.get('computeId')}",
        f"[emulator] environment: {spec.get('environmentId')}",
        "[emulator] the command is not executed; the emulator's built-in trainer runs instead",
    ]
    lines += [f"[emulator] input {k}: {v.get('uri', v.get('value'))}" for k, v in spec.get("inputs", {}).items()]
    lines += [f"[emulator] metric {k} = {v}" for k, v in sorted(job.metrics.items())]
    if job.error:
        lines.append(f"[emulator] error {job.error.get('code')}: {job.error.get('message')}")
    lines.append(f"[emulator] status: {job.status}")
    return "\n".join(lines) + "\n"


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    def log_files(ws: Workspace, job: Job) -> dict[str, str]:
        if job.started_at is None and not job.terminal:
            return {}
        url = (
            f"{state.base}/history/v1.0{ws.cfg.resource_id}/runs/{quote(job.name)}/logs/{STD_LOG}"
            f"?sv=2021-08-06&sr=b&sp=r&sig={_sig(ws, job.name, STD_LOG)}"
        )
        return {STD_LOG: url}

    @router.get("/history/v1.0" + WS_PATH + "/runs/{run_id}/details")
    async def run_details(sub: str, rg: str, ws: str, run_id: str, request: Request) -> Response:
        claims = authenticate(state, request, ARM_AUDIENCE)
        found = find_workspace(state, sub, rg, ws)
        authorize(found, claims, "Microsoft.MachineLearningServices/workspaces/experiments/runs/read")
        job = found.jobs.get(run_id)
        if job is None:
            return JSONResponse(
                {"error": {"code": "UserError", "message": f"Run {run_id} was not found."}}, status_code=404
            )
        spec = job.spec
        return JSONResponse(
            {
                "runId": job.name,
                "runUuid": job.name,
                "status": job.status,
                "target": spec.get("computeId"),
                "createdTimeUtc": job.audit.created_at,
                "startTimeUtc": _iso(job.started_at),
                "endTimeUtc": _iso(job.ended_at),
                "error": {"error": job.error} if job.error else None,
                "warnings": [],
                "tags": spec.get("tags", {}),
                "properties": {k: str(v) for k, v in spec.get("properties", {}).items()},
                "parameters": dict(job.params),
                "services": {},
                "inputDatasets": [],
                "outputDatasets": [],
                "runDefinition": None,
                "logFiles": log_files(found, job),
            }
        )

    @router.get("/history/v1.0" + WS_PATH + "/runs/{run_id}/logs/{name:path}")
    async def run_log(sub: str, rg: str, ws: str, run_id: str, name: str, request: Request) -> Response:
        found = find_workspace(state, sub, rg, ws)
        job = found.jobs.get(run_id)
        if (
            job is None
            or name != STD_LOG
            or not hmac.compare_digest(request.query_params.get("sig", ""), _sig(found, run_id, name))
        ):
            return JSONResponse(
                {"error": {"code": "AuthenticationFailed", "message": "The SAS signature does not match."}},
                status_code=403,
            )
        return PlainTextResponse(log_text(job))

    return router
