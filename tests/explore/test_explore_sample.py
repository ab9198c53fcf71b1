"""A seeded sample of the fault-schedule explorer (the full enumeration: `python -m tests.explore`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .explorer import SCENARIOS, Explorer
from .world import World

pytestmark = pytest.mark.integration

SAMPLE = 8  # faulted schedules per scenario, about 3 s each
SEED = 23


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    started = World().start()
    yield started
    started.stop()


def test_a_seeded_sample_of_single_fault_schedules_keeps_every_invariant(world: World) -> None:
    lines: list[str] = []
    report = Explorer(world, log=lines.append).explore(SCENARIOS.values(), sample=SAMPLE, seed=SEED, budget_s=75)
    print(report.summary())
    assert report.violations == 0, "\n".join(lines)
