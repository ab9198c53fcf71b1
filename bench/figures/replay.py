"""Azure's replay cost: every episode of a run replayed through azure-functions-durable's own handler.

On Azure, each time an orchestration wakes up (an activity's result, a timer, a child's end) the Python
worker gets the instance's whole history and the SDK replays it (`Orchestrator.handle`); no replay
cache exists for Python on the Azure Storage provider. So the CPU users pay for is the sum, over a
run's episodes, of one `handle` call on the history so far. This figure plays the Durable extension's
part (`bench.figures.replay`'s `Host`, the protocol of `tests/replay/harness.py`: `devhost.history`'s
binding context, DTFx's event numbering, one new event an episode) and times each `handle` call with
`time.process_time`, nothing else (garbage collection pauses included, as on Azure: the largest
replay can be a pause). Time is simulated: a timer fires at its due time at once, an
activity answers after `ACTIVITY_S`, a child orchestration is replayed in full (its own episodes,
counted in the run) and answers when it ends. So a 5-day job takes only its replays' CPU.

Runs: the monitor alone for jobs of 1, 10 and 100 minutes and 5 days (the app's default polling, 5 s
first, 5 min at most, 5% of the elapsed time, no history); one target's 3-step canary rollout
(`roll_out_target`: deploy with two provisioning waits, 10% traffic with a 10-minute bake, 100%); and a
whole retrain (`retrain_pipeline` with a 100-minute job, its monitor and two canary rollouts replayed
as children). Each is measured as the app is (the monitor continues as new every
`POLLS_PER_EXECUTION` polls) and, in the same run, with that constant made infinite: the baseline.

The floor is one replay per durable action (activity, timer, child): each action's result must wake
the orchestration once. A replay that read only what that action needs costs about what the
orchestrator's second episode costs (its start, one action, its result); that episode, replayed
`UNIT_REPEATS` times (median), is the unit, and the floor is the run's actions times their
orchestrator's unit. A baseline that would take over `BASELINE_BUDGET_S` of CPU is stopped there:
what was measured is reported as such, and the rest is projected from a straight-line fit of each
replay's CPU to its history's length (marked "projected").
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.figures import Row
from bench.stack import Stack
from devhost.discovery import FunctionApp, FunctionSpec, load_app
from devhost.history import (
    CALL_ACTIVITY,
    CALL_SUB,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    SUB_COMPLETED,
    SUB_CREATED,
    TASK_COMPLETED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    binding_context,
    flatten,
    timestamp,
)

Answer = tuple[str, Any]
Responder = Callable[[str, Any, datetime], Answer]  # (activity, input, now) -> ("ok", result)

NAME = "replay"
needs_devhost = False
ACTIVITY_S = 1.0  # an activity answers this long after it is scheduled (simulated time)
UNIT_REPEATS = 200
BASELINE_BUDGET_S = 30.0  # CPU one baseline run may take before the rest is projected
START = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
POLICY = {"poll_first_s": 5.0, "poll_max_s": 300.0, "poll_fraction": 0.05}  # the app's defaults
MONITOR_JOBS = [("monitor, 1-min job", 60.0), ("monitor, 10-min job", 600.0), ("monitor, 100-min job", 6000.0)]
FIVE_DAYS = ("monitor, 5-day job", 5 * 86400.0)
CANARY = [
    {"name": "deploy", "bake_s": 0.0, "mutates": True},
    {"name": "traffic_10", "bake_s": 600.0, "mutates": True},
    {"name": "traffic_100", "bake_s": 0.0, "mutates": True},
]
SENSITIVITY = (5, 10, 20)  # other POLLS_PER_EXECUTION values, measured on the 100-minute job: what 3× would take
LINEAR_SLACK = 1.3  # "linear": CPU per action at 5 days within this of the 100-minute job's
FLOOR_TARGET = 3.0


class OverBudget(Exception):
    pass


@dataclass
class Cost:
    """What one run cost in replays, and the durable actions it took."""

    episodes: int = 0
    cpu_s: float = 0.0
    largest_s: float = 0.0
    executions: int = 0
    events_total: int = 0  # every execution's final history, summed
    largest_history: int = 0
    activities: int = 0
    timers: int = 0
    children: int = 0
    by_orchestrator: dict[str, int] = field(default_factory=dict)  # actions each orchestrator scheduled
    samples: list[tuple[int, float]] = field(default_factory=list)  # (events replayed, CPU) per episode
    budget_s: float = float("inf")

    @property
    def actions(self) -> int:
        return self.activities + self.timers + self.children


class Host:
    """The Durable extension's part, with simulated time; `handle` is the SDK's, timed alone."""

    def __init__(self, app: FunctionApp, respond: Responder, cost: Cost) -> None:
        self.functions = {f.name: f for f in app.orchestrators}
        self.respond = respond
        self.cost = cost
        self.second_episode: dict[str, str] = {}  # orchestrator -> the binding context of its second episode

    def run(self, name: str, given: Any, clock: datetime, instance_id: str) -> tuple[Any, datetime]:
        """The orchestration through all its executions: (output, when it ended)."""
        while True:
            state, clock, continued = self._execution(self.functions[name], given, clock, instance_id)
            if continued is None:
                return state.get("output"), clock
            given = continued

    def _handle(self, function: FunctionSpec, context: str, events: int) -> dict[str, Any]:
        began = time.process_time()
        out = function.user_function(context)
        spent = time.process_time() - began
        cost = self.cost
        cost.episodes += 1
        cost.cpu_s += spent
        cost.largest_s = max(cost.largest_s, spent)
        cost.samples.append((events, spent))
        if cost.cpu_s > cost.budget_s:
            raise OverBudget
        state: dict[str, Any] = json.loads(out)
        if state.get("error"):
            raise RuntimeError(f"{function.name} failed in replay: {state['error'][:300]}")
        return state

    def _execution(
        self, function: FunctionSpec, given: Any, clock: datetime, instance_id: str
    ) -> tuple[dict[str, Any], datetime, Any]:
        encoded = json.dumps(given)
        history: list[dict[str, Any]] = []
        new = [
            _event(ORCHESTRATOR_STARTED, clock),
            _event(0, clock) | {"Name": function.name, "Input": encoded, "Version": ""},
        ]
        scheduled: list[dict[str, Any]] = []
        pending: dict[int, tuple[datetime, dict[str, Any]]] = {}  # task id -> (when it completes, its event)
        self.cost.executions += 1
        while True:
            context = binding_context(history + new, instance_id, encoded)
            if len(self.cost.samples) and function.name not in self.second_episode and history:
                self.second_episode[function.name] = context
            state = self._handle(function, context, len(history) + len(new))
            flat = flatten(state.get("actions", []))
            for event in new:
                event["IsPlayed"] = True
            history += new
            fresh = [a for a in flat if a["actionType"] in (CALL_ACTIVITY, CALL_SUB, CREATE_TIMER)][len(scheduled) :]
            for action in fresh:
                task_id = len(scheduled)
                scheduled.append(action)
                pending[task_id] = self._schedule(function.name, action, task_id, clock, instance_id, history)
            history.append(_event(ORCHESTRATOR_COMPLETED, clock, played=True))
            if state.get("isDone") or any(a["actionType"] == CONTINUE_AS_NEW for a in flat):
                self.cost.events_total += len(history)
                self.cost.largest_history = max(self.cost.largest_history, len(history))
                moved = [a for a in flat if a["actionType"] == CONTINUE_AS_NEW]
                return state, clock, json.loads(moved[0]["input"]) if moved else None
            if not pending:
                raise RuntimeError(f"{function.name} waits on nothing the bench can answer")
            task_id = min(pending, key=lambda i: (pending[i][0], i))
            due, completion = pending.pop(task_id)
            clock = max(clock, due)
            new = [_event(ORCHESTRATOR_STARTED, clock), completion | {"Timestamp": timestamp(clock)}]

    def _schedule(
        self,
        parent: str,
        action: dict[str, Any],
        task_id: int,
        clock: datetime,
        instance_id: str,
        history: list[dict[str, Any]],
    ) -> tuple[datetime, dict[str, Any]]:
        """Record the scheduling event; run what it starts; return when and how it completes."""
        cost = self.cost
        cost.by_orchestrator[parent] = cost.by_orchestrator.get(parent, 0) + 1
        base = {"EventId": task_id, "IsPlayed": True, "Timestamp": timestamp(clock)}
        kind = action["actionType"]
        if kind == CREATE_TIMER:
            cost.timers += 1
            history.append(base | {"EventType": TIMER_CREATED, "FireAt": action["fireAt"]})
            fire_at = datetime.fromisoformat(action["fireAt"].replace("Z", "+00:00"))
            return fire_at, _event(TIMER_FIRED, clock) | {"TimerId": task_id, "FireAt": action["fireAt"]}
        payload = json.loads(action["input"]) if action.get("input") else None
        if kind == CALL_SUB:
            cost.children += 1
            child = action.get("instanceId") or f"{instance_id}:{task_id}"
            history.append(
                base
                | {
                    "EventType": SUB_CREATED,
                    "Name": action["functionName"],
                    "InstanceId": child,
                    "Input": action.get("input"),
                }
            )
            output, ended = self.run(action["functionName"], payload, clock, child)
            completed = _event(SUB_COMPLETED, ended) | {"TaskScheduledId": task_id, "Result": json.dumps(output)}
            return ended, completed
        cost.activities += 1
        history.append(
            base | {"EventType": TASK_SCHEDULED, "Name": action["functionName"], "Input": action.get("input")}
        )
        answer = self.respond(action["functionName"], payload, clock)
        if answer[0] != "ok":
            raise RuntimeError(f"the bench answers every call: {action['functionName']} got {answer!r}")
        done = clock + timedelta(seconds=ACTIVITY_S)
        return done, _event(TASK_COMPLETED, done) | {"TaskScheduledId": task_id, "Result": json.dumps(answer[1])}


def _event(kind: int, clock: datetime, played: bool = False) -> dict[str, Any]:
    return {"EventType": kind, "EventId": -1, "IsPlayed": played, "Timestamp": timestamp(clock)}


# ---- the runs -----------------------------------------------------------------------------------


def _answers(job_s: float) -> Responder:
    """Every activity answered as the services would: the job runs `job_s` from its submission (or start)."""
    from tests.replay.scenarios import scenario  # the replay tests' answers: the app's own payloads

    default = scenario()
    job_end: list[datetime] = []

    def respond(name: str, payload: Any, now: datetime) -> Answer:
        if name in ("submit_training_job", "start_training_job") and not job_end:
            job_end.append(now + timedelta(seconds=job_s))
        if name == "poll_training_job":
            end = job_end[0] if job_end else START + timedelta(seconds=job_s)
            return ("ok", {"state": "Finished" if now >= end else "Running", "details": None})
        if name == "plan_rollout":
            return ("ok", CANARY)
        if name == "run_rollout_step":
            return _step(payload)
        if name == "settle_rollout":  # the rollout's end, stored: as the replay tests' rollout scenario answers
            return ("ok", True)
        answer: Answer | None = default(name, payload)
        assert answer is not None
        return answer

    return respond


def _step(payload: Any) -> Answer:
    """Deploy waits twice for provisioning (a minute each), the traffic steps apply at once."""
    looked = int(payload.get("state", {}).get("looks", 0))
    if payload["step"]["name"] == "deploy" and looked < 2:
        return (
            "ok",
            {"status": "wait", "state": {"looks": looked + 1}, "wait_s": 60.0, "reason": None, "progress": {}},
        )
    return ("ok", {"status": "done", "state": {}, "wait_s": 0.0, "reason": None, "progress": {}})


def _runs() -> list[tuple[str, str, Any, float]]:
    """(label, orchestrator, input, job length) of every run."""
    from tests.replay.scenarios import JOB, MODEL, RUN, TARGETS

    def monitor(job_s: float) -> dict[str, Any]:
        deadline = START + timedelta(seconds=2 * job_s + 3600)
        given = {"job": JOB, "deadline": timestamp(deadline), "history_s": [], "events": False}
        return given | POLICY

    rollout = {"pipeline": "weekly-retrain", "run_id": RUN["run_id"], "target": TARGETS[0], "model": MODEL}
    return [
        *[(label, "monitor_training_job", monitor(s), s) for label, s in [*MONITOR_JOBS, FIVE_DAYS]],
        ("canary rollout, 3 steps", "roll_out_target", rollout, 0.0),
        ("whole retrain, 100-min job, 2 canary targets", "retrain_pipeline", RUN, 6000.0),
    ]


@contextmanager
def _polls_per_execution(value: int) -> Iterator[None]:
    import orchestrators.monitor_training_job as monitor

    kept = monitor.POLLS_PER_EXECUTION
    monitor.POLLS_PER_EXECUTION = value
    try:
        yield
    finally:
        monitor.POLLS_PER_EXECUTION = kept


def _measure_one(app: FunctionApp, orchestrator: str, given: Any, job_s: float, budget_s: float) -> dict[str, Any]:
    cost = Cost(budget_s=budget_s)
    host = Host(app, _answers(job_s), cost)
    finished = True
    try:
        host.run(orchestrator, given, START, f"bench-{orchestrator}")
    except OverBudget:
        finished = False
    units = {name: _unit(host.functions[name], context) for name, context in host.second_episode.items()}
    floor_s = sum(units[name] * n for name, n in cost.by_orchestrator.items())
    return {
        "finished": finished,
        "episodes": cost.episodes,
        "executions": cost.executions,
        "events_largest_execution": cost.largest_history,
        "events_total": cost.events_total,
        "replay_cpu_s": round(cost.cpu_s, 4),
        "largest_replay_ms": round(cost.largest_s * 1000, 3),
        "activities": cost.activities,
        "timers": cost.timers,
        "children": cost.children,
        "actions": cost.actions,
        "unit_ms": {name: round(u * 1000, 4) for name, u in units.items()},
        "floor_cpu_s": round(floor_s, 4),
        "ratio_to_floor": round(cost.cpu_s / floor_s, 2) if floor_s else None,
        "events_at_stop": cost.samples[-1][0] if cost.samples else 0,  # the last replay's history
        "fit": _fit(cost.samples),
    }


def _unit(function: FunctionSpec, context: str) -> float:
    """The median CPU of one replay of the orchestrator's second episode: one action and its result."""
    spent = []
    for _ in range(UNIT_REPEATS):
        began = time.process_time()
        function.user_function(context)
        spent.append(time.process_time() - began)
    return statistics.median(spent)


def _fit(samples: list[tuple[int, float]]) -> dict[str, float]:
    """CPU of one replay = a + b * events (least squares), for projecting a stopped baseline."""
    if len(samples) < 2:
        return {"a_ms": 0.0, "b_us_per_event": 0.0}
    xs, ys = [float(e) for e, _ in samples], [s for _, s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return {"a_ms": round((my - b * mx) * 1000, 4), "b_us_per_event": round(b * 1e6, 4)}


def _project(baseline: dict[str, Any], bounded: dict[str, Any]) -> dict[str, Any]:
    """A stopped baseline's whole run: its episodes are the bounded run's less one start per later execution,
    and its history grows by the events an episode the measured part grew by."""
    episodes = bounded["episodes"] - (bounded["executions"] - 1)
    per_episode = baseline["events_at_stop"] / max(1, baseline["episodes"])
    a, b = baseline["fit"]["a_ms"] / 1000, baseline["fit"]["b_us_per_event"] / 1e6
    rest = range(baseline["episodes"] + 1, episodes + 1)
    cpu = baseline["replay_cpu_s"] + sum(a + b * per_episode * e for e in rest)
    events = round(per_episode * episodes)
    return {
        "episodes": episodes,
        "events_largest_execution": events,
        "replay_cpu_s": round(cpu, 1),
        "largest_replay_ms": round((a + b * events) * 1000, 1),
        "ratio_to_floor": round(cpu / bounded["floor_cpu_s"], 1),
    }


def prepare(stack: Stack) -> None:
    """Nothing to deploy: the figure replays in this process."""


def measure(stack: Stack | None = None) -> dict[str, Any]:
    app = load_app()
    runs: list[dict[str, Any]] = []
    for label, orchestrator, given, job_s in _runs():
        bounded = _measure_one(app, orchestrator, given, job_s, float("inf"))
        with _polls_per_execution(10**9):
            baseline = _measure_one(app, orchestrator, given, job_s, BASELINE_BUDGET_S)
        if not baseline["finished"]:
            baseline["projected"] = _project(baseline, bounded)
        runs.append({"run": label, "job_s": job_s, "bounded": bounded, "baseline": baseline})
    label, orchestrator, given, job_s = next(r for r in _runs() if r[0] == MONITOR_JOBS[-1][0])
    sensitivity = {}
    for polls in SENSITIVITY:
        with _polls_per_execution(polls):
            sensitivity[str(polls)] = _measure_one(app, orchestrator, given, job_s, float("inf"))
    from orchestrators.monitor_training_job import POLLS_PER_EXECUTION

    return {
        "polls_per_execution": POLLS_PER_EXECUTION,
        "activity_s": ACTIVITY_S,
        "runs": runs,
        "sensitivity": {"run": label, "by_polls_per_execution": sensitivity},
    }


def _find(result: dict[str, Any], label: str) -> dict[str, Any]:
    return next(r for r in result["runs"] if r["run"] == label)


def _per_action_ms(side: dict[str, Any]) -> float:
    return float(side["replay_cpu_s"]) / float(side["actions"]) * 1000


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        f"replay (azure-functions-durable's Orchestrator.handle, every episode as the host sends it; "
        f"continue-as-new every {result['polls_per_execution']} polls vs never; CPU = time.process_time)",
        "   run                                            events (largest/total)  episodes  replay CPU (s)"
        "  largest (ms)  actions (act/timer/child)  floor (s)  ratio | never continued: events  CPU (s)"
        "  largest (ms)  ratio",
    ]
    for r in result["runs"]:
        b, n = r["bounded"], r["baseline"]
        shown = n.get("projected") or n
        mark = (
            " (projected; measured " + f"{n['replay_cpu_s']:.1f} s over {n['episodes']} episodes)"
            if "projected" in n
            else ""
        )
        lines.append(
            f"   {r['run']:<46} {b['events_largest_execution']:>8}/{b['events_total']:<9}  {b['episodes']:>8}"
            f"  {b['replay_cpu_s']:>14.3f}  {b['largest_replay_ms']:>12.2f}"
            f"  {b['actions']:>7} ({b['activities']}/{b['timers']}/{b['children']})".ljust(28)
            + f"  {b['floor_cpu_s']:>9.3f}  {b['ratio_to_floor']:>5.2f}"
            f" | {shown['events_largest_execution']:>22}  {shown['replay_cpu_s']:>7.2f}"
            f"  {shown['largest_replay_ms']:>12.1f}  {shown['ratio_to_floor']:>5.1f}{mark}"
        )
    sens = result["sensitivity"]
    lines.append(f"   {sens['run']}, other POLLS_PER_EXECUTION (same figure, bench-only patch):")
    for polls, b in sens["by_polls_per_execution"].items():
        lines.append(
            f"   {'':<10} every {polls:>3} polls: {b['events_largest_execution']:>4} events at most, {b['episodes']} episodes,"
            f" {b['replay_cpu_s']:.3f} s CPU, largest {b['largest_replay_ms']:.2f} ms, {b['ratio_to_floor']:.2f}× the floor"
        )
    units = {k: v for r in result["runs"] for k, v in r["bounded"]["unit_ms"].items()}
    lines.append(
        "   unit (one replay of an orchestrator's second episode, median ms): "
        + ", ".join(f"{k} {v:.3f}" for k, v in units.items())
    )
    return lines


def summary(result: dict[str, Any]) -> list[Row]:
    hundred, five = _find(result, "monitor, 100-min job"), _find(result, FIVE_DAYS[0])
    growth = _per_action_ms(five["bounded"]) / _per_action_ms(hundred["bounded"])
    base_five = five["baseline"].get("projected") or five["baseline"]
    base_growth = (base_five["replay_cpu_s"] / five["bounded"]["actions"] * 1000) / _per_action_ms(hundred["baseline"])
    rows = [
        Row(
            "replay CPU grows linearly with the monitor's job (CPU per action, 5 days vs 100 min)",
            f"{growth:.2f}× ({_per_action_ms(hundred['bounded']):.2f} → {_per_action_ms(five['bounded']):.2f} ms an action);"
            f" largest replay {hundred['bounded']['largest_replay_ms']:.1f} → {five['bounded']['largest_replay_ms']:.1f} ms",
            f"≤ {LINEAR_SLACK}×",
            f"never continued: {base_growth:.1f}×; largest replay {base_five['largest_replay_ms']:.0f} ms"
            + (" (projected)" if "projected" in five["baseline"] else ""),
            growth <= LINEAR_SLACK,
        )
    ]
    for r in result["runs"]:
        b, n = r["bounded"], r["baseline"]
        shown = n.get("projected") or n
        rows.append(
            Row(
                f"replay CPU of a {r['run']} vs one replay per action",
                f"{b['ratio_to_floor']:.2f}× ({b['replay_cpu_s']:.2f} s, {b['episodes']} episodes, {b['actions']} actions,"
                f" {b['events_largest_execution']} events at most)",
                f"≤ {FLOOR_TARGET:.0f}×",
                f"never continued: {shown['ratio_to_floor']:.1f}× ({shown['replay_cpu_s']:.2f} s)"
                + (" (projected)" if "projected" in n else ""),
                b["ratio_to_floor"] <= FLOOR_TARGET,
            )
        )
    return rows


def main() -> None:
    """`python -m bench.figures.replay`: this figure alone (no stack), printed."""
    result = measure()
    print("\n".join(report(result)))
    for row in summary(result):
        print(f"| {row.figure} | {row.measured} | {row.target} | {row.baseline} | {row.verdict} |")


if __name__ == "__main__":
    main()
