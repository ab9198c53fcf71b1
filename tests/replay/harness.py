"""Drive an orchestrator through azure-functions-durable's own replay (`Orchestrator.handle`), as the host does.

The harness plays the Durable extension's part and only that: for each episode it sends the whole
history with the protocol the extension uses (`devhost.history`: schema V2 with V3, timer limits,
`IsPlayed` on earlier events), reads back the actions, and records the scheduling events for the
new ones (TaskScheduled, SubOrchestrationInstanceCreated, TimerCreated, in order, numbered as DTFx
numbers them; compound WhenAll/WhenAny actions are flattened, waits schedule nothing). Then it
delivers what the scenario says: activity and sub-orchestration results or host-format failures,
external events, and otherwise the earliest pending timer. The SDK does all the replaying.

Every step also checks determinism: the same history twice gives the same state, and a replay
never changes earlier actions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.discovery import FunctionSpec
from devhost.history import (
    CALL_ACTIVITY,
    CALL_SUB,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    EVENT_RAISED,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    SUB_COMPLETED,
    SUB_CREATED,
    SUB_FAILED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    WHEN_ALL,
    WHEN_ANY,
    binding_context,
    flatten,
    host_failure,
    timestamp,
)

Answer = tuple[str, Any]  # ("ok", result), ("fail", message) or ("fail", (error type, message))
Responder = Callable[[str, Any], Answer | None]  # None: leave the call running for now


def _scheduling(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in actions if a["actionType"] in (CALL_ACTIVITY, CALL_SUB, CREATE_TIMER)]


@dataclass
class ReplayRun:
    states: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # every scheduling action, in order
    calls: list[tuple[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    compound: int = 0  # WhenAny / WhenAll actions the orchestration yielded

    @property
    def final(self) -> dict[str, Any]:
        return self.states[-1]

    @property
    def output(self) -> Any:
        return self.final.get("output")

    @property
    def continued_with(self) -> Any:
        """The continue-as-new input, if the orchestration continued as new."""
        found = [a for a in flatten(self.final.get("actions", [])) if a["actionType"] == CONTINUE_AS_NEW]
        return json.loads(found[0]["input"]) if found and found[0].get("input") else None

    def called(self, name: str) -> list[Any]:
        return [payload for called, payload in self.calls if called == name]

    def timers(self) -> list[datetime]:
        return [
            datetime.fromisoformat(a["fireAt"].replace("Z", "+00:00"))
            for a in self.actions
            if a["actionType"] == CREATE_TIMER
        ]


def _completion(task_id: int, action: dict[str, Any], answer: Answer, clock: datetime) -> dict[str, Any]:
    is_sub = action["actionType"] == CALL_SUB
    base = {"EventId": -1, "IsPlayed": False, "Timestamp": timestamp(clock), "TaskScheduledId": task_id}
    if answer[0] == "ok":
        return base | {"EventType": SUB_COMPLETED if is_sub else TASK_COMPLETED, "Result": json.dumps(answer[1])}
    error_type, message = answer[1] if isinstance(answer[1], tuple) else ("ServiceError", answer[1])
    reason, details = host_failure(
        "Orchestrator" if is_sub else "Activity", action["functionName"], error_type, message
    )
    return base | {"EventType": SUB_FAILED if is_sub else TASK_FAILED, "Reason": reason, "Details": details}


def replay(
    function: FunctionSpec,
    orchestration_input: Any,
    respond: Responder,
    *,
    events: dict[int, list[tuple[str, Any]]] | None = None,
    instance_id: str = "retrain-test",
    max_steps: int = 400,
    start: datetime | None = None,
) -> ReplayRun:
    """Run `function` until it completes or continues as new; `events[step]` are raised before that step."""
    handle = function.user_function
    clock = start or datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    encoded_input = json.dumps(orchestration_input)
    history: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = [
        {"EventType": ORCHESTRATOR_STARTED, "EventId": -1, "IsPlayed": False, "Timestamp": timestamp(clock)},
        {
            "EventType": 0,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": timestamp(clock),
            "Name": function.name,
            "Input": encoded_input,
            "Version": "",
        },
    ]
    run = ReplayRun()
    pending: dict[int, dict[str, Any]] = {}  # task id -> scheduling action
    for step in range(max_steps):
        for name, payload in (events or {}).get(step, []):
            new.append(
                {
                    "EventType": EVENT_RAISED,
                    "EventId": -1,
                    "IsPlayed": False,
                    "Timestamp": timestamp(clock),
                    "Name": name,
                    "Input": json.dumps(payload),
                }
            )
        context = binding_context(history + new, instance_id, encoded_input)
        first, second = handle(context), handle(context)
        assert first == second, f"step {step}: the same history produced different states"
        state = json.loads(first)
        flat = flatten(state.get("actions", []))
        run.compound = sum(
            1
            for group in state.get("actions", [])
            for a in (group if isinstance(group, list) else [group])
            if a.get("actionType") in (WHEN_ANY, WHEN_ALL)
        )
        scheduling = _scheduling(flat)
        previous = [{k: v for k, v in a.items() if k != "isCanceled"} for a in run.actions]
        assert [{k: v for k, v in a.items() if k != "isCanceled"} for a in scheduling[: len(previous)]] == previous, (
            f"step {step}: replay changed earlier actions"
        )
        run.states.append(state)
        fresh = scheduling[len(run.actions) :]
        for event in new:
            event["IsPlayed"] = True
        history += new
        for action in fresh:
            task_id = len(run.actions)
            run.actions.append(action)
            if action["actionType"] == CALL_ACTIVITY:
                history.append(
                    {
                        "EventType": TASK_SCHEDULED,
                        "EventId": task_id,
                        "IsPlayed": True,
                        "Timestamp": timestamp(clock),
                        "Name": action["functionName"],
                        "Input": action.get("input"),
                    }
                )
            elif action["actionType"] == CALL_SUB:
                history.append(
                    {
                        "EventType": SUB_CREATED,
                        "EventId": task_id,
                        "IsPlayed": True,
                        "Timestamp": timestamp(clock),
                        "Name": action["functionName"],
                        "InstanceId": action.get("instanceId"),
                        "Input": action.get("input"),
                    }
                )
            else:
                history.append(
                    {
                        "EventType": TIMER_CREATED,
                        "EventId": task_id,
                        "IsPlayed": True,
                        "Timestamp": timestamp(clock),
                        "FireAt": action["fireAt"],
                    }
                )
            pending[task_id] = action
        history.append(
            {"EventType": ORCHESTRATOR_COMPLETED, "EventId": -1, "IsPlayed": True, "Timestamp": timestamp(clock)}
        )
        run.history = history
        if state.get("isDone") or any(a["actionType"] == CONTINUE_AS_NEW for a in flat):
            return run
        clock += timedelta(milliseconds=10)
        new = [{"EventType": ORCHESTRATOR_STARTED, "EventId": -1, "IsPlayed": False, "Timestamp": timestamp(clock)}]
        answered = False
        for task_id, action in sorted(pending.items()):
            if action["actionType"] == CREATE_TIMER:
                continue
            payload = json.loads(action["input"]) if action.get("input") else None
            answer = respond(action["functionName"], payload)
            if answer is None:
                continue
            run.calls.append((action["functionName"], payload))
            del pending[task_id]
            answered = True
            new.append(_completion(task_id, action, answer, clock))
        if answered or (events or {}).get(step + 1):
            continue
        timers = sorted((a["fireAt"], i) for i, a in pending.items() if a["actionType"] == CREATE_TIMER)
        if not timers:
            raise AssertionError(f"step {step}: the orchestration waits on nothing the scenario can answer")
        fire_at, task_id = timers[0]
        clock = max(clock, datetime.fromisoformat(fire_at.replace("Z", "+00:00")))
        new[0]["Timestamp"] = timestamp(clock)
        new.append(
            {
                "EventType": TIMER_FIRED,
                "EventId": -1,
                "IsPlayed": False,
                "Timestamp": timestamp(clock),
                "TimerId": task_id,
                "FireAt": fire_at,
            }
        )
        del pending[task_id]
    raise AssertionError(f"the orchestration did not finish within {max_steps} steps")


@dataclass
class Chain:
    """An orchestration followed through its continue-as-new executions, each replayed as the host would."""

    executions: list[ReplayRun]

    @property
    def output(self) -> Any:
        return self.executions[-1].output

    @property
    def final(self) -> dict[str, Any]:
        return self.executions[-1].final

    @property
    def calls(self) -> list[tuple[str, Any]]:
        return [c for run in self.executions for c in run.calls]

    def called(self, name: str) -> list[Any]:
        return [payload for called, payload in self.calls if called == name]

    def timers(self) -> list[datetime]:
        return [t for run in self.executions for t in run.timers()]

    @property
    def compound(self) -> int:
        return max(run.compound for run in self.executions)

    @property
    def largest_history(self) -> int:
        return max(len(run.history) for run in self.executions)


def replay_chain(
    function: FunctionSpec,
    orchestration_input: Any,
    respond: Responder,
    *,
    max_executions: int = 100,
    start: datetime | None = None,
    **kwargs: Any,
) -> Chain:
    """`replay`, then again with each continue-as-new input, from the moment the last execution ended."""
    clock = start or datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    given, executions = orchestration_input, []
    for _ in range(max_executions):
        run = replay(function, given, respond, start=clock, **kwargs)
        executions.append(run)
        given = run.continued_with
        if given is None:
            return Chain(executions)
        clock = max(datetime.fromisoformat(e["Timestamp"].replace("Z", "+00:00")) for e in run.history)
    raise AssertionError(f"the orchestration did not finish within {max_executions} executions")
