"""One local stack per session: Azurite, the emulator and devhost running function_app.py.

The pipelines are the shipped `pipelines.json` with test-speed policies, plus two variants: one
whose gate no model can pass, and one whose job timeout is a few seconds.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devhost.stack import LocalStack, local_definitions

DATA_CONTAINER = "labeledexamples"
TERMINAL = {"Completed", "Failed", "Terminated"}


def e2e_definitions() -> dict[str, Any]:
    """The local-speed pipeline, plus one whose gate no model passes and one with a 3 s job timeout."""
    definitions = local_definitions()
    base = definitions["pipelines"][0]
    strict = copy.deepcopy(base) | {"name": "strict-gate", "gate": {"minimums": {"AUC": 1.01}}}
    strict["data"]["watch"] = "never/*"
    short = copy.deepcopy(base) | {"name": "short-timeout"}
    short["policy"] = short["policy"] | {"timeout": "00:00:03"}
    short["data"]["watch"] = "never/*"
    short["schedule"] = {"enabled": False}  # shares targets with weekly-retrain: never run both from the timer
    definitions["pipelines"] = [base, strict, short]
    return definitions


class LogLines(logging.Handler):
    """Keeps every formatted log line, for scanning."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("stack")
    definitions = workdir / "pipelines.json"
    definitions.write_text(json.dumps(e2e_definitions(), indent=2))
    local = LocalStack(workdir, pipelines_file=definitions, blob_poll_s=0.3).start()
    local.load_sample_data(DATA_CONTAINER)
    yield local
    local.stop()


@pytest.fixture
def emulator_url(stack: LocalStack) -> str:
    assert stack.emulator is not None
    return stack.emulator.http_base


@pytest.fixture(autouse=True)
def clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        stack: LocalStack = request.getfixturevalue("stack")
        assert stack.emulator is not None
        requests.delete(f"{stack.emulator.http_base}/_emulator/faults", timeout=10)


@pytest.fixture
def seeded(stack: LocalStack) -> str:
    """Publish an initial model (trained on 40 rows) to every scoring endpoint."""
    return stack.load_sample_data(DATA_CONTAINER)


def start_run(stack: LocalStack, pipeline: str, body: dict[str, Any] | None = None) -> requests.Response:
    assert stack.host is not None
    return requests.post(f"{stack.host.base_url}/api/pipelines/{pipeline}/runs", json=body or {},
                         headers={"x-functions-key": stack.host.function_key}, timeout=30)


def wait_for_instance(status_url: str, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = requests.get(status_url, timeout=10).json()
        if body["runtimeStatus"] in TERMINAL:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{status_url} did not finish within {timeout_s}s")


def status_url(stack: LocalStack, instance_id: str) -> str:
    assert stack.host is not None
    return stack.host.management.management_urls(instance_id)["statusQueryGetUri"] + "&showInput=true"


def emulator_state(emulator_url: str) -> dict[str, Any]:
    state: dict[str, Any] = requests.get(f"{emulator_url}/_emulator/state", timeout=10).json()
    return state


def served_versions(emulator_url: str) -> dict[str, str | None]:
    state = emulator_state(emulator_url)
    versions = {e["endpoint"]: e["model_version"] for e in state["endpoints"]}
    versions.update({a["name"]: a["model_version"] for a in state["arm_web_services"]})
    return versions


def run_records(stack: LocalStack, pipeline: str) -> list[dict[str, Any]]:
    container = stack.blob_service.get_container_client("runrecords")
    if not container.exists():
        return []
    return [json.loads(container.download_blob(b.name).readall()) for b in container.list_blobs(name_starts_with=f"{pipeline}/")]
