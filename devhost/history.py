"""Durable histories in the Functions host's form: what the Durable extension sends the Python SDK.

The extension serialises DTFx history events to JSON (`EventType` numbers, `EventId`, `IsPlayed`,
`Timestamp` and each type's fields) and sends them with `upperSchemaVersion` V2 and
`upperSchemaVersionNew` V3 (`OrchestrationTriggerAttributeBindingProvider`). A failed activity's
TaskFailed event carries `Reason` = `Activity function 'x' failed: <message>` and `Details` = the
.NET exception serialised to JSON (`TaskActivityShim`); for a Python worker the message is
`<ExceptionType>: <text>`, cut out of the worker's `Result: Failure\\nException: ...\\nStack: ...`
(`OutOfProcExceptionHelpers`). This module builds both from durabletask's protobuf events, for
devhost's engine (so failures reach orchestrators exactly as on Azure) and for the cross-check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb

SCHEMA = {"upperSchemaVersion": 1, "upperSchemaVersionNew": 2}  # ReplaySchema V2 and V3, as the extension sends them
# The extension's timer limits for the Azure Storage provider: longer timers are split by the SDK.
TIMER_LIMITS = {"maximumShortTimerDuration": "6.00:00:00", "longRunningTimerIntervalDuration": "3.00:00:00"}

EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_TERMINATED = 0, 1, 3
TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED = 10, 11
ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 12, 13
EVENT_SENT, EVENT_RAISED = 14, 15
EXECUTION_SUSPENDED, EXECUTION_RESUMED = 19, 20

# The SDK's action types, as an orchestrator's state lists them.
CALL_ACTIVITY, CALL_SUB, CONTINUE_AS_NEW, CREATE_TIMER, WAIT_FOR_EVENT, WHEN_ANY, WHEN_ALL = 0, 2, 4, 5, 6, 11, 12
SCHEDULING = (CALL_ACTIVITY, CALL_SUB, CREATE_TIMER)  # the actions that add a scheduling event to the history


def flatten(actions: list[Any]) -> list[dict[str, Any]]:
    """An orchestrator state's actions as the extension runs them: groups and compound actions opened, in order."""
    flat: list[dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            flat += flatten(action)
        elif action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            flat += flatten(action.get("compoundActions", []))
        else:
            flat.append(action)
    return flat


def timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_failure(kind: str, name: str, error_type: str, message: str, stack: str = "") -> tuple[str, str]:
    """`(Reason, Details)` of a TaskFailed / SubOrchestrationInstanceFailed event as the host writes them.

    `kind` is "Activity" or "Orchestrator"; `error_type` may be qualified (durabletask's form).
    """
    friendly = f" {error_type.rsplit('.', 1)[-1]}: {message}"
    worker = f"Result: Failure\nException:{friendly}\nStack: {stack}"
    details = {
        "$type": "System.Exception, System.Private.CoreLib",
        "ClassName": "System.Exception",
        "Message": friendly,
        "Data": None,
        "InnerException": {
            "$type": "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException, Microsoft.Azure.WebJobs.Script",
            "ClassName": "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException",
            "Message": worker,
            "Data": None,
            "InnerException": None,
            "HelpURL": None,
            "StackTraceString": None,
            "HResult": -2146233088,
        },
        "HelpURL": None,
        "StackTraceString": None,
        "HResult": -2146233088,
        "Source": None,
    }
    return f"{kind} function '{name}' failed: {friendly}", json.dumps(details)


def sdk_exception(reason: str, details: str) -> Exception:
    """What azure-functions-durable 1.x raises into the orchestrator for a failed task."""
    return Exception(f"{reason} \n {details}")


def _value(wrapper: Any) -> str | None:
    return wrapper.value if wrapper is not None and wrapper.ByteSize() else None


SCHEDULING_KINDS = ("taskScheduled", "subOrchestrationInstanceCreated", "timerCreated", "eventSent")


def to_host_events(past: Iterable[pb.HistoryEvent], new: Iterable[pb.HistoryEvent]) -> list[dict[str, Any]]:
    """durabletask's past and new events as the host's JSON history (past events played).

    durabletask numbers scheduled tasks from 1 (and gives completing the orchestration a number);
    DTFx numbers them from 0, and the SDK counts on it: ids are renumbered in scheduling order.
    """
    names: dict[int, tuple[str, str]] = {}  # host sequence id -> (kind, function name), for failure reasons
    ids: dict[int, int] = {}  # durabletask sequence id -> host sequence id
    events = []
    for played, source in ((True, list(past)), (False, list(new))):
        for event in source:
            event_id = event.eventId
            if event.WhichOneof("eventType") in SCHEDULING_KINDS:
                event_id = ids.setdefault(event.eventId, len(ids))
            converted = _convert(event, names, ids, event_id)
            if converted is not None:
                converted.update(EventId=event_id, IsPlayed=played, Timestamp=timestamp(event.timestamp.ToDatetime()))
                events.append(converted)
    return events


def _convert(
    event: pb.HistoryEvent, names: dict[int, tuple[str, str]], ids: dict[int, int], event_id: int
) -> dict[str, Any] | None:
    kind = event.WhichOneof("eventType")
    if kind == "executionStarted":
        e = event.executionStarted
        return {
            "EventType": EXECUTION_STARTED,
            "Name": e.name,
            "Input": _value(e.input),
            "Version": _value(e.version) or "",
        }
    if kind == "orchestratorStarted":
        return {"EventType": ORCHESTRATOR_STARTED}
    if kind == "orchestratorCompleted":
        return {"EventType": ORCHESTRATOR_COMPLETED}
    if kind == "taskScheduled":
        names[event_id] = ("Activity", event.taskScheduled.name)
        return {
            "EventType": TASK_SCHEDULED,
            "Name": event.taskScheduled.name,
            "Input": _value(event.taskScheduled.input),
        }
    if kind == "taskCompleted":
        return {
            "EventType": TASK_COMPLETED,
            "TaskScheduledId": ids.get(event.taskCompleted.taskScheduledId, -1),
            "Result": _value(event.taskCompleted.result),
        }
    if kind == "taskFailed":
        return _failed(
            TASK_FAILED, ids.get(event.taskFailed.taskScheduledId, -1), event.taskFailed.failureDetails, names
        )
    if kind == "subOrchestrationInstanceCreated":
        e = event.subOrchestrationInstanceCreated
        names[event_id] = ("Orchestrator", e.name)
        return {"EventType": SUB_CREATED, "Name": e.name, "InstanceId": e.instanceId, "Input": _value(e.input)}
    if kind == "subOrchestrationInstanceCompleted":
        e = event.subOrchestrationInstanceCompleted
        return {
            "EventType": SUB_COMPLETED,
            "TaskScheduledId": ids.get(e.taskScheduledId, -1),
            "Result": _value(e.result),
        }
    if kind == "subOrchestrationInstanceFailed":
        e = event.subOrchestrationInstanceFailed
        return _failed(SUB_FAILED, ids.get(e.taskScheduledId, -1), e.failureDetails, names)
    if kind == "timerCreated":
        return {"EventType": TIMER_CREATED, "FireAt": timestamp(event.timerCreated.fireAt.ToDatetime())}
    if kind == "timerFired":
        return {
            "EventType": TIMER_FIRED,
            "TimerId": ids.get(event.timerFired.timerId, -1),
            "FireAt": timestamp(event.timerFired.fireAt.ToDatetime()),
        }
    if kind == "eventRaised":
        return {"EventType": EVENT_RAISED, "Name": event.eventRaised.name, "Input": _value(event.eventRaised.input)}
    if kind == "eventSent":
        return {
            "EventType": EVENT_SENT,
            "Name": event.eventSent.name,
            "InstanceId": event.eventSent.instanceId,
            "Input": _value(event.eventSent.input),
        }
    if kind == "executionCompleted":
        return {
            "EventType": EXECUTION_COMPLETED,
            "OrchestrationStatus": int(event.executionCompleted.orchestrationStatus),
            "Result": _value(event.executionCompleted.result),
        }
    if kind == "executionTerminated":
        return {"EventType": EXECUTION_TERMINATED, "Input": _value(event.executionTerminated.input)}
    if kind == "executionSuspended":
        return {"EventType": EXECUTION_SUSPENDED}
    if kind == "executionResumed":
        return {"EventType": EXECUTION_RESUMED}
    return None  # event types the SDK ignores (generic, history state, entity operations)


def _failed(
    event_type: int, task_id: int, details: pb.TaskFailureDetails, names: dict[int, tuple[str, str]]
) -> dict[str, Any]:
    kind, name = names.get(task_id, ("Activity", "unknown"))
    reason, serialised = host_failure(
        kind, name, details.errorType, details.errorMessage, _value(details.stackTrace) or ""
    )
    return {"EventType": event_type, "TaskScheduledId": task_id, "Reason": reason, "Details": serialised}


def binding_context(
    history: list[dict[str, Any]],
    instance_id: str,
    orchestration_input: str | None,
    parent_instance_id: str | None = None,
) -> str:
    """The JSON the host passes the orchestrator function for one episode."""
    return json.dumps(
        {
            "history": history,
            "instanceId": instance_id,
            "isReplaying": any(e["IsPlayed"] for e in history),
            "parentInstanceId": parent_instance_id,
            "input": orchestration_input,
            **SCHEMA,
            **TIMER_LIMITS,
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )
