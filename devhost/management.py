"""The Durable Functions instance-management HTTP API, served from durabletask's client.

Paths and shapes follow the documented API (`/runtime/webhooks/durabletask/...`, guarded by the
system key) and the extension's RPC surface that `azure.durable_functions.DurableOrchestrationClient`
calls. The real host serves that RPC surface to its own worker only; devhost puts it under a
per-process secret path (`/durabletask/{secret}/...`), handed to functions in their client binding
and to nobody else, so nothing on the machine can drive the engine without a key.

Status codes follow the extension: 202 with Location and Retry-After while an instance runs; 200
once it completed, failed or was terminated (500 for failed with
`returnInternalServerErrorOnFailure=true`); 404 for an unknown id. Answers are JSON with non-ASCII
escaped, so no stored value (not even a lone surrogate) can make a status answer fail.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import grpc
from durabletask import client as dtc
from durabletask.internal import orchestrator_service_pb2 as pb
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse as _JSONResponse
from fastapi.responses import Response
from google.protobuf.json_format import MessageToDict

STATUS_NAMES = {
    dtc.OrchestrationStatus.RUNNING: "Running",
    dtc.OrchestrationStatus.COMPLETED: "Completed",
    dtc.OrchestrationStatus.FAILED: "Failed",
    dtc.OrchestrationStatus.TERMINATED: "Terminated",
    dtc.OrchestrationStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    dtc.OrchestrationStatus.PENDING: "Pending",
    dtc.OrchestrationStatus.SUSPENDED: "Suspended",
}
RUNNING_NAMES = {"Running", "Pending", "ContinuedAsNew", "Suspended"}
REPLACEABLE = [pb.ORCHESTRATION_STATUS_COMPLETED, pb.ORCHESTRATION_STATUS_FAILED, pb.ORCHESTRATION_STATUS_TERMINATED]


class JSONResponse(_JSONResponse):
    """JSON with every non-ASCII character escaped: always encodable, whatever the instance holds."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() == "true"


class ManagementApi:
    """Builds the routers and the client-binding JSON for one host."""

    def __init__(
        self,
        client: dtc.TaskHubGrpcClient,
        *,
        base_url: str,
        task_hub: str,
        system_key: str,
        rpc_secret: str,
        orchestrator_names: set[str],
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.task_hub = task_hub
        self.system_key = system_key
        self.rpc_secret = rpc_secret
        self.orchestrators = orchestrator_names

    # ---- the client binding the host hands to starter functions --------------------------------

    def management_urls(self, instance_id: str) -> dict[str, str]:
        base = f"{self.base_url}/runtime/webhooks/durabletask/instances/{quote(instance_id, safe='')}"
        query = f"taskHub={self.task_hub}&connection=Storage&code={self.system_key}"
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{base}?{query}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{base}?{query}",
            "restartPostUri": f"{base}/restart?{query}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{query}",
        }

    def client_binding(self) -> str:
        placeholder = "INSTANCEID"
        query = f"taskHub={self.task_hub}&connection=Storage&code={self.system_key}"
        creation = f"{self.base_url}/runtime/webhooks/durabletask/orchestrators/{{functionName}}[/{{instanceId}}]?code={self.system_key}"
        return json.dumps(
            {
                "taskHubName": self.task_hub,
                "creationUrls": {
                    "createNewInstancePostUri": creation,
                    "createAndWaitOnNewInstancePostUri": f"{creation}&timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}",
                },
                "managementUrls": self.management_urls(placeholder),
                "baseUrl": f"{self.base_url}/runtime/webhooks/durabletask",
                "requiredQueryStringParameters": query,
                "rpcBaseUrl": f"{self.base_url}/durabletask/{self.rpc_secret}/",
                "httpBaseUrl": f"{self.base_url}/runtime/webhooks/durabletask",
            }
        )

    # ---- conversions ----------------------------------------------------------------------------

    def status_body(
        self, state: dtc.OrchestrationState, *, show_input: bool, history: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        name = STATUS_NAMES.get(state.runtime_status, str(state.runtime_status))
        output = _json(state.serialized_output)
        if name == "Failed" and state.failure_details is not None:
            output = f"{state.failure_details.error_type}: {state.failure_details.message}"
        body: dict[str, Any] = {
            "name": state.name,
            "instanceId": state.instance_id,
            "runtimeStatus": name,
            "input": _json(state.serialized_input) if show_input else None,
            "customStatus": _json(state.serialized_custom_status),
            "output": output,
            "createdTime": _iso(state.created_at),
            "lastUpdatedTime": _iso(state.last_updated_at),
        }
        if history is not None:
            body["historyEvents"] = history
        return body

    def history(self, instance_id: str, with_output: bool) -> list[dict[str, Any]]:
        events = []
        for event in self.client._stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId=instance_id)):
            for item in event.events:
                raw = MessageToDict(item)
                kind = next((k for k in raw if k not in ("eventId", "timestamp")), "unknown")
                if kind in ("orchestratorStarted", "orchestratorCompleted"):
                    continue  # episode markers: the extension leaves them out of historyEvents
                detail = raw.get(kind, {}) if isinstance(raw.get(kind), dict) else {}
                entry: dict[str, Any] = {"EventType": kind[0].upper() + kind[1:], "Timestamp": raw.get("timestamp")}
                if "name" in detail:
                    entry["FunctionName"] = detail["name"]
                if with_output:
                    for source, target in (("input", "Input"), ("result", "Result"), ("output", "Output")):
                        if source in detail:
                            entry[target] = _json(detail[source])
                events.append(entry)
        return events

    # ---- routes ---------------------------------------------------------------------------------

    def router(self, prefix: str, *, require_key: bool) -> APIRouter:
        """The API under `prefix`: with the system key required, or (the RPC surface) behind the secret path."""
        router = APIRouter(prefix=prefix)

        def authorised(request: Request) -> bool:
            if require_key:
                return secrets.compare_digest(
                    request.query_params.get("code") or request.headers.get("x-functions-key") or "", self.system_key
                )
            return True  # reachable only through the secret path prefix

        def unauthorised() -> Response:
            return Response(status_code=401)

        @router.post("/orchestrators/{name}")
        @router.post("/orchestrators/{name}/{instance_id}")
        async def start(name: str, request: Request, instance_id: str | None = None) -> Response:
            if not authorised(request):
                return unauthorised()
            if name not in self.orchestrators:
                return JSONResponse(
                    {
                        "Message": "One or more of the arguments submitted is incorrect",
                        "ExceptionMessage": f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.",
                    },
                    status_code=400,
                )
            raw = await request.body()
            payload = _json(raw.decode() if raw else None)
            try:
                new_id = await asyncio.to_thread(
                    self.client.schedule_new_orchestration,
                    name,
                    input=payload,
                    instance_id=instance_id,
                    reuse_id_policy=pb.OrchestrationIdReusePolicy(replaceableStatus=REPLACEABLE),
                )
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                    return JSONResponse(
                        {"Message": f"An instance with ID '{instance_id}' already exists and is running."},
                        status_code=409,
                    )
                raise
            urls = self.management_urls(new_id)
            return JSONResponse(
                urls, status_code=202, headers={"Location": urls["statusQueryGetUri"], "Retry-After": "10"}
            )

        @router.get("/instances/{instance_id}")
        async def status(instance_id: str, request: Request) -> Response:
            if not authorised(request):
                return unauthorised()
            state = await asyncio.to_thread(self.client.get_orchestration_state, instance_id)
            if state is None:
                return Response(status_code=404)
            history = None
            if _flag(request, "showHistory"):
                history = await asyncio.to_thread(self.history, instance_id, _flag(request, "showHistoryOutput"))
            body = self.status_body(
                state, show_input=request.query_params.get("showInput", "true").lower() != "false", history=history
            )
            name = body["runtimeStatus"]
            if name in RUNNING_NAMES:
                url = self.management_urls(instance_id)["statusQueryGetUri"]
                return JSONResponse(body, status_code=202, headers={"Location": url, "Retry-After": "10"})
            if name == "Failed" and _flag(request, "returnInternalServerErrorOnFailure"):
                return JSONResponse(body, status_code=500)
            return JSONResponse(body, status_code=200)

        @router.get("/instances/")
        @router.get("/instances")
        async def query(request: Request) -> Response:
            if not authorised(request):
                return unauthorised()
            wanted = {s for s in request.query_params.get("runtimeStatus", "").split(",") if s}
            prefix = request.query_params.get("instanceIdPrefix", "")
            states = await asyncio.to_thread(self.client.get_all_orchestration_states)
            bodies = [
                self.status_body(s, show_input=_flag(request, "showInput"), history=None)
                for s in states
                if s.instance_id.startswith(prefix)
            ]
            bodies = [b for b in bodies if not wanted or b["runtimeStatus"] in wanted]
            top = request.query_params.get("top")
            return JSONResponse(bodies[: int(top)] if top and top.isdigit() else bodies)

        async def _existing(instance_id: str) -> dtc.OrchestrationState | None:
            return await asyncio.to_thread(self.client.get_orchestration_state, instance_id, fetch_payloads=False)

        async def refuse_unless_running(instance_id: str, request: Request) -> Response | None:
            """401 without the key, 404 for an unknown instance, 410 for one that has ended; else None."""
            if not authorised(request):
                return unauthorised()
            state = await _existing(instance_id)
            if state is None:
                return Response(status_code=404)
            if STATUS_NAMES.get(state.runtime_status) not in RUNNING_NAMES:
                return Response(status_code=410)
            return None

        @router.post("/instances/{instance_id}/raiseEvent/{event}")
        async def raise_event(instance_id: str, event: str, request: Request) -> Response:
            if refused := await refuse_unless_running(instance_id, request):
                return refused
            raw = await request.body()
            await asyncio.to_thread(
                self.client.raise_orchestration_event, instance_id, event, data=_json(raw.decode() if raw else None)
            )
            return Response(status_code=202)

        @router.post("/instances/{instance_id}/terminate")
        async def terminate(instance_id: str, request: Request) -> Response:
            if refused := await refuse_unless_running(instance_id, request):
                return refused
            await asyncio.to_thread(
                self.client.terminate_orchestration, instance_id, output=request.query_params.get("reason")
            )
            return Response(status_code=202)

        @router.post("/instances/{instance_id}/suspend")
        @router.post("/instances/{instance_id}/resume")
        async def suspend_or_resume(instance_id: str, request: Request) -> Response:
            if refused := await refuse_unless_running(instance_id, request):
                return refused
            reason = request.query_params.get("reason")
            if request.url.path.endswith("/suspend"):
                await asyncio.to_thread(self.client.suspend_orchestration, instance_id, reason=reason)
            else:
                await asyncio.to_thread(self.client.resume_orchestration, instance_id, reason=reason)
            return Response(status_code=202)

        @router.delete("/instances/")
        @router.delete("/instances")
        async def purge_by_filter(request: Request) -> Response:
            """Purge-by-filter: ended instances created in [createdTimeFrom, createdTimeTo) with a listed runtimeStatus."""
            if not authorised(request):
                return unauthorised()
            try:
                created_from = _moment(request.query_params.get("createdTimeFrom"))
                created_to = _moment(request.query_params.get("createdTimeTo"))
            except ValueError:
                return JSONResponse(
                    {"Message": "createdTimeFrom and createdTimeTo must be ISO 8601 times"}, status_code=400
                )
            if created_from is None:
                return JSONResponse({"Message": "createdTimeFrom is required"}, status_code=400)
            names = {s for s in request.query_params.get("runtimeStatus", "").split(",") if s}
            wanted = [
                status for status, name in STATUS_NAMES.items() if name in names and name not in RUNNING_NAMES
            ] or None
            if names and not wanted:
                return JSONResponse({"instancesDeleted": 0})
            result = await asyncio.to_thread(self.client.purge_orchestrations_by, created_from, created_to, wanted)
            if result.deleted_instance_count == 0:
                return Response(status_code=404)  # as the extension answers when nothing matched
            return JSONResponse({"instancesDeleted": result.deleted_instance_count})

        @router.delete("/instances/{instance_id}")
        async def purge(instance_id: str, request: Request) -> Response:
            if not authorised(request):
                return unauthorised()
            if await _existing(instance_id) is None:
                return Response(status_code=404)
            result = await asyncio.to_thread(self.client.purge_orchestration, instance_id)
            return JSONResponse({"instancesDeleted": result.deleted_instance_count})

        return router
