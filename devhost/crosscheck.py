"""Every orchestration episode devhost runs on durabletask, decided again by the Python SDK the host runs.

durabletask decides each episode's actions from its past and new events. This turns those events
into the host's JSON history (`devhost.history`), calls the orchestrator function's handle the way
the Functions host does (schema V2 with V3, host-format failures), and requires the SDK to decide
the same: the same new actions in the same order with the same inputs, the same custom status, and
the same completion (output, continue-as-new input, or failure). A mismatch means the app would
behave differently on Azure than it just did here; tests fail on any.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb

from .discovery import FunctionApp
from .history import (
    CALL_ACTIVITY,
    CALL_SUB,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    EVENT_SENT,
    SUB_CREATED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    WAIT_FOR_EVENT,
    WHEN_ALL,
    WHEN_ANY,
    binding_context,
    to_host_events,
)

logger = logging.getLogger(__name__)

SCHEDULING = {TASK_SCHEDULED, SUB_CREATED, TIMER_CREATED, EVENT_SENT}
HOST_HANDLED = ("executionTerminated", "executionSuspended", "executionResumed")
OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"


@dataclass(frozen=True)
class Mismatch:
    instance_id: str
    orchestrator: str
    detail: str

    def __str__(self) -> str:
        return f"{self.orchestrator} {self.instance_id}: {self.detail}"


def _json(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _moment(text: str) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _flatten(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for action in actions:
        if action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            flat += _flatten(action.get("compoundActions", []))
        elif action.get("actionType") != WAIT_FOR_EVENT:  # waiting schedules nothing in the history
            flat.append(action)
    return flat


def _sdk_action(action: dict[str, Any]) -> tuple[Any, ...]:
    kind = action["actionType"]
    if kind == CALL_ACTIVITY:
        return ("activity", action["functionName"], _json(action.get("input")))
    if kind == CALL_SUB:
        return ("sub-orchestration", action["functionName"], action.get("instanceId"), _json(action.get("input")))
    if kind == CREATE_TIMER:
        return ("timer", _moment(action["fireAt"]))
    if kind == CONTINUE_AS_NEW:
        return ("continue-as-new", _json(action.get("input")))
    return ("unsupported", kind)


def _engine_action(action: pb.OrchestratorAction) -> tuple[Any, ...] | None:
    kind = action.WhichOneof("orchestratorActionType")
    if kind == "scheduleTask":
        return ("activity", action.scheduleTask.name, _json(action.scheduleTask.input.value or None))
    if kind == "createSubOrchestration":
        sub = action.createSubOrchestration
        return ("sub-orchestration", sub.name, sub.instanceId, _json(sub.input.value or None))
    if kind == "createTimer":
        return ("timer", action.createTimer.fireAt.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%f"))
    if (
        kind == "completeOrchestration"
        and action.completeOrchestration.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    ):
        return ("continue-as-new", _json(action.completeOrchestration.result.value or None))
    if kind == "completeOrchestration":
        return None  # compared separately
    return ("unsupported", kind)


class CrossCheck:
    """Replays episodes through the SDK; keeps the mismatches (thread-safe)."""

    def __init__(self, app: FunctionApp) -> None:
        self.functions = {f.name: f for f in app.orchestrators}
        self.episodes = 0
        self.mismatches: list[Mismatch] = []
        self._lock = threading.Lock()

    def check(self, request: pb.OrchestratorRequest, response: pb.OrchestratorResponse) -> None:
        try:
            problem = self._compare(request, response)
        except Exception as exc:  # a crash here is a finding too, never a reason to stop the host
            problem = (request.instanceId, "?", f"the cross-check failed: {type(exc).__name__}: {exc}")
        with self._lock:
            self.episodes += 1
            if problem is not None:
                mismatch = Mismatch(*problem)
                self.mismatches.append(mismatch)
                logger.error("engines disagree: %s", mismatch)

    def _compare(
        self, request: pb.OrchestratorRequest, response: pb.OrchestratorResponse
    ) -> tuple[str, str, str] | None:
        started = next(
            (e.executionStarted for e in [*request.pastEvents, *request.newEvents] if e.HasField("executionStarted")),
            None,
        )
        if started is None or started.name not in self.functions:
            return None
        name, instance = started.name, request.instanceId
        if any(e.WhichOneof("eventType") in HOST_HANDLED for e in [*request.pastEvents, *request.newEvents]):
            # DTFx handles termination and suspension itself; the host never runs the SDK for them, nor again after a
            # termination (the in-memory backend may still deliver a late activity result to a terminated instance).
            return None
        history = to_host_events(request.pastEvents, request.newEvents)
        context = binding_context(
            history,
            instance,
            started.input.value or None,
            started.parentInstance.orchestrationInstance.instanceId or None,
        )
        failed = False
        try:
            state = json.loads(self.functions[name].user_function(context))
        except Exception as exc:  # the orchestrator raised: the SDK reports its state after a marker
            failed = True
            text = str(exc)
            state = json.loads(text.split(OUT_OF_PROC_LABEL, 1)[1]) if OUT_OF_PROC_LABEL in text else {"actions": [[]]}
        scheduled = sum(1 for e in history if e["EventType"] in SCHEDULING)
        sdk = [_sdk_action(a) for a in _flatten([a for group in state.get("actions", []) for a in group])][scheduled:]
        engine = [a for a in (_engine_action(x) for x in response.actions) if a is not None]
        if sdk != engine:
            return instance, name, f"actions differ after {scheduled} scheduled: sdk {sdk} vs durabletask {engine}"
        completion = next(
            (
                a.completeOrchestration
                for a in response.actions
                if a.HasField("completeOrchestration")
                and a.completeOrchestration.orchestrationStatus != pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
            ),
            None,
        )
        engine_failed = completion is not None and completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
        if failed != engine_failed:
            return instance, name, f"failure differs: sdk failed={failed}, durabletask failed={engine_failed}"
        if not failed and bool(state.get("isDone")) != (
            completion is not None or any(a[0] == "continue-as-new" for a in engine)
        ):
            kinds = [e.WhichOneof("eventType") for e in request.newEvents]
            status = pb.OrchestrationStatus.Name(completion.orchestrationStatus) if completion is not None else None
            return (
                instance,
                name,
                (
                    f"completion differs: sdk isDone={state.get('isDone')}, durabletask {completion is not None} ({status}, "
                    f"new events {kinds}, {len(request.pastEvents)} past)"
                ),
            )
        if completion is not None and not failed and state.get("output") != _json(completion.result.value or None):
            return (
                instance,
                name,
                f"output differs: sdk {state.get('output')!r} vs durabletask {completion.result.value!r}",
            )
        engine_status = _json(response.customStatus.value or None)
        if state.get("customStatus") != engine_status:
            return (
                instance,
                name,
                f"custom status differs: sdk {state.get('customStatus')!r} vs durabletask {engine_status!r}",
            )
        return None
