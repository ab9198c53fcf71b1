"""Studio (classic) targets roll back against the emulator: an update that landed is pointed back at the model the
target served before it; one that did not land is left alone."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite, Emulator
from devhost.stack import emulator_settings, local_definitions
from retraining import operations
from retraining.models import BlobPath, ModelArtifact
from retraining.services import scoring_target
from retraining.services.base import RolloutStep, ScoringTarget, StepResult, StepStatus
from retraining.settings import Settings
from retraining.storage import TrainingStorage

pytestmark = pytest.mark.integration

TARGETS = ["endpoint2", "myWebService"]  # the classic endpoint and the ARM web service of the seed pipeline


@pytest.fixture
def target_of(
    services: dict[str, Any], azurite: Azurite, tmp_path: Path
) -> Callable[[str], tuple[ScoringTarget, TrainingStorage]]:
    definitions = tmp_path / "pipelines.json"
    definitions.write_text(json.dumps(local_definitions()))
    settings = Settings.from_env(emulator_settings(services, azurite) | {"RETRAIN_PIPELINES_FILE": str(definitions)})
    storage = TrainingStorage.from_settings(settings)

    def build(name: str) -> tuple[ScoringTarget, TrainingStorage]:
        return scoring_target(operations.context(settings, storage, "weekly-retrain"), name), storage

    return build


def model(
    blob_service: BlobServiceClient, storage: TrainingStorage, container: str, name: str, rows: int
) -> ModelArtifact:
    from emulator import ilearner

    trained, _ = ilearner.train(ilearner.parse_dataset(breast_cancer().head(rows).to_csv(), ".csv", None), name, {})
    data = ilearner.dumps(trained)
    blob_service.get_blob_client(container, name).upload_blob(data)
    size, sha256 = storage.digest(BlobPath(container, name))
    return ModelArtifact(f"{container}/{name}", size, sha256)


def updates(emulator: Emulator) -> dict[str, int]:
    counters = requests.get(f"{emulator.http_base}/_emulator/state", timeout=10).json()["counters"]
    return {k: v for k, v in counters.items() if "update" in k}


def until_done(
    call: Callable[[dict[str, Any]], StepResult], state: dict[str, Any], timeout_s: float = 20
) -> StepResult:
    deadline = time.monotonic() + timeout_s
    while True:
        result = call(state)
        if result.status is not StepStatus.WAIT:
            return result
        assert time.monotonic() < deadline, result
        state = dict(result.state)
        time.sleep(min(result.wait_s or 0.1, 0.5))


def roll_out(target: ScoringTarget, artifact: ModelArtifact) -> dict[str, Any]:
    applied = target.run_step(RolloutStep("apply"), artifact, {})
    assert applied.status is StepStatus.DONE, applied
    confirmed = until_done(lambda s: target.run_step(RolloutStep("confirm", mutates=False), artifact, s), applied.state)
    assert confirmed.status is StepStatus.DONE, confirmed
    return dict(confirmed.state)


@dataclass
class Serving:
    """A target of the seed pipeline serving `old`, and `new` uploaded beside it."""

    name: str
    target: ScoringTarget
    old: ModelArtifact
    new: ModelArtifact


@pytest.fixture(params=TARGETS)
def serving(
    request: pytest.FixtureRequest,
    target_of: Callable[[str], tuple[ScoringTarget, TrainingStorage]],
    blob_service: BlobServiceClient,
    container: str,
) -> Serving:
    target, storage = target_of(request.param)
    old = model(blob_service, storage, container, "old.ilearner", 300)
    new = model(blob_service, storage, container, "new.ilearner", 400)
    roll_out(target, old)
    return Serving(request.param, target, old, new)


def test_an_update_that_landed_is_pointed_back_at_the_model_served_before(serving: Serving) -> None:
    target, old, new = serving.target, serving.old, serving.new
    state = roll_out(target, new)
    assert state["before"] == old.location and state["sent"] is True  # recorded before the update was sent
    assert target.serves(new.blob)  # type: ignore[attr-defined]

    result = until_done(lambda s: target.roll_back(new, s), state)
    assert result.status is StepStatus.DONE and result.state.get("rolled_back") is True, result
    assert result.progress["restored"] == old.location
    assert target.serves(old.blob) and not target.serves(new.blob)  # type: ignore[attr-defined]


def test_an_update_that_did_not_land_is_left_alone(
    serving: Serving, emulator: Emulator, services: dict[str, Any]
) -> None:
    target, new = serving.target, serving.new
    service_id = (
        services["webServices"][1]["endpoints"][1]["service_id"]
        if serving.name == "endpoint2"
        else services["armWebServices"][0]["name"]
    )
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "update", "target": service_id, "never_succeed": True, "remaining": None},
        timeout=10,
    ).raise_for_status()
    try:
        applied = target.run_step(RolloutStep("apply"), new, {})
        assert applied.status is StepStatus.DONE
        sent = updates(emulator)
        result = target.roll_back(new, applied.state)
        assert result.status is StepStatus.DONE and not result.state.get("rolled_back"), result
        assert "nothing to undo" in str(result.progress.get("note"))
        assert updates(emulator) == sent  # no update was sent to undo one that never landed
    finally:
        requests.delete(f"{emulator.http_base}/_emulator/faults", timeout=10)
