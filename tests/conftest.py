"""Session fixtures: a real Azurite and a real emulator process, started once, failing loudly.

The hooks merge what the reliability tests reported in every process into one summary
(tests/e2e/reliability/report.py): they run on the controller, whichever tests were selected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite, Emulator, start_azurite, start_emulator

from .e2e.reliability import report

_RELIABILITY: dict[str, tuple[str, list[str]]] = {}


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _controller(config):
        report.begin()


def pytest_deselected(items: list[pytest.Item]) -> None:
    report.deselected(items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _controller(session.config):
        return
    found = report.finish()
    if found is None:
        return
    _RELIABILITY["result"] = found
    if found[1] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if "result" not in _RELIABILITY:
        return
    line, failures = _RELIABILITY.pop("result")
    terminalreporter.write_sep("-", "reliability")
    for failure in failures:
        terminalreporter.write_line(f"FAILED {failure}", red=True)
    terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory, azurite: Azurite) -> Iterator[Emulator]:
    server = start_emulator(tmp_path_factory.mktemp("emulator"), storage_connection_string=azurite.connection_string)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def services(emulator: Emulator) -> dict[str, Any]:
    return emulator.services()


@pytest.fixture(scope="session")
def blob_service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def container(blob_service: BlobServiceClient) -> str:
    """A fresh container per test, so tests never see each other's blobs."""
    name = f"t{uuid.uuid4().hex[:12]}"
    blob_service.create_container(name)
    return name


@pytest.fixture
def clean_faults(emulator: Emulator) -> Iterator[None]:
    yield
    requests.delete(f"{emulator.http_base}/_emulator/faults", timeout=10).raise_for_status()
