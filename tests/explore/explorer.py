"""Enumerate single-fault schedules over whole orchestration trees and check the invariants after each.

A scenario is a starting state (requests in a pipeline's queue), the pipeline's run queue started as
the starters start it, and what happens outside the orchestrations (`PLAYS`): a promote request that
wakes the queue after a dry run made a verified model (`promote_model`); an operator who approves in
time, never, or after the deadline (`Approver`, the approval gate); a queue dropped mid-job and a fresh
one started, as `triggers.starter.ensure_running` would (recovery). Its fault-free schedule is run
first, recording every decision point (`engine.Point`); then each point after the scenario's set-up
that its `focus` selects is re-run with one fault (`engine.ACTIVITY_FAULTS`, `SUB_FAULTS`,
`EVENT_FAULTS`, `OPERATOR_FAULTS`). After every schedule, `retraining.invariants.check` runs over what
the services and the store hold, and the scenario's own expectations (`_expected`). A schedule's id,
`scenario/kind@instance|function|occurrence`, replays it alone: `python -m tests.explore --schedule 'ID'`.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.discovery import FunctionApp, load_app
from orchestrators._run import RUN_SIGNAL
from orchestrators.run_queue import WAKE_EVENT
from retraining import invariants

from .engine import (
    ACTIVITY_FAULTS,
    EVENT_FAULTS,
    OPERATOR_FAULTS,
    SUB_FAULTS,
    WRITER_FAULTS,
    Driver,
    Fault,
    Instance,
    Observation,
    Point,
    Work,
    point_name,
)
from .world import World

SWEEP_FOCUS = r"~1(#\d+)?\||:run2\||^notify-"  # the fresh queue, the reconciliation it runs first, its notes
REPEATS = 2  # calls of one function with one input in one instance (polls): faults at the first few only
PROGRESS_EVERY_S = 30.0  # how often a long scenario reports how far it is


@dataclass(frozen=True)
class Scenario:
    """A starting state, how the world outside the orchestrations acts (`play`), and which points are explored.

    play: "queue" (requests wait; a fresh queue runs them), "promote" (a dry-run retrain makes a verified
    model, then a promote request names it and wakes the queue), "approval" (the explorer is the approver:
    `operator`), "recovery" (a queue is dropped while its run's job runs; a fresh queue starts, as
    `triggers.starter.ensure_running` starts it: only once no run of an earlier queue is still going),
    "sweep" (a rollout cut off mid-way; the daily sweep queues a reconciliation, which a fresh queue runs).
    `focus`: a regular expression over a point's text (`instance|function|occurrence`); only matching points
    after the scenario's set-up are faulted (empty: every point).
    """

    name: str
    pipeline: str
    requests: int = 1  # retrain requests waiting in the queue, oldest first (NewestFirst picks the last)
    play: str = "queue"
    operator: str = ""  # approval: "approve" in time, "none" (the wait expires), "late" (approve after the deadline)
    terminate_run: bool = False  # recovery: the run and its monitor are terminated with the queue
    focus: str = ""
    repeats: int = REPEATS
    cut_after: str = ""  # sweep: the rollout step after which the rollout is cut off


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("studio-queue", "weekly-retrain", 2),  # two targets (classic, arm) rolled out in parallel
        Scenario("aml-queue", "aml-retrain", 1),  # a canary on an online endpoint, and a batch endpoint
        # the same, putting back another writer's change: every fault at each step of both rollouts
        Scenario("aml-revert", "aml-revert", 1, focus=r":rollout:\w+\|run_rollout_step:"),
        # promote_model: the promote run, its queue's take and finish, its rollouts' calls (their steps as in studio-queue)
        Scenario("promote", "weekly-retrain", play="promote", focus=r"^retrain-weekly-retrain(#\d+)?\||:run2\|"),
        # the approval gate: the explorer approves when the run waits (its signal early, twice, late), or never
        Scenario(
            "approval",
            "approval",
            play="approval",
            operator="approve",
            focus=r":run1\|(read_run_signals|send_notification|roll_out_target|record_serving_model|write_run_record|event:|operator:)"
            r"|^notify-",
            repeats=4,
        ),
        Scenario(
            "approval-expires",
            "approval",
            play="approval",
            operator="none",
            focus=r":run1\|(read_run_signals|send_notification|write_run_record|event:)|^notify-",
            repeats=4,
        ),
        Scenario(
            "approval-late",
            "approval",
            play="approval",
            operator="late",
            focus=r":run1\|(read_run_signals|send_notification|write_run_record|event:)|^notify-",
            repeats=4,
        ),
        # a queue dropped mid-job: its run goes on to its end, then a fresh queue recovers
        Scenario(
            "recovery",
            "weekly-retrain",
            play="recovery",
            focus=r"~1(#\d+)?\||:run1\|(write_run_record|record_serving_model|roll_out_target)",
        ),
        # a queue and its run terminated mid-job: the fresh queue cancels the job and runs the request again
        Scenario("recovery-terminated", "weekly-retrain", play="recovery", terminate_run=True, focus=r"~1(#\d+)?\|"),
        # a rollout cut off at 50% of its canary, or before its clean-up: the sweep's reconciliation, then recovery
        Scenario("sweep", "aml-retrain", play="sweep", focus=SWEEP_FOCUS, cut_after="traffic_50"),
        Scenario("sweep-cleanup", "aml-retrain", play="sweep", focus=SWEEP_FOCUS, cut_after="check_100"),
        Scenario("sweep-studio", "weekly-retrain", play="sweep", focus=SWEEP_FOCUS, cut_after="apply"),
    )
}


@dataclass
class Result:
    schedule: str
    violations: list[str]
    orchestrations: int
    stopped: str
    seconds: float
    idle: bool = False  # the queue ended idle: the invariants that need an idle queue were checked
    applied: bool = True


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(len(r.violations) for r in self.results)

    def summary(self) -> str:
        orchestrations = sum(r.orchestrations for r in self.results)
        return f"explore: {len(self.results)} schedules, {orchestrations} orchestrations, {self.violations} invariant violations"


def _enqueue(pipeline: str, requests: int, now: datetime, label: str, kind: Any = None, **fields: Any) -> list[str]:
    """Store `requests` requests (oldest first, an hour apart, the last an hour before `now`); their ids."""
    from retraining.models import RunRequest, Trigger, TriggerKind
    from retraining.queue import RunQueue
    from retraining.settings import Settings
    from retraining.storage import TrainingStorage

    settings = Settings.from_env()
    queue = RunQueue(TrainingStorage.from_settings(settings), settings.run_records_container)
    found = []
    for n in range(requests):
        at = now - timedelta(hours=requests - n)
        trigger = Trigger(kind or TriggerKind.HTTP, f"explore:{label}:{n}", at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        entry, _ = queue.enqueue(RunRequest(pipeline, trigger, **fields), at)
        found.append(entry.request_id)
    return found


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _input(instance: Instance) -> dict[str, Any]:
    given = json.loads(instance.input) if isinstance(instance.input, str) else instance.input
    if isinstance(given, str):
        given = json.loads(given)
    return given if isinstance(given, dict) else {}


def _is_run(instance: Instance) -> bool:
    return instance.name in invariants.RUN_ORCHESTRATIONS


@dataclass
class Approver:
    """The operator of an approval scenario, through the same store the approve route writes (`retraining.decisions`).

    "approve": once the run waits for `run_signal` in phase awaiting_approval, store an approve decision
    stamped with the explorer's clock and raise `run_signal` to the run instance. Its point,
    `run|operator:approve|0`, takes OPERATOR_FAULTS: "early" acts as soon as the phase shows (the signal
    arrives while the run's first look is in flight, before its waiter exists), "twice" raises the signal
    twice (the route called twice), "late" delivers the signal only after the run ended (the run must
    find the decision at its next look).
    "none": nobody decides; the wait expires.
    "late": once the explorer's clock reached the deadline (the expiry timer fired, the run's last look is
    not made yet), store an approve stamped after `expires_at` and raise the signal: it must take no effect.
    """

    mode: str
    acted: set[str] = field(default_factory=set)

    def __call__(self, driver: Driver) -> None:
        if self.mode == "none":
            return
        for instance in list(driver.seen.instances.values()):
            if instance.name != "retrain_pipeline" or not instance.running or instance.key in self.acted:
                continue
            status = instance.custom_status if isinstance(instance.custom_status, dict) else {}
            if status.get("phase") != "awaiting_approval":
                continue
            if self.mode == "late":
                expires = _moment(str(status["expires_at"]))
                if driver.clock < expires:
                    continue
                self.acted.add(instance.key)
                self._decide(instance, max(driver.clock, expires) + timedelta(milliseconds=1))
                driver.raise_event(instance.instance_id, RUN_SIGNAL)
                continue
            point = Point(driver.alias(instance.key), "operator:approve", 0)
            if point not in driver.seen.operator_points:
                driver.seen.operator_points.append(point)
            if not driver.faulted(point, "early") and RUN_SIGNAL not in instance.waiting:
                continue
            self.acted.add(instance.key)
            self._decide(instance, driver.clock)
            if driver.faulted(point, "late"):
                driver.raise_late(instance.instance_id, RUN_SIGNAL)
                continue
            driver.raise_event(instance.instance_id, RUN_SIGNAL)
            if driver.faulted(point, "twice"):
                driver.raise_event(instance.instance_id, RUN_SIGNAL)

    @staticmethod
    def _decide(instance: Instance, at: datetime) -> None:
        from retraining import operations
        from retraining.models import Decision, DecisionAction
        from retraining.runtime import settings, storage

        given = _input(instance)
        current = settings()
        decision = Decision(DecisionAction.APPROVE, "explorer", _iso(at), "approved by the explorer")
        operations.decisions(current, storage(current)).record(given["request"]["pipeline"], given["run_id"], decision)


@dataclass
class OtherWriter:
    """Another writer on an Azure ML endpoint (a person, a script), just before a rollout step runs: it puts back a
    deployment that is not the rollout's own, as a person taking the new model out by hand does. On an online
    endpoint all live traffic goes to the deployment with the most traffic that is not the rollout's (else the
    first by name); on a batch endpoint the default becomes the current one if it is not the rollout's, else the
    first other by name. It changes nothing where that is already so."""

    world: World
    pipeline: str
    changed: list[str] = field(default_factory=list)  # the targets it changed

    def __call__(self, item: Work) -> bool:
        if item.function != "run_rollout_step":
            return False
        target = next((t for t in _targets(self.pipeline) if t["name"] == item.payload.get("target")), None)
        own = (item.payload.get("state") or {}).get("deployment")
        if target is None or own is None or target["kind"] not in ("aml-online", "aml-batch"):
            return False
        aml, online = self.world.aml(), target["kind"] == "aml-online"
        path = f"/{'onlineEndpoints' if online else 'batchEndpoints'}/{target['service']}"
        endpoint = aml.ok("GET", path)
        names = sorted(d["name"] for d in aml.ok("GET", f"{path}/deployments")["value"])
        if online:
            traffic = {k: v for k, v in endpoint["properties"]["traffic"].items() if v}
            others = sorted((n for n in names if n != own), key=lambda n: -traffic.get(n, 0))
            if not others or traffic == {others[0]: 100}:
                return False
            answer = aml.set_traffic(target["service"], {others[0]: 100})
        else:
            default = (endpoint["properties"].get("defaults") or {}).get("deploymentName")
            others = [n for n in names if n != own]
            if not others or (default and default != own):
                return False
            endpoint["properties"]["defaults"] = {"deploymentName": others[0]}
            answer = aml.call("PUT", path, endpoint)
        if answer.status_code not in (200, 201, 202):
            return False
        self.changed.append(target["name"])
        return True


def _queue_idle(root: Instance) -> bool:
    status = root.custom_status if isinstance(root.custom_status, dict) else {}
    return root.name == "run_queue" and status.get("state") == "idle"


def _targets(pipeline: str) -> list[invariants.Target]:
    from .world import explore_definitions

    return invariants.targets_of(next(p for p in explore_definitions()["pipelines"] if p["name"] == pipeline))


def _instances(driver: Driver) -> list[invariants.Instance]:
    seen = driver.seen
    submitted: dict[str, list[str]] = {}
    for key, function, _, result in seen.calls:
        if function == "submit_training_job" and isinstance(result, dict) and result.get("job_id"):
            submitted.setdefault(key, []).append(str(result["job_id"]))
    found: list[invariants.Instance] = []
    for instance in seen.instances.values():
        pipeline = run_id = request_id = None
        if _is_run(instance):
            given = _input(instance)
            run_id, pipeline = given.get("run_id"), given.get("request", {}).get("pipeline")
            request_id = given.get("request_id")
        found.append(
            invariants.Instance(
                instance=instance.key,
                name=instance.name,
                status=instance.status,
                started_at=instance.started_at,
                ended_at=instance.ended_at,
                running_children=list(instance.running_children),
                pipeline=pipeline,
                run_id=run_id,
                request_id=request_id,
                jobs=sorted(set(submitted.get(driver.alias(instance.key), []))),
                output=instance.output,
            )
        )
    return found


def _mid_job(driver: Driver) -> bool:
    """A run's monitor has polled its job and found it running."""
    return any(
        function == "poll_training_job" and isinstance(result, dict) and result.get("state") in invariants.RUNNING_JOB
        for _, function, _, result in driver.seen.calls
    )


def _expected(scenario: Scenario, observed: invariants.Observed) -> list[str]:
    """What a scenario promises beyond the invariants."""
    found = []
    if scenario.play == "approval" and scenario.operator in ("none", "late"):
        decided = observed.get("decisions", {})
        for record in observed["records"]:
            if not record.get("approval"):
                continue
            if record["status"] != "Expired":
                found.append(
                    f"run {record['run_id']} waited for an approval nobody gave in time, but ended {record['status']}"
                )
            if scenario.operator == "late" and str(record["run_id"]) not in decided:
                found.append(
                    f"run {record['run_id']}: the explorer stored no late decision (the schedule tests nothing)"
                )
    reconciled = any((r.get("request") or {}).get("action") == "reconcile" for r in observed["records"])
    if scenario.play == "sweep" and observed["queue_idle"] and not reconciled:
        found.append("no reconciliation ran (the cut-off left no journal entry, or the sweep's request no record)")
    if scenario.play == "promote":
        promoted = [r for r in observed["records"] if (r.get("request") or {}).get("action") == "promote"]
        if not promoted and observed["queue_idle"]:
            found.append("the promote request left no run record")
    return found


def _writer_reported(writer: OtherWriter, observed: invariants.Observed) -> list[str]:
    """A target another writer changed mid-rollout is reported by the run's record (or put back: `revert`)."""
    found = []
    for name in writer.changed:
        outcomes = [o for r in observed["records"] for o in r.get("targets") or [] if o.get("target") == name]
        if not any("changed_by_another_writer" in (o.get("progress") or {}) for o in outcomes):
            found.append(f"another writer changed target {name} mid-rollout, and no run record says so")
    return found


def _fresh_queue(driver: Driver, pipeline: str) -> Instance:
    """A starter starts the pipeline's queue (`triggers.starter.ensure_running`): a fresh one, which recovers first."""
    from retraining.inputs import QueueInput
    from retraining.instances import queue_instance_id

    return driver.launch("run_queue", QueueInput(pipeline, fresh=True).to_dict(), queue_instance_id(pipeline))


def _play_queue(driver: Driver, scenario: Scenario) -> Instance:
    _enqueue(scenario.pipeline, scenario.requests, driver.clock, scenario.name)
    root = _fresh_queue(driver, scenario.pipeline)
    driver.drive(root)
    return root


def _play_promote(driver: Driver, scenario: Scenario) -> Instance:
    """A dry-run retrain makes a verified model (set-up, never faulted); a promote request then rolls it out."""
    from retraining.instances import queue_instance_id
    from retraining.models import RequestAction

    _enqueue(scenario.pipeline, 1, driver.clock, f"{scenario.name}:source", dry_run=True)
    root = _fresh_queue(driver, scenario.pipeline)
    driver.drive(root)
    sources = [_input(i).get("run_id") for i in driver.seen.instances.values() if i.name == "retrain_pipeline"]
    driver.mark()
    _enqueue(
        scenario.pipeline,
        1,
        driver.clock + timedelta(hours=1),
        scenario.name,
        action=RequestAction.PROMOTE,
        source_run=sources[0] if sources else None,
        requested_by="explorer",
    )
    driver.raise_event(queue_instance_id(scenario.pipeline), WAKE_EVENT)  # what ensure_running does for a running queue
    driver.drive(root)
    return root


def _play_recovery(driver: Driver, scenario: Scenario) -> Instance:
    """Drive a queue until its run's job runs, drop the queue (and, if asked, the run), start a fresh one.

    As `triggers.starter.ensure_running`: the fresh queue starts only once no run an earlier queue
    started is still going, so a run that was not terminated is driven to its end first (its result
    reaches no queue).
    """
    _enqueue(scenario.pipeline, scenario.requests, driver.clock, scenario.name)
    first = _fresh_queue(driver, scenario.pipeline)
    driver.drive(first, until=lambda: _mid_job(driver))
    queue = driver.current(first.instance_id)
    assert queue is not None
    driver.terminate(queue)
    if scenario.terminate_run:  # the run and its monitor, terminated by hand, parent first
        for instance in [i for i in driver.seen.instances.values() if i.running and _is_run(i)]:
            for part in [i for i in driver.seen.instances.values() if i.instance_id.startswith(instance.instance_id)]:
                driver.terminate(part)
    driver.mark()
    driver.drive(first, until=lambda: not any(i.running and _is_run(i) for i in driver.seen.instances.values()))
    _settle_earlier_runs(driver, scenario.pipeline)
    root = _fresh_queue(driver, scenario.pipeline)
    driver.drive(root)
    return root


def _settle_earlier_runs(driver: Driver, pipeline: str) -> None:
    """What `ensure_running` does before a fresh queue: a completed run that could not write its record gets it."""
    from retraining.settings import Settings
    from triggers.starter import write_missing_record

    for instance in driver.seen.instances.values():
        if _is_run(instance) and instance.status == "completed" and isinstance(instance.output, dict):
            run_id = instance.output.get("run_id")
            if isinstance(run_id, str):
                write_missing_record(Settings.from_env(), pipeline, run_id, instance.output)


def _rollout_passed(driver: Driver, step: str) -> bool:
    """A rollout has finished its step named `step` (its effect on the target done, and journalled)."""
    return any(
        function == "run_rollout_step"
        and (payload.get("step") or {}).get("name") == step
        and isinstance(result, dict)
        and result.get("status") == "done"
        for _, function, payload, result in driver.seen.calls
    )


def _play_sweep(driver: Driver, scenario: Scenario) -> Instance:
    """A rollout cut off mid-way, then the daily sweep's reconciliation (`reconcile_targets`).

    Set-up: a queue runs a retrain until a rollout has finished its step `scenario.cut_after`; then the queue, the run and
    its rollouts are terminated by hand (as a lost deployment slot leaves them). The sweep
    (`triggers.retention`) finds the target's rollout journal entry and queues a reconciliation; a fresh
    queue takes it first and recovers the interrupted request.
    """
    from retraining.journal import RolloutJournal
    from retraining.models import RequestAction, TriggerKind
    from retraining.runtime import settings, storage

    _enqueue(scenario.pipeline, scenario.requests, driver.clock, scenario.name)
    first = _fresh_queue(driver, scenario.pipeline)
    driver.drive(first, until=lambda: _rollout_passed(driver, scenario.cut_after))
    for instance in list(driver.seen.instances.values()):  # parents first: each stops where it is
        driver.terminate(instance)
    driver.mark()
    current = settings()
    journals = [
        RolloutJournal(storage(current), current.run_records_container, scenario.pipeline, target["name"])
        for target in _targets(scenario.pipeline)
    ]
    if any(journal.read() is not None for journal in journals):  # what the sweep looks for
        _enqueue(
            scenario.pipeline,
            1,
            driver.clock,
            f"{scenario.name}:sweep",
            kind=TriggerKind.SWEEP,
            action=RequestAction.RECONCILE,
        )
    root = _fresh_queue(driver, scenario.pipeline)
    driver.drive(root)
    return root


def _play_approval(driver: Driver, scenario: Scenario) -> Instance:
    return _play_queue(driver, scenario)  # the operator (`Approver`) acts from inside the driver's loop


PLAYS: dict[str, Callable[[Driver, Scenario], Instance]] = {
    "queue": _play_queue,
    "promote": _play_promote,
    "approval": _play_approval,
    "recovery": _play_recovery,
    "sweep": _play_sweep,
}


_last_start = datetime.min.replace(tzinfo=UTC)


def _next_start() -> datetime:
    """A schedule's virtual start: a second after the last one's in this process, so its run ids, and so its model
    blobs' paths, are its own (the emulator's seed keeps a classic endpoint's last resource location, so a path
    reused from an earlier schedule would read as applied before the swap happened); and never before real time,
    since activities compare deadlines with real time (a clock left behind by a long enumeration would make every
    policy deadline pass, and every schedule a timeout's)."""
    global _last_start
    _last_start = max(datetime.now(UTC).replace(microsecond=0), _last_start + timedelta(seconds=1))
    return _last_start


class Explorer:
    def __init__(self, world: World, app: FunctionApp | None = None, log: Callable[[str], None] = print) -> None:
        self.world = world
        self.app = app or load_app()
        self.log = log

    def run(self, scenario: Scenario, fault: Fault | None) -> tuple[Result, Observation]:
        began = time.monotonic()
        self.world.reset()
        jobs_before = sorted(invariants._jobs(self.world.emulator_state()))
        operator = Approver(scenario.operator) if scenario.play == "approval" else None
        writer = OtherWriter(self.world, scenario.pipeline)
        driver = Driver(self.app, fault, start=_next_start(), idle=_queue_idle, operator=operator, writer=writer)
        root = PLAYS[scenario.play](driver, scenario)
        seen = driver.finish()
        pipeline = scenario.pipeline
        latest = driver.current(root.instance_id)  # the queue continues as new after each run: its latest generation
        idle = latest is not None and latest.running and _queue_idle(latest)
        decisions = self.world.named_blobs(f"{pipeline}/decisions/")
        observed = invariants.Observed(
            requests=self.world.blobs(f"{pipeline}/requests/"),
            records=self.world.blobs(f"{pipeline}/runs/"),
            serving={pipeline: (self.world.blobs(f"{pipeline}/serving.json") or [{}])[0]},
            emulator=self.world.emulator_state(),
            instances=_instances(driver),
            targets=_targets(pipeline),
            queue_idle=idle,
            jobs_before=jobs_before,
            decisions={name.rsplit("/", 1)[-1].removesuffix(".json"): value for name, value in decisions.items()},
            deliveries=self.world.blobs(f"{pipeline}/deliveries/"),
            webhook_accepted=self.world.webhook_accepted(),
        )
        expected = _expected(scenario, observed) + _writer_reported(writer, observed)
        violations = invariants.check(observed) + [f"scenario: {v}" for v in expected]
        if seen.stopped.startswith(("stuck", "gave up")):
            violations.append(f"progress: the schedule {seen.stopped}")
        schedule = f"{scenario.name}/{fault.text() if fault else 'none'}"
        result = Result(schedule, violations, len(seen.instances), seen.stopped, time.monotonic() - began, idle=idle)
        result.applied = fault is None or seen.fault_applied
        return result, seen

    def faults(self, base: Observation, scenario: Scenario | None = None) -> list[Fault]:
        scenario = scenario or Scenario("", "")
        points, subs, events, operators = base.explored_from
        focus = re.compile(scenario.focus) if scenario.focus else None

        def chosen(point: Point) -> bool:
            return focus is None or focus.search(point.text()) is not None

        found: list[Fault] = []
        repeats: dict[tuple[str, str, str], int] = {}
        payloads: dict[tuple[str, str], list[str]] = {}
        for key, function, payload, _ in base.calls:
            payloads.setdefault((key, point_name(function, payload)), []).append(json.dumps(payload, sort_keys=True))
        for point in base.points[points:]:
            if not chosen(point):
                continue
            inputs = payloads.get((point.instance, point.function), [])
            same = inputs[point.occurrence] if point.occurrence < len(inputs) else ""
            count = repeats[(point.instance, point.function, same)] = (
                repeats.get((point.instance, point.function, same), 0) + 1
            )
            if count > scenario.repeats:
                continue
            for kind in ACTIVITY_FAULTS:
                if kind == "midway" and base.writes.get(point, 0) < 2:
                    continue
                found.append(Fault(kind, point))
        found += [
            Fault(kind, point)
            for point in base.points[points:]
            if chosen(point) and point.function.startswith("run_rollout_step:")
            for kind in WRITER_FAULTS
        ]
        found += [Fault(kind, point) for point in base.sub_points[subs:] if chosen(point) for kind in SUB_FAULTS]
        found += [Fault(kind, point) for point in base.event_points[events:] if chosen(point) for kind in EVENT_FAULTS]
        found += [
            Fault(kind, point)
            for point in base.operator_points[operators:]
            if chosen(point)
            for kind in OPERATOR_FAULTS
        ]
        return found

    def explore(
        self, scenarios: Iterable[Scenario], *, sample: int | None = None, seed: int = 0, budget_s: float | None = None
    ) -> Report:
        """Every scenario's fault-free schedule, then its faulted ones; `budget_s` is shared evenly by the scenarios."""
        chosen = list(scenarios)
        report = Report()
        share = budget_s / len(chosen) if budget_s is not None and chosen else None
        for scenario in chosen:
            began = time.monotonic()
            part = Report()
            result, base = self.run(scenario, None)
            self._record(part, result)
            faults = self.faults(base, scenario)
            if sample is not None:
                faults = random.Random(f"{seed}:{scenario.name}").sample(faults, min(sample, len(faults)))
            noted = began
            for done, fault in enumerate(faults, 1):
                if share is not None and time.monotonic() - began > share:
                    break
                result, _ = self.run(scenario, fault)
                if result.applied:
                    self._record(part, result)
                if time.monotonic() - noted >= PROGRESS_EVERY_S:  # a scenario can take half an hour: say how far
                    noted = time.monotonic()
                    self.log(
                        f"  {scenario.name}: {done} of {len(faults)} faulted schedules tried, "
                        f"{part.violations} violations so far, {noted - began:.0f} s"
                    )
            self.log(f"{scenario.name}: {part.summary()}")
            report.results += part.results
        self.log(report.summary())
        return report

    def replay(self, schedule: str) -> Report:
        name, fault = schedule.split("/", 1)
        report = Report()
        result, _ = self.run(SCENARIOS[name], None if fault == "none" else Fault.parse(fault))
        self._record(report, result)
        self.log(report.summary())
        return report

    def _record(self, report: Report, result: Result) -> None:
        report.results.append(result)
        if result.violations:
            self.log(f"VIOLATION in schedule {result.schedule!r} ({result.stopped}):")
            for violation in result.violations:
                self.log(f"    {violation}")


def points_of(seen: Observation) -> list[Point]:
    return [*seen.points, *seen.sub_points, *seen.event_points]


def describe(seen: Observation) -> dict[str, Any]:
    return {"stopped": seen.stopped, "instances": {k: i.status for k, i in seen.instances.items()}}
