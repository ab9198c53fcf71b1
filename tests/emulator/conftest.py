"""Fixtures for the Azure ML emulator's tests (the session's emulator and Azurite come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.services import Emulator

from .aml import Aml


@pytest.fixture(scope="session")
def aml(emulator: Emulator, services: dict[str, Any]) -> Aml:
    """The emulator's Azure ML workspace `retrain-ws`, reached as its service principal."""
    return Aml(services["azureMl"]["workspaces"][0], services["caFile"], emulator.http_base)


@pytest.fixture
def aml_clean(emulator: Emulator) -> Iterator[None]:
    """Clear faults and restore Azure ML settings after a test that changed them."""
    yield
    requests.delete(f"{emulator.http_base}/_emulator/faults", timeout=10).raise_for_status()
    requests.delete(f"{emulator.http_base}/_emulator/azure-ml/settings", timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def training_csv(aml: Aml, blob_service: Any) -> str:
    """The breast-cancer set as CSV in the workspace's default datastore; its azureml:// URI."""
    store = aml.ws["datastores"][0]
    container = blob_service.get_container_client(store["container"])
    if not container.exists():
        container.create_container()
    container.get_blob_client("data/train.csv").upload_blob(breast_cancer().to_csv(), overwrite=True)
    return f"azureml://datastores/{store['name']}/paths/data/train.csv"
