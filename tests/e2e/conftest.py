"""One local stack per session: Azurite, the emulator and devhost running function_app.py.

The pipelines are the shipped `pipelines.json` with test-speed policies, plus variants: one whose
gate no model can pass, one whose job timeout is a few seconds, one for trigger storms, two that
wait for approval (two minutes, two seconds) and notify a webhook receiver the session starts.

devhost runs with its cross-check on: every orchestration episode durabletask decides is decided
again by the Python SDK the Functions host runs (`devhost.crosscheck`), and each test fails if the
two engines disagreed on anything while it ran.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
import requests

from devhost.stack import LocalStack
from tests.emulator.aml import Aml

from .helpers import DATA_CONTAINER, WEBHOOK_SECRET, e2e_definitions, serving_mismatches
from .receiver import Receiver


@pytest.fixture(scope="session")
def webhook() -> Iterator[Receiver]:
    """Where the `approval`, `approval-expiring` and `notified` pipelines send notifications; each fails once at first."""
    receiver = Receiver(fail_first=1).start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def slow_webhook() -> Iterator[Receiver]:
    """Where `notified-slow` sends: 40 s an answer, credentials and a token in its URL."""
    receiver = Receiver(delay_s=40, credentials=f"retrain:{secrets.token_urlsafe(12)}").start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: Receiver, slow_webhook: Receiver) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("stack")
    definitions = workdir / "pipelines.json"
    definitions.write_text(json.dumps(e2e_definitions(), indent=2))
    settings = {
        "DEVHOST_CROSSCHECK": "1",
        "TEST_WEBHOOK_URL": webhook.url,
        "TEST_SLOW_WEBHOOK_URL": slow_webhook.url,
        "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    # Fresh keys: the secrets canary looks for values no source file holds (see emulator.config.with_fresh_secrets).
    local = LocalStack(
        workdir, pipelines_file=definitions, blob_poll_s=0.3, extra_settings=settings, fresh_secrets=True
    ).start()
    local.load_sample_data(DATA_CONTAINER)
    yield local
    local.stop()


@pytest.fixture(autouse=True)
def engines_agree(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each e2e test: the SDK's replay decided every episode exactly as durabletask did."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: LocalStack = request.getfixturevalue("stack")
    assert stack.host is not None and stack.host.engine.crosscheck is not None
    check = stack.host.engine.crosscheck
    before = len(check.mismatches)
    yield
    assert check.mismatches[before:] == [], "\n".join(str(m) for m in check.mismatches[before:])


@pytest.fixture(autouse=True)
def what_the_app_says_serves_is_what_serves(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each e2e test ends with every idle pipeline's serving record matching what its targets serve."""
    yield
    if "stack" in request.fixturenames:
        assert serving_mismatches(request.getfixturevalue("stack")) == []


@pytest.fixture
def aml(stack: LocalStack) -> Iterator[Aml]:
    assert stack.emulator is not None
    yield Aml(stack.services["azureMl"]["workspaces"][0], stack.services["caFile"], stack.emulator.http_base)
    requests.delete(f"{stack.emulator.http_base}/_emulator/azure-ml/settings", timeout=10).raise_for_status()


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
