"""The seed's Data Factory documents, imported as they are, run end to end through devhost.

Only app settings change to point them at the emulator and Azurite; the definition is not edited.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.adf_import import import_adf
from devhost.stack import LocalStack

from .helpers import record_of, served_versions, start_run, wait_for_request

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adf"


@pytest.mark.parametrize("variant, target", [("seed-classic", "endpoint2"), ("seed-arm", "myWebService")])
def test_imported_seed_pipeline_replaces_the_model(
    stack: LocalStack,
    seeded: str,
    emulator_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variant: str,
    target: str,
) -> None:
    imported = import_adf([FIXTURES / variant])
    definition = tmp_path / "pipelines.json"
    definition.write_text(json.dumps(imported.definition))
    services, local = stack.services, stack.settings
    training = services["webServices"][0]
    endpoint2 = services["webServices"][1]["endpoints"][1]
    prefix = "UPDATABLE_SCORING_ENDPOINT_2"
    pointed = {
        "RETRAIN_PIPELINES_FILE": str(definition),
        "TrainingStorage": local["TrainingStorage"],
        "TRAINING_ENDPOINT_ML_ENDPOINT": training["mlEndpoint"],
        "TRAINING_ENDPOINT_API_KEY": training["apiKey"],
        f"{prefix}_UPDATE_RESOURCE_ENDPOINT": endpoint2["updateResourceEndpoint"],
        f"{prefix}_API_KEY": endpoint2["apiKey"],
    }
    if variant == "seed-arm":
        pointed |= {
            f"{prefix}_UPDATE_RESOURCE_ENDPOINT": local["ARM_WEB_SERVICE_URL"],
            f"{prefix}_TENANT": local["ARM_TENANT"],
            f"{prefix}_SERVICE_PRINCIPAL_ID": local["ARM_SERVICE_PRINCIPAL_ID"],
            f"{prefix}_SERVICE_PRINCIPAL_KEY": local["ARM_SERVICE_PRINCIPAL_KEY"],
            "AZURE_AUTHORITY_HOST": local["AZURE_AUTHORITY_HOST"],
        }
    for name, value in (imported.settings | pointed).items():
        monkeypatch.setenv(name, value)

    response = start_run(stack, "pipeline")
    assert response.status_code == 202, response.text
    result = record_of(stack, wait_for_request(stack, response.json()["statusUri"], timeout_s=120))
    assert result["status"] == "Succeeded", result
    assert [t["target"] for t in result["targets"]] == ["updatableScoringEndpoint2"]
    assert served_versions(emulator_url)[target] == result["model"]["sha256"][:12] != seeded
    assert "myKey" not in definition.read_text()
