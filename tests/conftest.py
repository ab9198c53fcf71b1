"""Session fixtures: a real Azurite and a real emulator process, started once, failing loudly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite, Emulator, start_azurite, start_emulator


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` runs two workers (`pytest -n 2`): each module's tests stay on one worker, in order
    (some build on the state earlier ones left), and the reliability suite is one unit (its last
    module checks invariants over the whole suite)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "tests/e2e/reliability" if nodeid.startswith("tests/e2e/reliability/") else nodeid.split("::", 1)[0]

    return ByModule(config, log)


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
