"""Importing Data Factory JSON: the seed's documents as they are, v2 shapes, and named errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from devhost.adf_import import import_adf
from devhost.cli import main
from retraining.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adf"
SEED_SECRETS = (
    "myKey",
    "sooooooooooh3WvG1hBfKS2BNNcfwSO7hhY6dY98noLfOdqQydYDIXyf2KoIaN3JpALu/AKtflHWMOCuicm/Q==",
    "zWa0000000000Tp6FjtZOspK/WMA2tQ08c8U+gZRBlw=",
    "endpoint2Key",
    "AccountKey=key",
)


@pytest.mark.parametrize("variant, kind", [("seed-classic", "classic"), ("seed-arm", "arm")])
def test_seed_documents_import_without_edits(variant: str, kind: str) -> None:
    result = import_adf([FIXTURES / variant])
    pipeline = result.definition["pipelines"][0]
    assert pipeline["data"] == {
        "container": "labeledexamples",
        "blob": "labeledexamples.arff",
        "externalData": {"retryInterval": "00:01:00", "retryTimeout": "00:10:00", "maximumRetry": 3},
    }
    assert pipeline["policy"] == {
        "timeout": "02:00:00",
        "retry": 1,
        "concurrency": 1,
        "executionPriorityOrder": "NewestFirst",
    }
    assert pipeline["output"] == {"container": "trainingoutput"}
    [target] = pipeline["targets"]
    assert target["kind"] == kind and target["trainedModelName"] == "Training Exp for ADF ML [trained model]"
    assert target["policy"] == {"timeout": "01:00:00", "retry": 3}
    assert pipeline["schedule"] == {"enabled": True, "start": "2016-02-13T00:00:00Z", "end": "2016-02-14T00:00:00Z"}
    assert result.settings["RETRAIN_SCHEDULE"] == "0 0 0 * * 6"  # weekly, on the start's weekday (a Saturday)
    text = json.dumps(result.definition)
    for secret in SEED_SECRETS:
        assert secret not in text
    assert result.settings["TRAINING_ENDPOINT_API_KEY"] == "myKey"
    assert any("placeholderBlob" in line and "scheduler" in line for line in result.report)
    assert not any(secret in line for line in result.report for secret in SEED_SECRETS)


def test_the_whole_seed_page_reports_its_duplicate_linked_service() -> None:
    """The page defines updatableScoringEndpoint2 twice (classic, then ARM): import one set at a time."""
    with pytest.raises(
        ConfigError,
        match=r"seed-page.md#block\d+: name: duplicate linkedService name 'updatableScoringEndpoint2' "
        r"\(also in seed-page.md#block1\)",
    ):
        import_adf([FIXTURES / "seed-page.md"])


def test_v2_shapes_import() -> None:
    result = import_adf([FIXTURES / "v2"])
    pipeline = result.definition["pipelines"][0]
    assert pipeline["name"] == "retrainv2"
    assert pipeline["data"] == {"container": "labeledexamples", "blob": "week.csv"}
    assert pipeline["training"]["evaluationOutput"] == "output2" and pipeline["training"]["globalParameters"] == {
        "Regularization": "0.5"
    }
    assert [(t["name"], t["kind"]) for t in pipeline["targets"]] == [
        ("ScoringClassic", "classic"),
        ("ScoringArm", "arm"),
    ]
    assert (
        result.settings["SCORING_CLASSIC_API_KEY"]
        == "@Microsoft.KeyVault(SecretUri=https://retrain-kv.vault.azure.net/secrets/scoring-key/)"
    )
    text = json.dumps(result.definition)
    for canary in ("v2AccountKeyCanary", "v2TrainingKeyCanary", "v2SpKeyCanary"):
        assert canary not in text
        assert canary in json.dumps(result.settings)


def edited(tmp_path: Path, variant: str, file: str, change: Any) -> Path:
    target = tmp_path / variant
    shutil.copytree(FIXTURES / variant, target)
    path = target / file
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return target


def _set(path: list[Any], value: Any) -> Any:
    def change(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return change


@pytest.mark.parametrize(
    "file, change, message",
    [
        (
            "pipeline.json",
            _set(["properties", "activities", 0, "typeProperties", "webServiceInput"], "noSuchDataset"),
            r"pipeline.json: properties.activities\[0\].typeProperties.webServiceInputs.input1: dataset 'noSuchDataset' not found",
        ),
        (
            "pipeline.json",
            _set(["properties", "activities", 1, "type"], "HDInsightHive"),
            r"pipeline.json: properties.activities\[1\].type: unknown activity type 'HDInsightHive'",
        ),
        (
            "pipeline.json",
            _set(["properties", "activities", 0, "policy", "timeout"], "25:00:00"),
            r"pipeline.json: properties.activities\[0\].policy.timeout: '25:00:00' is out of range",
        ),
        (
            "trainingData.json",
            _set(["properties", "policy", "externalData", "retryInterval"], "00:61:00"),
            r"trainingData.json: properties.policy.externalData.retryInterval: '00:61:00' is out of range",
        ),
        (
            "pipeline.json",
            _set(["properties", "activities", 1, "linkedServiceName"], "missingService"),
            r"pipeline.json: properties.activities\[1\].linkedServiceName: linked service 'missingService' not found",
        ),
        (
            "pipeline.json",
            _set(["properties", "activities", 0, "inputs"], [{"name": "placeholderBlob"}]),
            r"pipeline.json: properties.activities: dependency cycle",
        ),
    ],
)
def test_bad_definitions_name_file_and_path(tmp_path: Path, file: str, change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_adf([edited(tmp_path, "seed-classic", file, change)])


def test_v2_dependency_cycle_and_duplicate_names(tmp_path: Path) -> None:
    cyclic = edited(
        tmp_path,
        "v2",
        "pipeline.json",
        _set(
            ["properties", "activities", 0, "dependsOn"],
            [{"activity": "UpdateArm", "dependencyConditions": ["Succeeded"]}],
        ),
    )
    with pytest.raises(
        ConfigError, match=r"pipeline.json: properties.activities: dependency cycle: .*Retrain.*UpdateArm.*Retrain"
    ):
        import_adf([cyclic])
    duplicate = tmp_path / "dup"
    shutil.copytree(FIXTURES / "seed-classic", duplicate)
    shutil.copy(FIXTURES / "seed-classic" / "trainingData.json", duplicate / "trainingData-copy.json")
    with pytest.raises(ConfigError, match=r"trainingData.*\.json: name: duplicate dataset name 'trainingData'"):
        import_adf([duplicate])


def test_cli_writes_a_secret_free_definition_and_a_settings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "pipelines.json"
    assert main(["import-adf", str(FIXTURES / "seed-arm"), "-o", str(output)]) == 0
    definition, settings = output.read_text(), json.loads((tmp_path / "local.settings.json").read_text())["Values"]
    assert (
        settings["UPDATABLE_SCORING_ENDPOINT_2_SERVICE_PRINCIPAL_KEY"] == "zWa0000000000Tp6FjtZOspK/WMA2tQ08c8U+gZRBlw="
    )
    printed = capsys.readouterr().out
    for secret in SEED_SECRETS:
        assert secret not in definition and secret not in printed
    assert "wrote" in printed
    assert main(["import-adf", str(tmp_path / "missing"), "-o", str(output)]) == 2


def test_serve_refuses_to_run_another_checkouts_code(tmp_path: Path) -> None:
    """`retrain serve` from a scratch clone sharing this virtualenv would run this checkout's code."""
    from devhost.cli import CODE_ROOT, other_checkout

    assert other_checkout(CODE_ROOT, CODE_ROOT) is None
    assert other_checkout(CODE_ROOT, CODE_ROOT / "retraining") is None  # a subfolder of the same checkout
    assert other_checkout(CODE_ROOT, tmp_path) is None  # not a checkout at all
    clone = tmp_path / "clone"
    (clone / "sub").mkdir(parents=True)
    (clone / "function_app.py").write_text("")
    why = other_checkout(CODE_ROOT, clone / "sub")
    assert why is not None and str(clone) in why and "make setup" in why
    cwd = Path.cwd()
    try:
        os.chdir(clone)
        assert main(["serve"]) == 2  # refused before anything starts
    finally:
        os.chdir(cwd)
