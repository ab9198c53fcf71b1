"""A whole orchestration tree on azure-functions-durable's own replay, with real activities and one injected fault.

This plays the Durable extension's part for every instance of the tree, as `tests.replay.harness` does for
one: each episode sends the instance's whole history in the host's protocol (`devhost.history`), reads back
the actions, and records their scheduling events, numbered as DTFx numbers them. The difference:

- activities are the app's registered activity functions, called in process (their settings come from the
  environment: Azurite and the emulator), one at a time, oldest first;
- a sub-orchestration is its own instance (its id as the parent chose it), run alongside the others; its
  output, or its failure in the host's format, is delivered to the parent when it ends;
- `continue_as_new` restarts the instance with a fresh history (a new generation);
- a timer fires only when nothing else can happen: the clock jumps to it (and real time moves on by at most
  `REAL_WAIT_S`, so that services doing real work, like training, get a little time).

Every activity call and every sub-orchestration call is a decision point, named stably across runs by the
instance id, the function name (with a rollout step's name: `point_name`) and the occurrence of that name in that
instance (`Point`). A `Fault` picks one
point and what happens there; everything else runs as in the fault-free schedule.

A scenario may drive more than one root (`launch`, `drive`): a queue woken with an event (`raise_event`),
a queue dropped (`terminate`) and a fresh one started under the same instance id (its key then carries
`~1`, `~2`...). An `operator` callback, called before every step, plays the people and starters outside
the orchestrations (it stores decisions and raises events); its own decision points are `operator_points`,
faulted with `OPERATOR_FAULTS`. A `writer` callback makes another writer's change to a rollout's target just
before one of its steps runs (`WRITER_FAULTS`). `mark()` starts the part of the schedule whose points are explored.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.discovery import FunctionApp, FunctionSpec
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
    WAIT_FOR_EVENT,
    binding_context,
    flatten,
    host_failure,
    timestamp,
)

REAL_WAIT_S = 0.25  # real time a timer firing lets pass, at most (the emulator trains in real time)
MAX_EPISODES = 3000
MAX_GENERATIONS = 12  # continue-as-new restarts of one instance
OUT_OF_PROC = "\n\n$OutOfProcData$:"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")

# What each fault kind does at its point (an activity call, unless the kind says otherwise).
ACTIVITY_FAULTS = (
    "transient",  # fails once, before any effect, in the host's failure format
    "always",  # this call and every later one with the same input in this instance fail
    "outage",  # this call and every later activity call of this instance fail (the service is down from here)
    "twice",  # runs twice (its effect happens twice); the second result is delivered
    "lost",  # runs, its result is lost; it runs again after the work queued behind it
    "crash",  # the worker dies after it ran, before the result was recorded: it runs again at once
    "midway",  # fails at its second storage write (after the first took effect); counted only where it writes twice
    "reply-timer",  # its reply and the instance's next timer arrive in one batch, reply first
    "timer-reply",  # the same batch, timer first
)
WRITER_FAULTS = ("other-writer",)  # another writer changes the target just before this rollout step (`writer`)
SUB_FAULTS = ("child-fails",)  # the child instance fails as soon as it is created (host format)
EVENT_FAULTS = ("early", "twice", "late")  # an external event before the waiter exists, twice, after the end
OPERATOR_FAULTS = ("early", "twice", "late")  # an operator's signal: before its waiter, twice, after the run ended

EVENTS_OF = {  # the external events each orchestration waits for, by name
    "run_queue": ("wake",),
    "monitor_training_job": ("job_status_changed",),
    "retrain_pipeline": ("run_signal",),
    "promote_model": ("run_signal",),
}


def point_name(function: str, payload: Any) -> str:
    """What a point is called: the function, and for a rollout step its step's name (`run_rollout_step:traffic_50`),
    so that a step's calls are counted on their own: how often an earlier step waited does not renumber them."""
    step = payload.get("step") if isinstance(payload, dict) else None
    return f"{function}:{step['name']}" if isinstance(step, dict) and isinstance(step.get("name"), str) else function


@dataclass(frozen=True)
class Point:
    """A decision point: the `occurrence`-th call of `function` by `instance` (generation included)."""

    instance: str
    function: str
    occurrence: int

    def text(self) -> str:
        return f"{self.instance}|{self.function}|{self.occurrence}"

    @classmethod
    def parse(cls, text: str) -> Point:
        instance, function, occurrence = text.rsplit("|", 2)
        return cls(instance, function, int(occurrence))


@dataclass(frozen=True)
class Fault:
    kind: str
    point: Point

    def text(self) -> str:
        return f"{self.kind}@{self.point.text()}"

    @classmethod
    def parse(cls, text: str) -> Fault:
        kind, point = text.split("@", 1)
        return cls(kind, Point.parse(point))


@dataclass
class Instance:
    instance_id: str
    name: str
    input: str | None
    parent: Instance | None = None
    parent_task: int = -1
    generation: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    occurrences: dict[str, int] = field(default_factory=dict)
    status: str = "running"  # running, completed, failed
    output: Any = None
    error: str | None = None
    custom_status: Any = None
    children: list[Instance] = field(default_factory=list)
    waiting: set[str] = field(default_factory=set)
    episodes: int = 0
    started_at: str = ""
    ended_at: str | None = None
    running_children: list[str] = field(default_factory=list)
    epoch: int = 0  # an instance started again under an id an earlier (ended) instance had

    @property
    def key(self) -> str:
        base = f"{self.instance_id}~{self.epoch}" if self.epoch else self.instance_id
        return f"{base}#{self.generation}" if self.generation else base

    @property
    def running(self) -> bool:
        return self.status == "running"


class StarterClient:
    """What an activity's Durable client binding (`send_notification`) does here: it starts root orchestrations
    in the driver, which runs them with the rest (their points are explored like any other)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def get_status(self, instance_id: str) -> Any:
        found = self.driver.current(instance_id)
        return _Status(found.status if found is not None else None)

    async def start_new(self, orchestration_function_name: str, instance_id: str, client_input: Any = None) -> str:
        self.driver.launch(orchestration_function_name, client_input, instance_id)
        return instance_id


@dataclass(frozen=True)
class _Status:
    runtime_status: str | None


async def _awaited(result: Awaitable[Any]) -> Any:
    return await result


@dataclass
class Work:
    instance: Instance
    generation: int
    task_id: int
    function: str
    payload: Any
    point: Point
    deliver: bool = True  # False: run it, but the result is lost


@dataclass
class Observation:
    """What the driver saw: every point, every instance, and the moments the invariants need."""

    points: list[Point] = field(default_factory=list)
    sub_points: list[Point] = field(default_factory=list)
    event_points: list[Point] = field(default_factory=list)
    operator_points: list[Point] = field(default_factory=list)
    explored_from: tuple[int, int, int, int] = (0, 0, 0, 0)  # points, sub, event, operator points before `mark()`
    instances: dict[str, Instance] = field(default_factory=dict)
    ended: list[dict[str, Any]] = field(default_factory=list)  # per instance end: id, name, status, running children
    calls: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # instance, function, payload, result
    writes: dict[Point, int] = field(default_factory=dict)  # storage writes each activity call made
    stopped: str = ""
    fault_applied: bool = False


class Driver:
    def __init__(
        self,
        app: FunctionApp,
        fault: Fault | None = None,
        *,
        start: datetime | None = None,
        idle: Callable[[Instance], bool] | None = None,
        operator: Callable[[Driver], None] | None = None,
        writer: Callable[[Work], bool] | None = None,
    ) -> None:
        self.orchestrators: dict[str, FunctionSpec] = {f.name: f for f in app.orchestrators}
        self.activities: dict[str, FunctionSpec] = {f.name: f for f in app.activities}
        self.fault = fault
        self.clock = start or datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
        self.idle = idle or (lambda root: False)
        self.operator = operator
        self.writer = writer  # makes another writer's change for the "other-writer" fault; whether it changed anything
        self.roots: list[Instance] = []
        self.episodes = 0
        self.seen = Observation()
        self.work: list[Work] = []
        self.failing: set[tuple[str, str]] = set()  # ("always": instance key + input) or ("outage": instance key)
        self.late: list[tuple[Instance, str]] = []
        self.aliases: dict[str, str] = {}  # run id -> run1, run2...: schedule ids that do not depend on the clock

    def alias(self, key: str) -> str:
        return RUN_ID.sub(lambda m: self.aliases.setdefault(m.group(0), f"run{len(self.aliases) + 1}"), key)

    # ---- instances ---------------------------------------------------------------------------------------

    def start(
        self, name: str, payload: Any, instance_id: str, parent: Instance | None = None, task: int = -1
    ) -> Instance:
        encoded = json.dumps(payload) if not isinstance(payload, str) or parent is None else payload
        instance = Instance(instance_id, name, encoded, parent, task, started_at=timestamp(self.clock))
        instance.epoch = sum(
            1 for i in self.seen.instances.values() if i.instance_id == instance_id and not i.generation
        )
        self._begin(instance)
        self.seen.instances[instance.key] = instance
        if parent is not None:
            parent.children.append(instance)
        return instance

    def _begin(self, instance: Instance) -> None:
        started = {"EventId": -1, "IsPlayed": False, "Timestamp": timestamp(self.clock)}
        instance.inbox = [
            started | {"EventType": ORCHESTRATOR_STARTED},
            started | {"EventType": 0, "Name": instance.name, "Input": instance.input, "Version": ""},
        ]
        for name in EVENTS_OF.get(instance.name, ()):
            point = Point(self.alias(instance.key), f"event:{name}", 0)
            self.seen.event_points.append(point)
            if self._faulted(point, "early"):
                instance.inbox.append(self._event(name))
            elif self._faulted(point, "twice"):
                instance.inbox += [self._event(name), self._event(name)]
            elif self._faulted(point, "late"):
                self.late.append((instance, name))

    def _event(self, name: str) -> dict[str, Any]:
        return {
            "EventType": EVENT_RAISED,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": timestamp(self.clock),
            "Name": name,
            "Input": json.dumps(None),
        }

    def faulted(self, point: Point, *kinds: str) -> bool:
        """Whether the schedule's fault is one of `kinds` at `point` (for the operator's points)."""
        return self._faulted(point, *kinds)

    def _faulted(self, point: Point, *kinds: str) -> bool:
        hit = self.fault is not None and self.fault.point == point and self.fault.kind in kinds
        if hit:
            self.seen.fault_applied = True
        return hit

    # ---- episodes ----------------------------------------------------------------------------------------

    def _episode(self, instance: Instance) -> None:
        spec = self.orchestrators[instance.name]
        new = instance.inbox
        instance.inbox = []
        new[0]["Timestamp"] = timestamp(self.clock)
        parent_id = instance.parent.instance_id if instance.parent else None
        context = binding_context(instance.history + new, instance.instance_id, instance.input, parent_id)
        instance.episodes += 1
        self.episodes += 1
        try:
            state = json.loads(spec.user_function(context))
            failure = None
        except Exception as exc:  # the orchestrator raised: the instance fails, as on the host
            text = str(exc)
            failure = text.split(OUT_OF_PROC, 1)[0]
            state = json.loads(text.split(OUT_OF_PROC, 1)[1]) if OUT_OF_PROC in text else {}
        for event in new:
            event["IsPlayed"] = True
        instance.history += new
        instance.custom_status = state.get("customStatus", instance.custom_status)
        if failure is not None:
            self._end(instance, "failed", None, failure)
            return
        flat = flatten(state.get("actions", []))
        instance.waiting = {
            str(a.get("externalEventName", a.get("name"))) for a in flat if a["actionType"] == WAIT_FOR_EVENT
        }
        scheduling = [a for a in flat if a["actionType"] in (CALL_ACTIVITY, CALL_SUB, CREATE_TIMER)]
        for action in scheduling[len(instance.actions) :]:
            self._schedule(instance, action)
        instance.history.append(
            {"EventType": ORCHESTRATOR_COMPLETED, "EventId": -1, "IsPlayed": True, "Timestamp": timestamp(self.clock)}
        )
        continued = [a for a in flat if a["actionType"] == CONTINUE_AS_NEW]
        if continued:
            self._continue(instance, continued[0].get("input"))
        elif state.get("isDone"):
            self._end(instance, "completed", state.get("output"), None)

    def _schedule(self, instance: Instance, action: dict[str, Any]) -> None:
        task_id = len(instance.actions)
        instance.actions.append(action)
        instance.pending[task_id] = action
        base = {"EventId": task_id, "IsPlayed": True, "Timestamp": timestamp(self.clock)}
        kind = action["actionType"]
        if kind == CREATE_TIMER:
            instance.history.append(base | {"EventType": TIMER_CREATED, "FireAt": action["fireAt"]})
            return
        name = action["functionName"]
        payload = json.loads(action["input"]) if action.get("input") else None
        label = point_name(name, payload)
        occurrence = instance.occurrences.get(label, 0)
        instance.occurrences[label] = occurrence + 1
        point = Point(self.alias(instance.key), label, occurrence)
        if kind == CALL_ACTIVITY:
            instance.history.append(base | {"EventType": TASK_SCHEDULED, "Name": name, "Input": action.get("input")})
            self.seen.points.append(point)
            self.work.append(Work(instance, instance.generation, task_id, name, payload, point))
            return
        child_id = action.get("instanceId") or f"{instance.instance_id}:{task_id}"
        instance.history.append(
            base | {"EventType": SUB_CREATED, "Name": name, "InstanceId": child_id, "Input": action.get("input")}
        )
        self.seen.sub_points.append(point)
        if self._faulted(point, "child-fails"):
            reason, details = host_failure(
                "Orchestrator", name, "Exception", "injected: the child orchestration failed"
            )
            self._post(instance, self._reply(task_id, SUB_FAILED, Reason=reason, Details=details))
            return
        self.start(name, payload, child_id, instance, task_id)

    def _reply(self, task_id: int, event_type: int, **fields: Any) -> dict[str, Any]:
        return {
            "EventType": event_type,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": timestamp(self.clock),
            "TaskScheduledId": task_id,
        } | fields

    def _continue(self, instance: Instance, given: Any) -> None:
        self.seen.ended.append(self._ending(instance, "continued"))
        if instance.generation + 1 >= MAX_GENERATIONS:
            instance.status = "stopped"
            return
        fresh = Instance(instance.instance_id, instance.name, given, instance.parent, instance.parent_task)
        fresh.generation = instance.generation + 1
        fresh.epoch = instance.epoch
        fresh.started_at = timestamp(self.clock)
        instance.ended_at = timestamp(self.clock)
        instance.status = "continued"
        self.seen.instances[fresh.key] = fresh
        if instance.parent is not None:  # the parent's child is the instance's latest generation
            instance.parent.children = [fresh if c is instance else c for c in instance.parent.children]
        self._begin(fresh)
        self.roots = [fresh if r is instance else r for r in self.roots]

    def _ending(self, instance: Instance, status: str) -> dict[str, Any]:
        return {
            "instance": instance.key,
            "name": instance.name,
            "status": status,
            "at": timestamp(self.clock),
            "running_children": [c.key for c in instance.children if c.running],
            "output": instance.output,
        }

    def _end(self, instance: Instance, status: str, output: Any, error: str | None) -> None:
        instance.status, instance.output, instance.error = status, output, error
        instance.ended_at = timestamp(self.clock)
        instance.running_children = [c.key for c in instance.children if c.running]
        self.seen.ended.append(self._ending(instance, status))
        parent = instance.parent
        if parent is None or not parent.running:
            return
        if status == "completed":
            self._post(parent, self._reply(instance.parent_task, SUB_COMPLETED, Result=json.dumps(output)))
        else:
            reason, details = host_failure("Orchestrator", instance.name, "Exception", error or "")
            self._post(parent, self._reply(instance.parent_task, SUB_FAILED, Reason=reason, Details=details))

    def _started(self) -> dict[str, Any]:
        return {"EventType": ORCHESTRATOR_STARTED, "EventId": -1, "IsPlayed": False, "Timestamp": timestamp(self.clock)}

    def _post(self, instance: Instance, event: dict[str, Any]) -> None:
        if not instance.inbox:
            instance.inbox.append(self._started())
        instance.inbox.append(event)

    # ---- activities --------------------------------------------------------------------------------------

    def _invoke(self, item: Work) -> tuple[bool, Any]:
        """Run the activity for real: (True, result) or (False, (error type, message))."""
        from tests.explore.writes import counting

        spec = self.activities[item.function]
        fail_at = 2 if self._armed(item.point, "midway") else None
        function, arguments = spec.user_function, {spec.input_name: item.payload}
        if spec.client_binding is not None:  # the function as written, before the SDK's wrapper builds its client
            function = inspect.unwrap(function)
            arguments[spec.client_binding["name"]] = StarterClient(self)
        with counting(fail_at) as counter:
            try:
                result = function(**arguments)
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
                outcome: tuple[bool, Any] = (True, json.loads(json.dumps(result, default=str)))
            except Exception as exc:  # an activity failure: the host reports it in its format
                outcome = (False, (type(exc).__name__, str(exc)))
        self.seen.writes[item.point] = max(self.seen.writes.get(item.point, 0), counter.writes)
        if fail_at is not None and counter.failed:
            self.seen.fault_applied = True
        return outcome

    def _armed(self, point: Point, kind: str) -> bool:
        return self.fault is not None and self.fault.kind == kind and self.fault.point == point

    def _run_work(self) -> None:
        item = self.work.pop(0)
        instance = item.instance
        if not instance.running or instance.generation != item.generation:
            return
        point, payload_key = item.point, json.dumps(item.payload, sort_keys=True)
        key = item.point.instance
        if self.writer is not None and self._armed(point, "other-writer") and self.writer(item):
            self.seen.fault_applied = True
        if self._faulted(point, "always"):
            self.failing.add((key, f"{item.function}:{payload_key}"))
        if self._faulted(point, "outage"):
            self.failing.add((key, "*"))
        if (key, f"{item.function}:{payload_key}") in self.failing or (key, "*") in self.failing:
            self._fail(item, "ServiceError", "injected: the service is unavailable")
            return
        if self._faulted(point, "transient"):
            self._fail(item, "ServiceError", "injected: a transient failure")
            return
        if self._faulted(point, "lost"):
            self._invoke(item)
            self.work.append(item)
            item.point = Point(point.instance, point.function, -1 - point.occurrence)  # not faulted again
            return
        if self._faulted(point, "twice", "crash"):
            self._invoke(item)
        ok, value = self._invoke(item)
        self.seen.calls.append((point.instance, item.function, item.payload, value if ok else None))
        if ok:
            event = self._reply(item.task_id, TASK_COMPLETED, Result=json.dumps(value))
        else:
            reason, details = host_failure("Activity", item.function, value[0], value[1])
            event = self._reply(item.task_id, TASK_FAILED, Reason=reason, Details=details)
        instance.pending.pop(item.task_id, None)
        batch_timer = self._faulted(point, "reply-timer", "timer-reply")
        timer_event = self._take_timer(instance) if batch_timer else None
        if timer_event is not None and self.fault is not None and self.fault.kind == "timer-reply":
            self._post(instance, timer_event)
            self._post(instance, event)
        else:
            self._post(instance, event)
            if timer_event is not None:
                self._post(instance, timer_event)

    def _fail(self, item: Work, error_type: str, message: str) -> None:
        reason, details = host_failure("Activity", item.function, error_type, message)
        item.instance.pending.pop(item.task_id, None)
        self.seen.calls.append((item.point.instance, item.function, item.payload, None))
        self._post(item.instance, self._reply(item.task_id, TASK_FAILED, Reason=reason, Details=details))

    # ---- timers ------------------------------------------------------------------------------------------

    def _take_timer(self, instance: Instance) -> dict[str, Any] | None:
        timers = sorted((a["fireAt"], i) for i, a in instance.pending.items() if a["actionType"] == CREATE_TIMER)
        if not timers:
            return None
        fire_at, task_id = timers[0]
        del instance.pending[task_id]
        return {
            "EventType": TIMER_FIRED,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": timestamp(self.clock),
            "TimerId": task_id,
            "FireAt": fire_at,
        }

    def _fire_earliest(self) -> bool:
        candidates = [
            (a["fireAt"], n, i)
            for n, inst in enumerate(self._running())
            for i, a in inst.pending.items()
            if a["actionType"] == CREATE_TIMER
        ]
        if not candidates:
            return False
        fire_at, n, _ = min(candidates)
        instance = self._running()[n]
        due = datetime.fromisoformat(fire_at.replace("Z", "+00:00"))
        if due > self.clock:
            time.sleep(min(REAL_WAIT_S, (due - self.clock).total_seconds()))
            self.clock = due
        event = self._take_timer(instance)
        assert event is not None
        event["Timestamp"] = timestamp(self.clock)
        self._post(instance, event)
        return True

    # ---- the loop ----------------------------------------------------------------------------------------

    def _running(self) -> list[Instance]:
        return [i for i in self.seen.instances.values() if i.running]

    def current(self, instance_id: str) -> Instance | None:
        """The latest instance under `instance_id` (its latest generation), running or not."""
        found = [i for i in self.seen.instances.values() if i.instance_id == instance_id]
        return found[-1] if found else None

    def raise_event(self, instance_id: str, name: str) -> bool:
        """What a client's raise_event does: the event goes to the instance if it runs; else it is dropped."""
        instance = self.current(instance_id)
        if instance is None or not instance.running:
            return False
        self._post(instance, self._event(name))
        return True

    def raise_late(self, instance_id: str, name: str) -> None:
        """An event that arrives only after the instance ended (the host drops it then)."""
        instance = self.current(instance_id)
        if instance is not None:
            self.late.append((instance, name))

    def terminate(self, instance: Instance) -> None:
        """Terminated by hand: it stops where it is; its work is dropped; its parent hears nothing."""
        if not instance.running:
            return
        instance.status = "terminated"
        instance.ended_at = timestamp(self.clock)
        instance.running_children = [c.key for c in instance.children if c.running]
        instance.inbox = []
        self.seen.ended.append(self._ending(instance, "terminated"))

    def mark(self) -> None:
        """From here on, the points found are the ones the explorer faults."""
        seen = self.seen
        seen.explored_from = (
            len(seen.points),
            len(seen.sub_points),
            len(seen.event_points),
            len(seen.operator_points),
        )

    def launch(self, name: str, payload: Any, instance_id: str) -> Instance:
        """Start a root orchestration, as a starter's client does."""
        root = self.start(name, payload, instance_id)
        self.roots.append(root)
        return root

    def drive(self, root: Instance, until: Callable[[], bool] | None = None) -> str:
        """Run everything until `root` is idle (the driver's `idle`), nothing runs, or `until()` holds."""
        index = next(i for i, r in enumerate(self.roots) if (r.instance_id, r.epoch) == (root.instance_id, root.epoch))
        stopped = f"gave up after {MAX_EPISODES} episodes"
        while self.episodes < MAX_EPISODES:
            if self.operator is not None:
                self.operator(self)
            if until is not None and until():
                stopped = "until"
                break
            ready = [i for i in self._running() if i.inbox]
            if ready:
                self.clock += timedelta(milliseconds=10)
                for instance in ready:
                    if instance.running and instance.inbox:
                        self._episode(instance)
                continue
            if self.work:
                self._run_work()
                continue
            current = self.roots[index]
            if not current.running and not self._running():
                stopped = f"{current.name} ended {current.status}"
                break
            if current.running and self.idle(current) and len(self._running()) == 1:
                stopped = "idle"
                break
            if not self._fire_earliest():
                stopped = "stuck: every instance waits on nothing the schedule delivers"
                break
        self.seen.stopped = stopped
        return stopped

    def finish(self) -> Observation:
        """The events that arrive after their instance ended (the host drops them; nothing runs)."""
        for instance, name in self.late:
            if instance.running:
                self._post(instance, self._event(name))
                self._episode(instance)
            self.seen.fault_applied = True
        self.late = []
        return self.seen

    def run(self, name: str, payload: Any, instance_id: str) -> Observation:
        self.drive(self.launch(name, payload, instance_id))
        return self.finish()
