"""A seeded sample of the fault-schedule explorer (the full enumeration: `python -m tests.explore`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .explorer import SCENARIOS, Explorer
from .world import World

pytestmark = pytest.mark.integration

SAMPLE = 2  # faulted schedules per scenario after its fault-free one, about 2 to 4 s each
SEED = 23
BUDGET_S = 60  # shared evenly by the scenarios: a slow machine samples fewer schedules, never runs longer


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    started = World().start()
    yield started
    started.stop()


def test_a_seeded_sample_of_single_fault_schedules_keeps_every_invariant(world: World) -> None:
    lines: list[str] = []
    report = Explorer(world, log=lines.append).explore(SCENARIOS.values(), sample=SAMPLE, seed=SEED, budget_s=BUDGET_S)
    print("\n".join(line for line in lines if line.startswith(tuple(SCENARIOS))))
    print(report.summary())
    assert {r.schedule.split("/", 1)[0] for r in report.results} == set(SCENARIOS)  # every scenario ran
    # each fault-free schedule ends with its queue idle, so the invariants that need an idle queue were checked
    assert [r.schedule for r in report.results if r.schedule.endswith("/none") and not r.idle] == []
    assert report.violations == 0, "\n".join(lines)


# Schedules on which the explorer found a defect, each replayed alone: they keep every invariant now.
FOUND = (
    "studio-queue/midway@retrain-weekly-retrain|take_next_request|0",  # a retried take took the wrong request
    "studio-queue/always@retrain-weekly-retrain:run1:rollout:endpoint2|plan_rollout|0",  # a failed plan failed the run
    "aml-queue/outage@retrain-aml-retrain:run1:rollout:online|run_rollout_step:check_50|0",  # a failed rollback read 'failed'
    "studio-queue/always@retrain-weekly-retrain:run1|write_run_record|0",  # a job no record named
    "studio-queue/crash@retrain-weekly-retrain:run1|submit_training_job|0",  # a second job for one run
    "recovery/always@retrain-weekly-retrain:run1|write_run_record|0",  # a completed run ran again
    # another writer's split, once the app's own change had succeeded, was taken for that change still on its way
    "aml-queue/other-writer@retrain-aml-retrain:run1:rollout:online|run_rollout_step:traffic_50|1",
    # another writer's split just before the clean-up: the run recorded its model as serving, the old one served
    "aml-queue/other-writer@retrain-aml-retrain:run1:rollout:online|run_rollout_step:cleanup|0",
    "aml-queue/other-writer@retrain-aml-retrain:run1:rollout:batch|run_rollout_step:default|1",  # the same on a batch
    "aml-queue/other-writer@retrain-aml-retrain:run1:rollout:batch|run_rollout_step:cleanup|0",  # endpoint's default
)


@pytest.mark.parametrize("schedule", FOUND)
def test_a_schedule_that_once_broke_an_invariant_keeps_them_all(world: World, schedule: str) -> None:
    lines: list[str] = []
    report = Explorer(world, log=lines.append).replay(schedule)
    assert [r.applied for r in report.results] == [True], f"the fault of {schedule} no longer applies"
    assert report.violations == 0, "\n".join(lines)
