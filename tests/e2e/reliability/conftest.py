"""The reliability ledger: every scenario reports into one summary line, whatever the order the tests ran in.

    reliability: S scenarios, F faults injected, B bad inputs tried, R runs, 0 lost, 0 leaked, 0 duplicate jobs, 0 orphaned jobs

- faults: calls the emulator failed, stalled or dropped on purpose, plus storage and host restarts;
- bad inputs: hostile or malformed inputs a parser or route refused (counted apart from faults), with the
  refusals of the parser fuzzers in tests/unit/test_hostile_parsers.py when they run in the same session;
- runs: run records written while the suite's tests ran;
- lost: an accepted request that never ended (run, or superseded by a run that ran), a run without a record;
- duplicate jobs: a run for which the service started more than one job, or two runs of a pipeline that overlapped;
- orphaned jobs: training jobs still running once every pipeline is idle;
- leaked: a key, a secret or a SAS signature in any log the stack wrote, the task hub, storage or an HTTP answer.

Each test reports into its process's ledger (scenarios, faults, bad inputs, requests that must end); an autouse
fixture adds the faults the emulator injected and the records written while each test ran. When the session ends,
the ledger settles every pipeline, checks the invariants over its own stack and scans everything for secrets
(`Ledger.close`), and writes its report; the controller merges the reports of every process into the summary line
(report.py). `make reliability` prints the line last (from `.reliability/summary.txt`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from devhost.stack import LocalStack

from ..helpers import LogLines
from .ledger import OUR_LOGGERS, Ledger
from .report import INVARIANTS, Report


@contextmanager
def listening(ledger: Ledger) -> Iterator[None]:
    """Keep every log line (ours, urllib3's and azure's at DEBUG) for the secrets scan while a test of this suite runs."""
    root = logging.getLogger()
    root.addHandler(ledger.logs)
    levels = {name: logging.getLogger(name).level for name in (*OUR_LOGGERS, "urllib3", "azure")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(ledger.logs)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="session")
def ledger(stack: LocalStack) -> Iterator[Ledger]:
    """This process's ledger; when the session ends, its invariants are checked and its report written."""
    handler = LogLines()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    assert stack.emulator is not None
    counters = requests.get(f"{stack.emulator.http_base}/_emulator/state", timeout=10).json()["counters"]
    book = Ledger(stack, int(counters.get("faults_injected", 0)), handler)
    Report("stack", incomplete="a process ended before its invariants were checked").write()
    yield book
    try:
        with listening(book):
            report = book.close()
    except BaseException as exc:
        Report(
            "stack",
            tests=book.tests,
            scenarios=book.scenarios,
            incomplete=f"checking the invariants failed: {exc!r}"[:300],
        ).write()
        raise
    report.write()
    broken = {name: getattr(report, name) for name in INVARIANTS if getattr(report, name)}
    assert not broken, broken


@pytest.fixture(autouse=True)
def reported(request: pytest.FixtureRequest, ledger: Ledger) -> Iterator[None]:
    """Each test reports: the faults the emulator injected and the run records written while it ran, and its logs."""
    faults, records = ledger.emulator_faults(), len(ledger.records())
    with listening(ledger):
        yield
    ledger.service_faults += ledger.emulator_faults() - faults
    ledger.runs += len(ledger.records()) - records
    ledger.tests.append(request.node.nodeid)
