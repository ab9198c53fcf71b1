"""Drive an orchestrator through azure-functions-durable's own replay (`Orchestrator.handle`).

Each step builds the history the Durable extension would send (OrchestratorStarted, the events of
earlier episodes marked as played, then the new completions), calls the same handle the Functions
host calls, and checks determinism: the same history twice gives the same state, and every replay
reproduces all earlier actions in order. A scenario answers each scheduled activity and
sub-orchestration; timers fire when nothing else is pending; events arrive when the scenario says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.discovery import FunctionSpec

Answer = tuple[str, Any]  # ("ok", result) or ("fail", message)
Responder = Callable[[str, Any], Answer | None]

ACTIVITY, ACTIVITY_RETRY, SUB, SUB_RETRY, CONTINUE_AS_NEW, TIMER, EVENT = 0, 1, 2, 3, 4, 5, 6


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _flatten(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [action for group in state.get("actions", []) for action in group]


def _comparable(action: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in action.items() if k != "isCanceled"}


@dataclass
class ReplayRun:
    states: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.states[-1]

    @property
    def output(self) -> Any:
        return self.final.get("output")

    def called(self, name: str) -> list[Any]:
        return [payload for called, payload in self.calls if called == name]


def _completion(task_id: int, answer: Answer, is_sub: bool, clock: datetime) -> dict[str, Any]:
    if answer[0] == "ok":
        return {"EventType": 8 if is_sub else 5, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock),
                "TaskScheduledId": task_id, "Result": json.dumps(answer[1])}
    return {"EventType": 9 if is_sub else 6, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock),
            "TaskScheduledId": task_id, "Reason": answer[1], "Details": "replay test failure"}


def replay(function: FunctionSpec, orchestration_input: Any, respond: Responder, *,
           events: dict[int, list[tuple[str, Any]]] | None = None, instance_id: str = "retrain-test",
           max_steps: int = 200, start: datetime | None = None) -> ReplayRun:
    """Run `function` to completion (or continue-as-new) under `respond`; `events[step]` raises events before that step."""
    handle = function.user_function
    clock = start or datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    history: list[dict[str, Any]] = []
    new_events: list[dict[str, Any]] = [
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock)},
        {"EventType": 0, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock), "Name": function.name,
         "Input": json.dumps(orchestration_input), "Version": ""},
    ]
    run = ReplayRun()
    pending: dict[int, dict[str, Any]] = {}  # sequence id -> action
    next_id = 0
    for step in range(max_steps):
        for name, payload in (events or {}).get(step, []):
            new_events.append({"EventType": 15, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock),
                               "Name": name, "Input": json.dumps(payload)})
        full = history + new_events
        context = json.dumps({"history": full, "instanceId": instance_id, "isReplaying": bool(history),
                              "parentInstanceId": None, "input": json.dumps(orchestration_input), "upperSchemaVersion": 0})
        first, second = handle(context), handle(context)
        assert first == second, f"step {step}: the same history produced different states"
        state = json.loads(first)
        actions = _flatten(state)
        previous = [_comparable(a) for a in run.actions]
        assert [_comparable(a) for a in actions[: len(previous)]] == previous, f"step {step}: replay changed earlier actions"
        run.states.append(state)
        fresh = actions[len(run.actions):]
        run.actions = actions
        for event in full:
            event["IsPlayed"] = True
        history = full
        for action in fresh:
            kind = action["actionType"]
            if kind in (ACTIVITY, ACTIVITY_RETRY):
                history.append({"EventType": 4, "EventId": next_id, "IsPlayed": True, "Timestamp": _ts(clock),
                                "Name": action["functionName"], "Input": action.get("input")})
            elif kind in (SUB, SUB_RETRY):
                history.append({"EventType": 7, "EventId": next_id, "IsPlayed": True, "Timestamp": _ts(clock),
                                "Name": action["functionName"], "InstanceId": action.get("instanceId"), "Input": action.get("input")})
            elif kind == TIMER:
                history.append({"EventType": 10, "EventId": next_id, "IsPlayed": True, "Timestamp": _ts(clock), "FireAt": action["fireAt"]})
            else:
                continue
            pending[next_id] = action
            next_id += 1
        history.append({"EventType": 13, "EventId": -1, "IsPlayed": True, "Timestamp": _ts(clock)})
        if state.get("isDone") or any(a["actionType"] == CONTINUE_AS_NEW for a in fresh):
            return run
        clock += timedelta(seconds=1)
        new_events = [{"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock)}]
        answered = False
        for task_id, action in sorted(pending.items()):
            if action["actionType"] == TIMER:
                continue
            payload = json.loads(action["input"]) if action.get("input") else None
            answer = respond(action["functionName"], payload)
            if answer is None:
                continue
            run.calls.append((action["functionName"], payload))
            del pending[task_id]
            answered = True
            is_sub = action["actionType"] in (SUB, SUB_RETRY)
            new_events.append(_completion(task_id, answer, is_sub, clock))
            if answer[0] == "fail" and action["actionType"] in (ACTIVITY_RETRY, SUB_RETRY):
                # DTFx retries by itself: a retry timer, then the task again, each with its own sequence id,
                # and one more timer after the last attempt (the SDK waits for it before failing).
                attempts, limit = 1, int(action["retryOptions"]["maxNumberOfAttempts"])
                while True:
                    new_events += [{"EventType": 10, "EventId": next_id, "IsPlayed": False, "Timestamp": _ts(clock), "FireAt": _ts(clock)},
                                   {"EventType": 11, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock), "TimerId": next_id, "FireAt": _ts(clock)}]
                    next_id += 1
                    if attempts >= limit:
                        break
                    attempts += 1
                    retry = respond(action["functionName"], payload) or ("fail", "no answer")
                    run.calls.append((action["functionName"], payload))
                    new_events += [{"EventType": 7 if is_sub else 4, "EventId": next_id, "IsPlayed": False, "Timestamp": _ts(clock),
                                    "Name": action["functionName"], "Input": action.get("input")},
                                   _completion(next_id, retry, is_sub, clock)]
                    next_id += 1
                    if retry[0] == "ok":
                        break
        if not answered and not (events or {}).get(step + 1):
            timers = sorted(((a["fireAt"], i) for i, a in pending.items() if a["actionType"] == TIMER and not a.get("isCanceled")))
            if not timers:
                raise AssertionError(f"step {step}: the orchestration waits on nothing the scenario can answer")
            fire_at, task_id = timers[0]
            clock = max(clock, datetime.fromisoformat(fire_at.replace("Z", "+00:00")))
            new_events[0]["Timestamp"] = _ts(clock)
            new_events.append({"EventType": 11, "EventId": -1, "IsPlayed": False, "Timestamp": _ts(clock), "TimerId": task_id, "FireAt": fire_at})
            del pending[task_id]
    raise AssertionError(f"the orchestration did not finish within {max_steps} steps")
