"""The reliability summary, built from what each test reports, whatever the order and however xdist splits the tests.

    reliability: S scenarios, F faults injected, B bad inputs tried, R runs, 0 lost, 0 leaked, 0 duplicate jobs, 0 orphaned jobs

Each process that runs tests (the one pytest process, or each xdist worker) keeps its own counts: the stack's
tests in the `ledger` fixture (conftest.py beside this file), the pure parser fuzzers of
tests/unit/test_hostile_parsers.py in a `Tally`. When its session ends, each writes a `Report` as JSON under
`.reliability/run-<id>/`; the stack's ledger first checks that process's invariants over its own stack. The
controlling process (tests/conftest.py's hooks) merges the reports, writes `.reliability/summary.txt` when the
stack's suite took part, and fails the session if an invariant broke anywhere. The minimum counts (faults,
runs, bad inputs) apply to the merged counts, and only when every module they depend on ran with nothing
deselected: one module run alone checks its own invariants, not the suite's totals.

This module needs only the standard library: the controller imports it without starting anything.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / ".reliability"
SUMMARY = FOLDER / "summary.txt"
RUN = "RELIABILITY_RUN"  # set by the controller, inherited by xdist's workers: where this session's reports go
SUITE = "tests/e2e/reliability"
PARSERS = "tests/unit/test_hostile_parsers.py"
MINIMUM_FAULTS = 100
MINIMUM_BAD_INPUTS = 1000
MINIMUM_RUNS = 20
MINIMUM_HUB = 5  # orchestration instances the secrets scan read
MINIMUM_LOG_LINES = 101

_deselected: list[str] = []


@dataclass
class Report:
    """What one process's tests of one kind ("stack" or "parsers") saw."""

    kind: str
    tests: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    faults: int = 0
    bad_inputs: int = 0
    runs: int = 0
    lost: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    duplicate_jobs: list[str] = field(default_factory=list)
    orphaned_jobs: list[str] = field(default_factory=list)
    hub: int = 0
    log_lines: int = 0
    deselected: list[str] = field(default_factory=list)
    incomplete: str | None = None  # why this process's invariants were not checked

    def write(self) -> None:
        folder = run_folder()
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.deselected = list(_deselected)
        (folder / f"{worker}-{self.kind}.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, path: Path) -> Report:
        return cls(**json.loads(path.read_text()))


@dataclass
class Tally:
    """The pure parser fuzzers' counts: refusals are bad inputs tried."""

    bad_inputs: int = 0
    tests: list[str] = field(default_factory=list)

    def report(self) -> Report:
        return Report("parsers", tests=self.tests, bad_inputs=self.bad_inputs)


@dataclass
class Merged:
    reports: list[Report]

    def _all(self, name: str) -> list[Any]:
        return [item for report in self.reports for item in getattr(report, name)]

    def _sum(self, name: str) -> int:
        return sum(int(getattr(report, name)) for report in self.reports)

    @property
    def scenarios(self) -> list[str]:
        return sorted(set(self._all("scenarios")))  # the secrets canary runs in each process: one scenario

    def ran(self, module: str) -> bool:
        """Each test_*.py file of `module` (a file, or a folder) ran tests in some process, and none of its tests was deselected."""
        modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / module).glob("test_*.py")) or [module]
        ran = {test.split("::", 1)[0] for test in self._all("tests")}
        skipped = {test.split("::", 1)[0] for test in self._all("deselected")}
        return all(m in ran and m not in skipped for m in modules)

    def line(self) -> str:
        incomplete = [r.incomplete for r in self.reports if r.incomplete]
        if incomplete:
            return (
                f"reliability: incomplete ({len(self.scenarios)} scenarios ran; {'; '.join(sorted(set(incomplete)))})"
            )
        return (
            f"reliability: {len(self.scenarios)} scenarios, {self._sum('faults')} faults injected, "
            f"{self._sum('bad_inputs')} bad inputs tried, {self._sum('runs')} runs, {len(self._all('lost'))} lost, "
            f"{len(self._all('leaked'))} leaked, {len(self._all('duplicate_jobs'))} duplicate jobs, "
            f"{len(self._all('orphaned_jobs'))} orphaned jobs"
        )

    def failures(self) -> list[str]:
        """Broken invariants, always; too few faults, runs or bad inputs, when the suite they depend on ran whole."""
        found = [f"{name.replace('_', ' ')}: {item}" for name in INVARIANTS for item in self._all(name)]
        found += [f"incomplete: {r.incomplete}" for r in self.reports if r.incomplete]
        if self.ran(SUITE):
            minimums = {
                "faults injected": (self._sum("faults"), MINIMUM_FAULTS),
                "runs": (self._sum("runs"), MINIMUM_RUNS),
                "orchestration instances scanned": (self._sum("hub"), MINIMUM_HUB),
                "log lines scanned": (self._sum("log_lines"), MINIMUM_LOG_LINES),
            }
            if self.ran(PARSERS):
                minimums["bad inputs tried"] = (self._sum("bad_inputs"), MINIMUM_BAD_INPUTS)
            found += [f"{what}: {got}, fewer than {least}" for what, (got, least) in minimums.items() if got < least]
        return found


INVARIANTS = ("lost", "leaked", "duplicate_jobs", "orphaned_jobs")


def run_folder() -> Path | None:
    run = os.environ.get(RUN)
    return FOLDER / f"run-{run}" if run else None


def begin() -> None:
    """On the controller, before any worker starts: a fresh folder for this session's reports."""
    os.environ[RUN] = uuid.uuid4().hex[:12]


def deselected(items: Iterable[Any]) -> None:
    _deselected.extend(item.nodeid for item in items)


def finish() -> tuple[str, list[str]] | None:
    """On the controller, once every worker is done: merge the reports, write the summary if the stack's suite took
    part; answer the line and what failed (None when no reliability test ran)."""
    folder = run_folder()
    if folder is None or not folder.is_dir():
        return None
    reports = [Report.read(path) for path in sorted(folder.glob("*.json"))]
    shutil.rmtree(folder, ignore_errors=True)
    if not any(r.kind == "stack" for r in reports):
        return None  # the parser fuzzers alone: their own tests checked them; no summary to write
    merged = Merged(reports)
    line = merged.line()
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(line + "\n")
    return line, merged.failures()
