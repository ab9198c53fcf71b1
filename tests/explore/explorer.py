"""Enumerate single-fault schedules over whole orchestration trees and check the invariants after each.

A scenario is a starting state (requests in a pipeline's queue) and a root orchestration (the pipeline's
run queue, started as the starters start it). Its fault-free schedule is run first, recording every
decision point (`engine.Point`); then each point is re-run with one fault (`engine.ACTIVITY_FAULTS`,
`SUB_FAULTS`, `EVENT_FAULTS`). After every schedule, `retraining.invariants.check` runs over what the
services and the store hold. A schedule's id, `scenario/kind@instance|function|occurrence`, replays it
alone: `python -m tests.explore --schedule 'ID'`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.discovery import FunctionApp, load_app
from retraining import invariants

from .engine import ACTIVITY_FAULTS, EVENT_FAULTS, SUB_FAULTS, Driver, Fault, Instance, Observation, Point
from .world import World

START = datetime.now(UTC).replace(second=0, microsecond=0)  # activities compare deadlines with real time
REPEATS = 2  # calls of one function with one input in one instance (polls): faults at the first few only


@dataclass(frozen=True)
class Scenario:
    name: str
    pipeline: str
    requests: int  # retrain requests waiting in the queue, oldest first (NewestFirst picks the last)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("studio-queue", "weekly-retrain", 2),  # two targets (classic, arm) rolled out in parallel
        Scenario("aml-queue", "aml-retrain", 1),  # a canary on an online endpoint, and a batch endpoint
    )
}


@dataclass
class Result:
    schedule: str
    violations: list[str]
    orchestrations: int
    stopped: str
    seconds: float
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


def _enqueue(scenario: Scenario) -> None:
    from retraining.models import RunRequest, Trigger, TriggerKind
    from retraining.queue import RunQueue
    from retraining.settings import Settings
    from retraining.storage import TrainingStorage

    queue = RunQueue(TrainingStorage.from_settings(Settings.from_env()), Settings.from_env().run_records_container)
    for n in range(scenario.requests):
        at = START - timedelta(hours=scenario.requests - n)
        trigger = Trigger(TriggerKind.HTTP, f"explore:{scenario.name}:{n}", at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        queue.enqueue(RunRequest(scenario.pipeline, trigger), at)


def _queue_idle(root: Instance) -> bool:
    status = root.custom_status if isinstance(root.custom_status, dict) else {}
    return root.name == "run_queue" and status.get("state") == "idle"


def _targets(pipeline: str) -> list[invariants.Target]:
    from .world import explore_definitions

    definition = next(p for p in explore_definitions()["pipelines"] if p["name"] == pipeline)
    found: list[invariants.Target] = []
    for target in definition.get("targets", []):
        kind = target.get("kind", "classic")
        service = {
            "classic": target["name"],
            "arm": target["name"],
        }.get(kind, target.get("endpoint", target["name"]))
        found.append(invariants.Target(pipeline=pipeline, name=target["name"], kind=kind, service=service))
    return found


def _instances(seen: Observation) -> list[invariants.Instance]:
    found: list[invariants.Instance] = []
    for instance in seen.instances.values():
        pipeline = run_id = None
        if instance.name in ("retrain_pipeline", "promote_model"):
            given = json.loads(instance.input) if isinstance(instance.input, str) else instance.input
            if isinstance(given, str):
                given = json.loads(given)
            run_id, pipeline = given.get("run_id"), given.get("request", {}).get("pipeline")
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
            )
        )
    return found


class Explorer:
    def __init__(self, world: World, app: FunctionApp | None = None, log: Callable[[str], None] = print) -> None:
        self.world = world
        self.app = app or load_app()
        self.log = log

    def run(self, scenario: Scenario, fault: Fault | None) -> tuple[Result, Observation]:
        began = time.monotonic()
        self.world.reset()
        jobs_before = sorted(invariants._jobs(self.world.emulator_state()))
        _enqueue(scenario)
        from retraining.inputs import QueueInput
        from retraining.instances import queue_instance_id

        driver = Driver(self.app, fault, start=START, idle=_queue_idle)
        seen = driver.run(
            "run_queue", QueueInput(scenario.pipeline, fresh=True).to_dict(), queue_instance_id(scenario.pipeline)
        )
        root = driver.roots[0]
        observed = invariants.Observed(
            requests=self.world.blobs(f"{scenario.pipeline}/requests/"),
            records=self.world.blobs(f"{scenario.pipeline}/runs/"),
            serving={scenario.pipeline: (self.world.blobs(f"{scenario.pipeline}/serving.json") or [{}])[0]},
            emulator=self.world.emulator_state(),
            instances=_instances(seen),
            targets=_targets(scenario.pipeline),
            queue_idle=_queue_idle(root) and root.running,
            jobs_before=jobs_before,
        )
        violations = invariants.check(observed)
        if seen.stopped.startswith(("stuck", "gave up")):
            violations.append(f"progress: the schedule {seen.stopped}")
        schedule = f"{scenario.name}/{fault.text() if fault else 'none'}"
        result = Result(schedule, violations, len(seen.instances), seen.stopped, time.monotonic() - began)
        result.applied = fault is None or seen.fault_applied
        return result, seen

    def faults(self, base: Observation) -> list[Fault]:
        found: list[Fault] = []
        repeats: dict[tuple[str, str, str], int] = {}
        payloads = {}
        for key, function, payload, _ in base.calls:
            payloads.setdefault((key, function), []).append(json.dumps(payload, sort_keys=True))
        for point in base.points:
            inputs = payloads.get((point.instance, point.function), [])
            same = inputs[point.occurrence] if point.occurrence < len(inputs) else ""
            count = repeats[(point.instance, point.function, same)] = (
                repeats.get((point.instance, point.function, same), 0) + 1
            )
            if count > REPEATS:
                continue
            for kind in ACTIVITY_FAULTS:
                if kind == "midway" and base.writes.get(point, 0) < 2:
                    continue
                found.append(Fault(kind, point))
        found += [Fault(kind, point) for point in base.sub_points for kind in SUB_FAULTS]
        found += [Fault(kind, point) for point in base.event_points for kind in EVENT_FAULTS]
        return found

    def explore(
        self, scenarios: Iterable[Scenario], *, sample: int | None = None, seed: int = 0, budget_s: float | None = None
    ) -> Report:
        report = Report()
        began = time.monotonic()
        for scenario in scenarios:
            result, base = self.run(scenario, None)
            self._record(report, result)
            faults = self.faults(base)
            if sample is not None:
                faults = random.Random(f"{seed}:{scenario.name}").sample(faults, min(sample, len(faults)))
            for fault in faults:
                if budget_s is not None and time.monotonic() - began > budget_s:
                    break
                result, _ = self.run(scenario, fault)
                if result.applied:
                    self._record(report, result)
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
