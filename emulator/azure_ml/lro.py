"""Long-running operations: how a resource gets to Succeeded/Failed, and the two ways to poll it.

- PUT answers with `Azure-AsyncOperation` (…/mfeOperationsStatus/{id}); GET there answers
  `{id, name, status: InProgress|Succeeded|Failed, startTime, endTime?, error?}`, with `Retry-After`
  while InProgress.
- DELETE, PATCH and POST actions answer 202 with `Location` (…/mfeOperationResults/{id}) and
  `Retry-After`; GET there answers 202 (with the same headers) while in progress, then 200
  (204 for a delete), or the operation's error with status 400 if it failed.
- `Retry-After` (seconds, `retry_after_s`, default 1) is on every answer that asks the client to poll:
  the 202s and their Location polls, the PUT's 200/201 with Azure-AsyncOperation and its status polls
  while InProgress. What the service does: the Microsoft.MachineLearningServices specs
  (azure-rest-api-specs, `mfe.json`/`openapi.json`) declare `Retry-After` on the 202 answers of
  DELETE, PATCH and POST actions, with a range of 10-600 s; ARM's async-operation contract
  (azure-resource-manager-rpc, "Asynchronous operations") lets a service send it on the initial answer
  and on each status poll, and azure-core's pollers honour it there. The emulator sends 1 s, not 10,
  so clients (the SDK's default is 30 s without the header) do not wait in tests.
- A resource's provisioningState becomes terminal when its operation does, or `busy_after_s`
  later (to mimic the window in which the service still reports it busy).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..blobs import StorageError
from .arm import ARM_AUDIENCE, answer, authenticate, authorize, check_api_version
from .errors import AmlError, not_found
from .resources import Deployment, Endpoint, Operation, Workspace
from .state import AzureMlState

logger = logging.getLogger(__name__)

OPS = "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}"


def provision(
    state: AzureMlState,
    ws: Workspace,
    resource: Endpoint | Deployment,
    kind: str,
    status: str,
    work: Callable[[], dict[str, str] | None] | None = None,
    on_success: Callable[[], None] | None = None,
) -> Operation:
    """Put `resource` in `status` (Creating, Updating, Scaling) and settle it after `lro_s`.

    `work` runs first (e.g. loading the model); an error it returns or raises makes the resource
    and the operation Failed, and `on_success` does not run.
    """
    op = state.start_operation(ws, kind)
    with state.lock:
        resource.state = status

    def complete() -> None:
        try:
            error = work() if work else None
        except StorageError as exc:
            error = {"code": exc.code, "message": exc.message}
        except Exception as exc:
            logger.exception("provisioning %s failed", resource.name)
            error = {"code": "ServiceError", "message": f"Internal error ({type(exc).__name__})."}
        if error is not None:
            with state.lock:
                resource.state = "Failed"
            state.finish_operation(op, error)
            return
        if on_success is not None:
            on_success()
        settle_after = state.timings.busy_after_s
        if settle_after <= 0:
            with state.lock:
                resource.state = "Succeeded"
        state.finish_operation(op)
        if settle_after > 0:
            state.scheduler.call_later(settle_after, setattr, resource, "state", "Succeeded")

    state.scheduler.call_later(state.timings.lro_s, complete)
    return op


def delete_later(
    state: AzureMlState, ws: Workspace, resource: Endpoint | Deployment, kind: str, remove: Callable[[], object]
) -> Operation:
    """Put `resource` in Deleting and run `remove` after `delete_s`."""
    op = state.start_operation(ws, kind, done_status=204)
    with state.lock:
        resource.state = "Deleting"

    def complete() -> None:
        with state.lock:
            remove()
        state.finish_operation(op)

    state.scheduler.call_later(state.timings.delete_s, complete)
    return op


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()

    def operation(sub: str, op_id: str, request: Request) -> Operation:
        check_api_version(request)
        claims = authenticate(state, request, ARM_AUDIENCE)
        op = state.operations.get(op_id)
        ws = state.workspace_named(op.workspace) if op is not None else None
        if op is None or ws is None or op.subscription.lower() != sub.lower():
            raise not_found(f"Operation {op_id} was not found.")
        request.state.aml_location = ws.cfg.location
        authorize(ws, claims, "Microsoft.MachineLearningServices/locations/operations/read")
        return op

    @router.get(OPS + "/mfeOperationsStatus/{op_id}")
    async def operation_status(sub: str, loc: str, op_id: str, request: Request) -> Response:
        op = operation(sub, op_id, request)
        await state.faults.inject(op.workspace, "operations.read")
        body: dict[str, Any] = {
            "id": f"/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}"
            f"/mfeOperationsStatus/{op_id}",
            "name": op_id,
            "status": op.status,
            "startTime": _iso(op.started),
        }
        if op.ended is not None:
            body["endTime"] = _iso(op.ended)
        if op.error is not None:
            body["error"] = op.error
        retry = {"Retry-After": str(state.timings.retry_after_s)} if op.status == "InProgress" else None
        return answer(body, headers=retry)

    @router.get(OPS + "/mfeOperationResults/{op_id}")
    async def operation_result(sub: str, loc: str, op_id: str, request: Request) -> Response:
        op = operation(sub, op_id, request)
        await state.faults.inject(op.workspace, "operations.read")
        if op.status == "InProgress":
            return answer(None, 202, state.location_headers(op))
        if op.error is not None:
            raise AmlError(
                400, "UserError", op.error.get("message", "The operation failed."), inner=op.error.get("code")
            )
        return answer(None, op.done_status)

    return router
