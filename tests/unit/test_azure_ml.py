"""Azure ML (v2) pure logic: definitions, traffic splits, deployment names, job events, metrics, sample rows, credentials."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from retraining.datasets import DataError, sample_rows
from retraining.definitions import parse_definitions
from retraining.definitions.azure_ml import AmlCommandTraining, AmlOnlineTarget, Workspace
from retraining.errors import ConfigError, ResponseFormatError
from retraining.policy import plan_of
from retraining.services.azure_ml.endpoints import deployment_name
from retraining.services.azure_ml.events import RUN_COMPLETED, RUN_STATUS_CHANGED, job_ended
from retraining.services.azure_ml.online import endpoint_body, split
from retraining.services.azure_ml.training import parse_json_metrics
from retraining.services.azure_ml.workspace import WorkspaceClient, credential_of
from retraining.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WS_ID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/retrain-ws"
SETTINGS = {
    "TRAINING_ML_ENDPOINT": "https://ussouthcentral.services.azureml.net/workspaces/ws/services/svc/jobs",
    "SCORING_UPDATE_RESOURCE_ENDPOINT": "https://management.azureml.net/workspaces/ws/webservices/id/endpoints/endpoint2",
    "ARM_WEB_SERVICE_URL": "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/w",
    "ARM_TENANT": "mycompany.com",
    "ARM_SERVICE_PRINCIPAL_ID": "fe200044",
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com",
    "AML_WORKSPACE_ID": WS_ID,
    "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.azure.com/",
    "AML_TENANT": "t1",
    "AML_CLIENT_ID": "c1",
}


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "pipelines.json").read_text())
    return data


def aml_of(raw: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in raw["pipelines"] if p["name"] == "aml-retrain")
    return found


def test_the_shipped_azure_ml_pipeline_loads(raw: dict[str, Any]) -> None:
    pipeline = parse_definitions(raw, SETTINGS).get("aml-retrain")
    training = pipeline.training
    assert isinstance(training, AmlCommandTraining)
    assert (
        training.workspace.resource_id == WS_ID
        and training.workspace.management_endpoint == "https://management.azure.com"
    )
    assert (
        training.environment_id == f"{WS_ID}/environments/sklearn-env/versions/1"
        and training.compute_id == f"{WS_ID}/computes/cpu-cluster"
    )
    assert training.model_name == "breast-cancer" and training.parameters == {"regularization": "1.0"}
    online = pipeline.target("online")
    assert (
        isinstance(online, AmlOnlineTarget) and online.traffic_steps == (10, 50, 100) and online.keep_deployments == 1
    )
    assert pipeline.output_container is None


def test_completion_events_make_polls_a_fallback_only_where_the_pipeline_says_they_arrive(raw: dict[str, Any]) -> None:
    shipped = plan_of(parse_definitions(raw, SETTINGS).get("aml-retrain"), None)
    assert shipped.events and shipped.events_trusted  # infra subscribes the app to the workspace's job events
    del aml_of(raw)["polling"]["completionEvents"]
    unsure = plan_of(parse_definitions(raw, SETTINGS).get("aml-retrain"), None)
    assert unsure.events and not unsure.events_trusted  # an event still wakes the monitor; polling stays as it is
    studio = plan_of(parse_definitions(raw, SETTINGS).get("weekly-retrain"), None)
    assert not studio.events and not studio.events_trusted


def test_an_unset_workspace_setting_sets_only_that_pipeline_aside(raw: dict[str, Any]) -> None:
    settings = {k: v for k, v in SETTINGS.items() if k != "AML_WORKSPACE_ID"}
    definitions = parse_definitions(raw, settings, source="pipelines.json")
    assert "weekly-retrain" in definitions.pipelines and "aml-retrain" in definitions.unavailable
    with pytest.raises(
        ConfigError, match=r"pipelines\[1\].workspace.resourceId: refers to app setting 'AML_WORKSPACE_ID'"
    ):
        definitions.get("aml-retrain")


def edit(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(raw)
    node: Any = aml_of(copied)
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return copied


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            "workspace.resourceId",
            "/subscriptions/s/resourceGroups/rg/workspaces/w",
            "pipelines[1].workspace.resourceId: ",
        ),
        (
            "workspace.credential",
            {"clientId": "%AML_CLIENT_ID%"},
            None,
        ),  # a user-assigned managed identity: no tenant, no secret
        (
            "workspace.credential",
            {"clientSecretSetting": "AML_CLIENT_SECRET"},
            "pipelines[1].workspace.credential: a service principal",
        ),
        (
            "workspace.credential.clientSecretSetting",
            "0123456789abcdef~secret",
            "clientSecretSetting: expected the name of an app setting",
        ),
        (
            "training.command",
            "python train.py --model ${{outputs.model}}",
            "pipelines[1].training.command: must pass the training data",
        ),
        ("training.command", "python t.py ${{inputs.training_data}} ${{inputs.lr}}", "${{inputs.lr}} names no input"),
        (
            "training.environment",
            "sklearn-env",
            "pipelines[1].training.environment: 'sklearn-env' must be name:version",
        ),
        (
            "targets.0.rollout.trafficSteps",
            [10, 50],
            "pipelines[1].targets[0].rollout.trafficSteps: expected rising percentages",
        ),
        ("targets.0.rollout.trafficSteps", [50, 10, 100], "expected rising percentages ending at 100"),
        (
            "targets.0.rollout.mirror",
            {"percent": 60},
            "pipelines[1].targets[0].rollout.mirror.percent: expected an integer from 0 to 50",
        ),
        ("targets.0.rollout.bake", "00:30:00", "pipelines[1].targets[0].rollout: the bake times add up to 1:30:00"),
        (
            "targets.0.health.maxErrorRate",
            2,
            "pipelines[1].targets[0].health.maxErrorRate: expected a number from 0 to 1",
        ),
        ("targets.0.endpoint", "9-bad_name", "pipelines[1].targets[0].endpoint: '9-bad_name' must be 3-32 letters"),
        ("targets.1.deployment", {}, "pipelines[1].targets[1].deployment.compute: is required"),
        ("targets.0.deployment", {"code": "score:1"}, "code and scoringScript go together"),
    ],
)
def test_azure_ml_fields_are_checked_and_named(raw: dict[str, Any], path: str, value: Any, message: str | None) -> None:
    edited = edit(raw, path, value)
    if message is None:
        parse_definitions(edited, SETTINGS, source="pipelines.json").get("aml-retrain")
        return
    with pytest.raises(ConfigError) as caught:
        parse_definitions(edited, SETTINGS, source="pipelines.json")
    assert str(caught.value).startswith("pipelines.json: ") and message in str(caught.value)
    assert "0123456789abcdef~secret" not in str(caught.value)


def test_targets_must_serve_what_the_pipeline_trains(raw: dict[str, Any]) -> None:
    studio = raw["pipelines"][0]
    studio["targets"].append(copy.deepcopy(aml_of(raw)["targets"][0]))
    with pytest.raises(
        ConfigError,
        match=r"pipelines\[0\].targets\[2\].kind: a 'aml-online' target serves models trained by \['aml-command'\]",
    ):
        parse_definitions(raw, SETTINGS, source="pipelines.json")


@pytest.mark.parametrize(
    "before, new, percent, expected",
    [
        ({"blue": 100}, "green", 10, {"blue": 90, "green": 10}),
        ({"blue": 100}, "green", 100, {"green": 100}),
        ({"a": 50, "b": 50}, "c", 10, {"a": 45, "b": 45, "c": 10}),
        ({"a": 2, "b": 1}, "c", 99, {"a": 1, "c": 99}),
        ({"a": 70, "b": 30}, "c", 33, {"a": 47, "b": 20, "c": 33}),
        ({}, "green", 10, {"green": 100}),  # nothing serves yet: no canary to protect
        ({"green": 0, "blue": 100}, "green", 50, {"blue": 50, "green": 50}),
    ],
)
def test_traffic_splits_keep_the_others_proportions_and_sum_to_100(
    before: dict[str, int], new: str, percent: int, expected: dict[str, int]
) -> None:
    result = split(before, new, percent)
    assert result == expected and sum(result.values()) == 100


def test_an_endpoint_put_repeats_everything_but_traffic() -> None:
    got = {
        "name": "ep",
        "location": "eastus",
        "tags": {"team": "ml"},
        "identity": {
            "type": "UserAssigned",
            "principalId": "p",
            "userAssignedIdentities": {"/id/u": {"principalId": "x", "clientId": "y"}},
        },
        "properties": {
            "authMode": "Key",
            "description": "d",
            "traffic": {"blue": 100},
            "mirrorTraffic": {"blue": 0},
            "provisioningState": "Succeeded",
            "scoringUri": "https://x/score",
            "publicNetworkAccess": "Disabled",
        },
    }
    body = endpoint_body(got, {"blue": 90, "green": 10}, {})
    assert body == {
        "location": "eastus",
        "tags": {"team": "ml"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/id/u": {}}},
        "properties": {
            "authMode": "Key",
            "description": "d",
            "publicNetworkAccess": "Disabled",
            "traffic": {"blue": 90, "green": 10},
            "mirrorTraffic": {},
        },
    }


@pytest.mark.parametrize(
    "model, version, expected",
    [
        ("breast-cancer", "12", "breast-cancer-v12"),
        ("Churn_Model.v2", "3", "churn-model-v2-v3"),
        ("7days", "1", "m7days-v1"),
        ("a" * 40, "1234", "a" * 26 + "-v1234"),
    ],
)
def test_deployment_names_are_valid_and_name_the_version(model: str, version: str, expected: str) -> None:
    name = deployment_name(model, version)
    assert name == expected and len(name) <= 32 and name[0].isalpha()


def pipelines(raw: dict[str, Any]) -> Any:
    return parse_definitions(raw, SETTINGS).pipelines.values()


@pytest.mark.parametrize(
    "event_type, topic, data, expected",
    [
        (
            RUN_STATUS_CHANGED,
            WS_ID,
            {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d", "runStatus": "completed"},
            "completed",
        ),
        (
            RUN_STATUS_CHANGED,
            WS_ID.upper(),
            {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d", "runStatus": "Failed"},
            "failed",
        ),
        (RUN_COMPLETED, WS_ID, {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d"}, "completed"),
        (RUN_STATUS_CHANGED, WS_ID, {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d", "runStatus": "running"}, None),
        (
            RUN_STATUS_CHANGED,
            WS_ID + "x",
            {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d", "runStatus": "completed"},
            None,
        ),
        (
            RUN_STATUS_CHANGED,
            WS_ID,
            {"runId": "weekly-retrain-20261122T030000Z-0a1b2c3d", "runStatus": "completed"},
            None,
        ),  # not Azure ML
        (RUN_STATUS_CHANGED, WS_ID, {"runId": "someone-elses-job", "runStatus": "completed"}, None),
        (RUN_STATUS_CHANGED, WS_ID, {"runId": ["x"], "runStatus": "completed"}, None),
        (RUN_STATUS_CHANGED, WS_ID, "not an object", None),
        (
            "Microsoft.Storage.BlobCreated",
            WS_ID,
            {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d", "runStatus": "completed"},
            None,
        ),
    ],
)
def test_job_events_are_matched_to_runs_only_when_they_are_ours(
    raw: dict[str, Any], event_type: str, topic: str, data: Any, expected: str | None
) -> None:
    found = job_ended(event_type, topic, data, pipelines(raw))
    assert (found.status if found else None) == expected
    if found:
        assert (found.pipeline, found.run_id) == ("aml-retrain", "20261122T030000Z-0a1b2c3d")


def test_metrics_json_keeps_numbers_and_refuses_a_non_finite_one_by_name() -> None:
    metrics = parse_json_metrics(b'{"AUC": 0.97, "Accuracy": 1, "note": "x", "flag": true, "nested": {"a": 1}}')
    assert metrics == {"AUC": 0.97, "Accuracy": 1.0}
    with pytest.raises(ResponseFormatError, match="metric 'loss' is NaN"):
        parse_json_metrics(b'{"AUC": 0.97, "loss": NaN}')
    with pytest.raises(ResponseFormatError, match="metric 'loss' is infinite"):
        parse_json_metrics(b'{"loss": Infinity}')
    for bad in (b"[1, 2]", b"{not json", b"[" * 100_000):
        with pytest.raises(ResponseFormatError):
            parse_json_metrics(bad)


def test_sample_rows_come_in_the_models_feature_order() -> None:
    csv = b"b,a,class\n1,2,x\n3,?,y\n5,6,z\n7,8"
    assert sample_rows(csv, "d.csv", ("a", "b"), 5) == [[2.0, 1.0], [6.0, 5.0]]  # incomplete and cut rows skipped
    arff = b"@relation r\n@attribute 'a' numeric\n@attribute b {u,v}\n@attribute class {x,y}\n@data\n1,u,x\n2,v,y\n"
    assert sample_rows(arff, "d.arff", ("a", "b"), 1) == [[1.0, "u"]]
    with pytest.raises(DataError, match="lacks feature columns"):
        sample_rows(csv, "d.csv", ("a", "zz"), 5)


def test_a_service_principal_only_when_its_secret_is_there() -> None:
    from azure.identity import ClientSecretCredential

    ws = parse_definitions(json.loads((ROOT / "pipelines.json").read_text()), SETTINGS).get("aml-retrain").training
    assert isinstance(ws, AmlCommandTraining)
    storage = {"TrainingStorage__blobServiceUri": "https://acct.blob.core.windows.net"}
    with_secret = Settings.from_env(storage | {"AML_CLIENT_SECRET": "s3cret"})
    assert isinstance(credential_of(ws.workspace, with_secret), ClientSecretCredential)
    for unset in (
        {},
        {"AML_CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/aml-client-secret)"},
    ):
        assert not isinstance(credential_of(ws.workspace, Settings.from_env(storage | unset)), ClientSecretCredential)


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = requests.structures.CaseInsensitiveDict(headers)


def test_operation_urls_off_the_management_host_are_not_followed() -> None:
    client = WorkspaceClient(Workspace(WS_ID), credential=None, http=None)  # type: ignore[arg-type]
    ours = client._operation(
        _Response({"Azure-AsyncOperation": "https://management.azure.com/op/1", "Retry-After": "15"})
    )  # type: ignore[arg-type]
    assert ours.url == "https://management.azure.com/op/1" and ours.retry_after_s == 15
    foreign = client._operation(_Response({"Azure-AsyncOperation": "https://evil.example/op/1"}))  # type: ignore[arg-type]
    assert foreign.url is None and foreign.retry_after_s is None
