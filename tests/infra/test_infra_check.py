"""infra/ provides what the code reads, and the check bites.

The check runs on the real infra/ first. Then each test copies infra/ to a temporary directory, removes
or changes one thing (a setting, a role assignment, a container, a Key Vault reference, a filter...),
and requires the check to fail naming it. Others grow the code instead (a new app setting, a new
pipeline) and require the check to name what the infrastructure now lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retraining.definitions import parse_definitions
from retraining.settings import APP_ROOT, APP_SETTINGS, AppSetting

from .infra_check import INFRA, Check, Finding, Watch, check
from .mutations import edit, failures, remove_resource

CHECKS = (
    "settings",
    "secrets",
    "containers",
    "roles",
    "event_grid",
    "azure_ml",
    "no_keys",
    "durable_task_scheduler",
    "host",
    "key_vault",
    "aml_role",
    "bicep",
)


@pytest.fixture(scope="module")
def real() -> Check:
    return Check()


def test_infra_parses(real: Check) -> None:
    assert not real.infra.errors, "\n".join(map(str, real.infra.errors))
    assert {
        "main.bicep",
        "resources.bicep",
        "events.bicep",
        "aml-access.bicep",
        "aml-storage-access.bicep",
        "aml-storage-role.bicep",
        "aml-events.bicep",
    } <= set(real.infra.files)


@pytest.mark.parametrize("name", CHECKS)
def test_infra_matches_code(real: Check, name: str) -> None:
    findings: list[Finding] = getattr(real, f"check_{name}")()
    assert not findings, "\n".join(map(str, findings))


def test_what_the_code_reads_is_derived_from_the_code(real: Check) -> None:
    """Sanity of the derivation itself, on today's code (the check never lists these by hand)."""
    code = real.code
    assert {
        "TRAINING_ML_ENDPOINT",
        "AML_WORKSPACE_ID",
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "AML_TENANT",
        "AML_CLIENT_ID",
    } <= set(code.definition_settings)
    assert {"TRAINING_API_KEY", "SCORING_API_KEY", "ARM_SERVICE_PRINCIPAL_KEY", "AML_CLIENT_SECRET"} <= set(
        code.secret_settings
    )
    assert {"labeledexamples", "trainingoutput", "mldata", "runrecords"} <= set(code.containers)
    assert code.binding_settings.keys() >= {"TASK_HUB_NAME", "RETRAIN_SCHEDULE"}
    assert sorted(code.event_grid_functions) == ["aml_job_event", "training_data_arrived"]
    assert [(p.name, p.client_id_setting) for p in code.aml_pipelines] == [("aml-retrain", "AML_CLIENT_ID")]
    assert "ML_CA_BUNDLE" in code.forbidden and "ML_CA_BUNDLE" not in code.required()


# ---- Mutations: each must make the check fail, naming what is missing ------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "  RETRAIN_SAS_MINUTES_MARGIN: string(sasMinutesMargin)\n",
            "app setting RETRAIN_SAS_MINUTES_MARGIN is read by retraining/settings.py APP_SETTINGS",
        ),
        ("  TASK_HUB_NAME: taskHubName\n", "app setting TASK_HUB_NAME is read by"),
        (
            "  ARM_TENANT: armTenant\n",
            "app setting ARM_TENANT is read by pipelines.json pipelines[0].targets[1].tenant",
        ),
        ("  AZURE_AUTHORITY_HOST: azureAuthorityHost\n", "app setting AZURE_AUTHORITY_HOST is read by pipelines.json"),
    ],
)
def test_a_removed_setting_is_named(infra: Path, line: str, expected: str) -> None:
    edit(infra / "main.bicep", line, "")
    out = failures(infra)
    assert expected in out
    assert "var appSettings in infra/main.bicep" in out or "var pipelineSettings in infra/main.bicep" in out


def test_a_removed_identity_setting_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "  { name: 'TrainingStorage__clientId', value: appIdentity.properties.clientId }\n",
        "",
    )
    assert "app setting TrainingStorage__clientId is read by retraining/settings.py" in failures(infra)


def test_a_setting_nothing_reads_is_named(infra: Path) -> None:
    edit(
        infra / "main.bicep",
        "  RETRAIN_SCHEDULE: retrainSchedule\n",
        "  RETRAIN_SCHEDULE: retrainSchedule\n  RETRAIN_TYPO: 'x'\n",
    )
    assert "app setting RETRAIN_TYPO is set by var appSettings in infra/main.bicep but nothing reads it" in failures(
        infra
    )


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("ML_CA_BUNDLE", "local_only"),
        ("TrainingStorage", "a connection string carries an account key"),
    ],
)
def test_a_local_only_or_keyed_setting_is_refused(infra: Path, setting: str, reason: str) -> None:
    edit(
        infra / "main.bicep",
        "  RETRAIN_SCHEDULE: retrainSchedule\n",
        f"  RETRAIN_SCHEDULE: retrainSchedule\n  {setting}: 'x'\n",
    )
    out = failures(infra)
    assert f"app setting {setting} must not be set in Azure" in out and reason in out


def test_a_value_the_code_refuses_is_named(infra: Path) -> None:
    edit(
        infra / "main.bicep",
        "  RETRAIN_SAS_MINUTES_MARGIN: string(sasMinutesMargin)\n",
        "  RETRAIN_SAS_MINUTES_MARGIN: 'soon'\n",
    )
    assert (
        "Settings.from_env refuses the values the Bicep sets: app setting RETRAIN_SAS_MINUTES_MARGIN must be a number"
        in failures(infra)
    )


def test_a_client_id_of_another_identity_is_refused(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "{ name: 'AzureWebJobsStorage__clientId', value: appIdentity.properties.clientId }",
        "{ name: 'AzureWebJobsStorage__clientId', value: 'someone-else' }",
    )
    assert "AzureWebJobsStorage__clientId must be the app identity's client id" in failures(infra)


ROLE_RESOURCES = [
    ("resources.bicep", "hostBlobOwner", "Storage Blob Data Owner"),
    ("resources.bicep", "hostQueueContributor", "Storage Queue Data Contributor"),
    ("resources.bicep", "hostTableContributor", "Storage Table Data Contributor"),
    ("resources.bicep", "trainingBlobContributor", "Storage Blob Data Contributor"),
    ("resources.bicep", "keyVaultSecretsUser", "Key Vault Secrets User"),
    ("resources.bicep", "metricsPublisher", "Monitoring Metrics Publisher"),
    ("resources.bicep", "taskHubContributor", "Durable Task Data Contributor"),
    ("aml-access.bicep", "workspaceAppRole", "Azure ML app role (custom, or AzureML Data Scientist)"),
    ("aml-storage-role.bicep", "workspaceStorageReader", "Storage Blob Data Reader"),
]


@pytest.mark.parametrize(("file", "symbol", "role"), ROLE_RESOURCES)
def test_a_removed_role_assignment_is_named(infra: Path, file: str, symbol: str, role: str) -> None:
    remove_resource(infra / file, symbol)
    assert f"role {role} (" in failures(infra)


def test_a_role_at_the_wrong_scope_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "  scope: trainingStorage\n  properties: {\n    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)\n    principalId: appIdentity",
        "  scope: hostStorage\n  properties: {\n    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)\n    principalId: appIdentity",
    )
    assert (
        "role Storage Blob Data Contributor (ba92f5b4-2d11-453d-a403-e96b0029c9fe) on the training storage"
        in failures(infra)
    )


def test_a_role_given_to_someone_else_is_named(infra: Path) -> None:
    text = (infra / "resources.bicep").read_text(encoding="utf-8")
    block = text[text.index("resource keyVaultSecretsUser") :]
    block = block[: block.index("\n}\n") + 3]
    (infra / "resources.bicep").write_text(
        text.replace(block, block.replace("appIdentity.properties.principalId", "principalId")), encoding="utf-8"
    )
    assert "role Key Vault Secrets User (" in failures(infra)


def test_a_role_without_its_reason_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "// App Service resolving the @Microsoft.KeyVault(...) settings that Settings.secret() reads.\n",
        "",
    )
    assert "role assignment keyVaultSecretsUser in infra/resources.bicep has no comment" in failures(infra)


@pytest.mark.parametrize(
    ("line", "container", "why"),
    [
        (
            "  'trainingoutput' // weekly-retrain output.container\n",
            "trainingoutput",
            "pipelines.json pipelines[0].output.container",
        ),
        (
            "  'labeledexamples' // weekly-retrain data.container\n",
            "labeledexamples",
            "pipelines.json pipelines[0].data.container",
        ),
        (
            "  'mldata' // aml-retrain data.container (Azure ML jobs write to the workspace's datastore: no output container)\n",
            "mldata",
            "pipelines.json pipelines[1].data.container",
        ),
        ("  runRecordsContainer // RETRAIN_RUN_RECORDS_CONTAINER\n", "runrecords", "Settings.run_records_container"),
    ],
)
def test_a_removed_container_is_named(infra: Path, line: str, container: str, why: str) -> None:
    edit(infra / "main.bicep", line, "")
    out = failures(infra)
    assert f"container '{container}' ({why}" in out and "var trainingContainers in infra/main.bicep" in out


def test_the_run_records_container_follows_its_setting(infra: Path) -> None:
    """The Bicep's own value of RETRAIN_RUN_RECORDS_CONTAINER is the container that must exist."""
    edit(
        infra / "main.bicep",
        "param runRecordsContainer string = 'runrecords'",
        "param runRecordsContainer string = 'records'",
    )
    edit(infra / "main.bicep", "  runRecordsContainer // RETRAIN_RUN_RECORDS_CONTAINER\n", "  'runrecords'\n")
    assert "container 'records' (Settings.run_records_container" in failures(infra)


def test_a_removed_deployment_container_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "    resource deploymentContainer 'containers' = {\n      name: deploymentContainerName\n"
        "      properties: { publicAccess: 'None' }\n    }\n",
        "",
    )
    assert "the deployment container 'app-package' is not created" in failures(infra)


def test_a_secret_set_as_a_plain_value_is_refused(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "  value: '@Microsoft.KeyVault(VaultName=${keyVault.name};SecretName=${toLower(replace(secret.key, '_', '-'))})'",
        "  value: secret.value",
    )
    out = failures(infra)
    for name in ("TRAINING_API_KEY", "SCORING_API_KEY", "ARM_SERVICE_PRINCIPAL_KEY", "AML_CLIENT_SECRET"):
        assert f"app setting {name} (secret named by pipelines.json" in out and "must be a Key Vault reference" in out


def test_a_removed_secret_is_named(infra: Path) -> None:
    edit(infra / "main.bicep", "  SCORING_API_KEY: scoringApiKey\n", "")
    assert "secret SCORING_API_KEY is named by pipelines.json pipelines[0].targets[0].apiKeySetting" in failures(infra)


def test_a_secret_from_a_parameter_that_is_not_secure_is_refused(infra: Path) -> None:
    edit(
        infra / "main.bicep",
        "@secure()\n@description('pipelines.json training.apiKeySetting",
        "@description('pipelines.json training.apiKeySetting",
    )
    assert "secret TRAINING_API_KEY (var secrets in infra/main.bicep) must come from a @secure() param" in failures(
        infra
    )


def test_secrets_never_written_to_the_vault_are_named(infra: Path) -> None:
    remove_resource(infra / "resources.bicep", "secretValues")
    assert "has no Microsoft.KeyVault/vaults/secrets for-expression over secrets" in failures(infra)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "blobSuffix: '.arff' }",
            "blobSuffix: '.csv' }",
            "no BlobCreated subscription to training_data_arrived for pipeline weekly-retrain",
        ),
        (
            "container: 'labeledexamples'",
            "container: 'other'",
            "blobPrefix: '', blobSuffix: '.arff' } to var watches in infra/events.bicep",
        ),
        (
            "        { operatorType: 'NumberGreaterThan', key: 'data.contentLength', value: 0 }\n",
            "",
            "add the advanced filter NumberGreaterThan data.contentLength 0",
        ),
        (
            "includedEventTypes: ['Microsoft.Storage.BlobCreated']",
            "includedEventTypes: ['Microsoft.Storage.BlobDeleted']",
            "includedEventTypes must be ['Microsoft.Storage.BlobCreated']",
        ),
        (
            "/functions/training_data_arrived'",
            "/functions/something_else'",
            "no BlobCreated subscription to training_data_arrived",
        ),
    ],
)
def test_a_wrong_event_subscription_is_named(infra: Path, old: str, new: str, expected: str) -> None:
    edit(infra / "events.bicep", old, new)
    assert expected in failures(infra)


def test_a_system_topic_on_another_account_is_named(infra: Path) -> None:
    edit(infra / "resources.bicep", "    source: trainingStorage.id\n", "    source: hostStorage.id\n")
    assert (
        "no Event Grid system topic (topicType Microsoft.Storage.StorageAccounts) on the training storage account"
        in failures(infra)
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "resources.bicep",
            "    allowSharedKeyAccess: false\n",
            "    allowSharedKeyAccess: true\n",
            "must set allowSharedKeyAccess: false",
        ),
        (
            "resources.bicep",
            "    DisableLocalAuth: true\n",
            "    DisableLocalAuth: false\n",
            "must set DisableLocalAuth: true",
        ),
        (
            "resources.bicep",
            "    enableRbacAuthorization: true\n",
            "    enableRbacAuthorization: false\n",
            "must set enableRbacAuthorization: true",
        ),
        (
            "resources.bicep",
            "output functionAppName string = functionApp.name\n",
            "output functionAppName string = functionApp.name\noutput key string = hostStorage.listKeys().keys[0].value\n",
            "handles a key",
        ),
        (
            "main.bicep",
            "  RETRAIN_SCHEDULE: retrainSchedule\n",
            "  RETRAIN_SCHEDULE: 'AccountKey=abc'\n",
            "handles a key",
        ),
        (
            "resources.bicep",
            "{ name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }",
            "{ name: 'AzureWebJobsStorage__credential', value: 'none' }",
            "AzureWebJobsStorage__credential must be 'managedidentity'",
        ),
    ],
)
def test_keys_are_refused(infra: Path, file: str, old: str, new: str, expected: str) -> None:
    edit(infra / file, old, new)
    assert expected in failures(infra)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  { name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type', value: 'azureManaged' }\n",
            "",
            "storageProvider__type to 'azureManaged' only when the scheduler switch is on",
        ),
        (
            "appSettings: concat(hostSettings, useDurableTaskScheduler ? durableTaskSchedulerSettings : [], identitySettings",
            "appSettings: concat(hostSettings, durableTaskSchedulerSettings, identitySettings",
            "storageProvider__type to 'azureManaged' only when the scheduler switch is on",
        ),
        (";Authentication=ManagedIdentity;", ";Authentication=None;", "connectionStringName must name a setting"),
        (
            "  resource taskHub 'taskHubs' = {\n    name: taskHubName\n",
            "  resource taskHub 'taskHubs' = {\n    name: 'other'\n",
            "the scheduler's task hub must be named by the same value as TASK_HUB_NAME",
        ),
    ],
)
def test_the_durable_task_scheduler_switch_is_checked(infra: Path, old: str, new: str, expected: str) -> None:
    edit(infra / "resources.bicep", old, new)
    assert expected in failures(infra)


def test_bicep_that_does_not_parse_is_named(infra: Path) -> None:
    edit(infra / "events.bicep", "var watches = [", "var watches = [[")
    assert "infra/events.bicep does not parse with pycep" in failures(infra)


# ---- The code grows: the check names what the infrastructure now lacks ------------------------------------


def test_a_new_app_setting_in_the_code_is_named() -> None:
    grown = (*APP_SETTINGS, AppSetting("RETRAIN_LINEAGE_CONTAINER", "container for lineage records"))
    out = failures(INFRA, app_settings=grown)
    assert "app setting RETRAIN_LINEAGE_CONTAINER is read by retraining/settings.py APP_SETTINGS" in out
    assert "add `RETRAIN_LINEAGE_CONTAINER: retrainLineageContainer` to var appSettings in infra/main.bicep" in out


def test_a_new_local_only_setting_needs_nothing() -> None:
    grown = (*APP_SETTINGS, AppSetting("RETRAIN_EMULATOR_URL", "local emulator", local_only=True))
    assert check(INFRA, app_settings=grown) == []


def write_definitions(tmp_path: Path, change: Callable[[list[dict[str, Any]]], object]) -> Path:
    """pipelines.json with its list of pipelines changed, in a temporary directory."""
    definitions = json.loads((APP_ROOT / "pipelines.json").read_text(encoding="utf-8"))
    change(definitions["pipelines"])
    path = tmp_path / "pipelines.json"
    path.write_text(json.dumps(definitions), encoding="utf-8")
    return path


def test_a_new_pipeline_is_named(tmp_path: Path) -> None:
    """A pipeline on another service with new settings, a secret, new containers and a watch glob with a folder."""
    path = write_definitions(
        tmp_path,
        lambda pipelines: pipelines.append(
            {
                "name": "churn-retrain",
                "training": {
                    "kind": "other",
                    "workspace": "%CHURN_WORKSPACE_ID%",
                    "onlineEndpoint": "%CHURN_ONLINE_ENDPOINT%",
                    "credential": {"clientSecretSetting": "CHURN_CLIENT_SECRET"},
                },
                "data": {"container": "churndata", "blob": "incoming/train.parquet", "watch": "incoming/*.parquet"},
                "output": {"container": "churnoutput"},
            }
        ),
    )
    out = failures(INFRA, definitions_path=path)
    assert "app setting CHURN_WORKSPACE_ID is read by pipelines.json pipelines[2].training.workspace" in out
    assert "add `CHURN_ONLINE_ENDPOINT: churnOnlineEndpoint` to var pipelineSettings in infra/main.bicep" in out
    assert (
        "secret CHURN_CLIENT_SECRET is named by pipelines.json pipelines[2].training.credential.clientSecretSetting"
        in out
    )
    assert "container 'churndata' (pipelines.json pipelines[2].data.container)" in out
    assert "container 'churnoutput' (pipelines.json pipelines[2].output.container)" in out
    assert (
        "{ pipeline: 'churn-retrain', container: 'churndata', blobPrefix: 'incoming/', blobSuffix: '.parquet' }" in out
    )


def test_a_new_event_grid_function_must_be_subscribed() -> None:
    def bindings() -> list[tuple[str, dict[str, object]]]:
        return [("new_data", {"type": "eventGridTrigger", "name": "event"})]

    assert "no BlobCreated subscription to new_data for pipeline weekly-retrain" in failures(INFRA, bindings=bindings)


@pytest.mark.parametrize(
    ("glob", "prefix", "suffix"),
    [
        ("*.arff", "", ".arff"),
        ("incoming/*.arff", "incoming/", ".arff"),
        ("incoming/*", "incoming/", ""),
        ("labeledexamples.arff", "labeledexamples.arff", ""),
        ("2024/*/day-??.csv", "2024/", ".csv"),
        ("data/[ab]*.csv", "data/", ".csv"),
    ],
)
def test_watch_globs_become_subject_filters(glob: str, prefix: str, suffix: str) -> None:
    assert Watch("p", "c", glob, "here").filters() == (prefix, suffix)


# ---- Azure ML: with a pipeline whose training.kind is an Azure ML command job, its job events must reach the app ----


def test_a_missing_azure_ml_subscription_is_named(infra: Path) -> None:
    remove_resource(infra / "aml-events.bicep", "amlJobEvent")
    out = failures(infra)
    assert (
        "no Event Grid subscription delivering Microsoft.MachineLearningServices.RunStatusChanged and "
        "Microsoft.MachineLearningServices.RunCompleted from the workspace's system topic to an Event Grid function of the app"
    ) in out
    assert "for pipeline aml-retrain (pipelines.json pipelines[1].training.kind 'aml-command')" in out


def test_a_missing_azure_ml_system_topic_is_named(infra: Path) -> None:
    remove_resource(infra / "aml-events.bicep", "amlEvents")
    remove_resource(infra / "aml-events.bicep", "amlJobEvent")
    assert (
        "no Event Grid system topic (topicType Microsoft.MachineLearningServices.Workspaces)"
        " on the Azure ML workspace of pipeline aml-retrain" in failures(infra)
    )


def test_azure_ml_events_deployed_by_no_template_are_named(infra: Path) -> None:
    """aml-events.bicep on its own deploys nothing: events.bicep (the hook's template) must deploy it."""
    remove_resource(infra / "events.bicep", "amlJobEvents", kind="module")
    out = failures(infra)
    assert (
        "Azure ML subscription amlJobEvent in infra/aml-events.bicep: must be deployed by infra/events.bicep alone"
        in out
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        'Microsoft.MachineLearningServices.RunCompleted'\n",
            "",
            "includedEventTypes lacks Microsoft.MachineLearningServices.RunCompleted",
        ),
        (
            "resourceId: '${functionAppId}/functions/aml_job_event'",
            "resourceId: '${functionAppId}/functions/aml_job_events'",
            "must deliver to an Event Grid function of the app (training_data_arrived, aml_job_event)",
        ),
        (
            "resourceId: '${functionAppId}/functions/aml_job_event'",
            "resourceId: '${workspace.id}/functions/aml_job_event'",
            "must deliver to an Event Grid function of the app",
        ),
        (
            "    eventDeliverySchema: 'EventGridSchema'\n",
            "    eventDeliverySchema: 'CloudEventSchemaV1_0'\n",
            "eventDeliverySchema must be 'EventGridSchema'",
        ),
        (
            "    source: workspace.id\n",
            "    source: resourceGroup().id\n",
            "system topic amlEvents in infra/aml-events.bicep: source must be <workspace>.id",
        ),
        ("  location: location\n", "  location: 'westeurope'\n", "location must be the workspace's"),
        ("          key: 'data.runStatus'\n", "          key: 'data.runTags.stage'\n", "cannot evaluate its filter"),
        (
            "'NotResponding', 'Paused']",
            "'NotResponding', 'Paused', 'Failed']",
            'its filter drops Microsoft.MachineLearningServices.RunStatusChanged {"runStatus": "Failed"}',
        ),
    ],
)
def test_a_wrong_azure_ml_subscription_is_named(infra: Path, old: str, new: str, expected: str) -> None:
    edit(infra / "aml-events.bicep", old, new)
    assert expected in failures(infra)


def test_a_filter_that_drops_run_completed_is_named(infra: Path) -> None:
    """StringIn on the end states looks right, but RunCompleted has no runStatus, and a missing key fails StringIn."""
    text = (infra / "aml-events.bicep").read_text(encoding="utf-8")
    text, count = re.subn(
        r"operatorType: 'StringNotIn'(\s+key: 'data.runStatus'\s+)values: \[[^\]]*\]",
        r"operatorType: 'StringIn'\1values: ['Completed', 'Failed', 'Canceled']",
        text,
    )
    assert count == 1, "aml-events.bicep no longer filters with StringNotIn on data.runStatus: update this test"
    (infra / "aml-events.bicep").write_text(text, encoding="utf-8")
    out = failures(infra)
    assert "its filter drops Microsoft.MachineLearningServices.RunCompleted {}" in out
    assert "drops Microsoft.MachineLearningServices.RunStatusChanged" not in out


def test_blob_checks_leave_the_azure_ml_subscription_alone(real: Check) -> None:
    """The Azure ML subscription has no BlobCreated filter, and check_event_grid does not ask it for one."""
    assert not [f for f in real.check_event_grid() if "amlJobEvent" in f.message]
    names = {
        s.symbol: real._is_azure_ml(s)
        for s in real.infra.of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    }
    assert names == {"amlJobEvent": True, "trainingDataArrived": False}


def test_an_azure_ml_client_id_of_another_identity_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "{ name: 'AML_CLIENT_ID', value: empty(amlClientId) ? appIdentity.properties.clientId : amlClientId }",
        "{ name: 'AML_CLIENT_ID', value: amlClientId }",
    )
    assert (
        "app setting AML_CLIENT_ID (pipelines.json pipelines[1].workspace.credential.clientId) must default to the app identity's "
        "client id, appIdentity.properties.clientId"
    ) in failures(infra)


def test_a_workspace_storage_read_in_place_is_not_a_scope(infra: Path) -> None:
    """The workspace's storage account must come in as a module parameter (a role's scope is known at the start)."""
    edit(
        infra / "aml-access.bicep",
        "    storageAccountId: workspace.properties.storageAccount\n",
        "    storageAccountId: 'someaccount'\n",
    )
    assert "cannot find the azure ml workspace storage that Storage Blob Data Reader must be assigned on" in failures(
        infra
    )


def test_without_azure_ml_pipelines_no_azure_ml_events_are_required(infra: Path, tmp_path: Path) -> None:
    path = write_definitions(tmp_path, lambda pipelines: pipelines.pop())
    remove_resource(infra / "aml-events.bicep", "amlJobEvent")
    remove_resource(infra / "aml-events.bicep", "amlEvents")
    assert Check(infra, definitions_path=path).check_azure_ml() == []


def test_a_new_azure_ml_pipeline_must_sign_in_as_the_app(tmp_path: Path) -> None:
    """A second Azure ML pipeline whose credential takes its client id from a setting of its own."""

    def grow(pipelines: list[dict[str, Any]]) -> None:
        grown = json.loads(json.dumps(pipelines[1]))
        grown["name"] = "churn-retrain"
        grown["workspace"]["credential"]["clientId"] = "%CHURN_CLIENT_ID%"
        pipelines.append(grown)

    out = failures(INFRA, definitions_path=write_definitions(tmp_path, grow))
    assert "app setting CHURN_CLIENT_ID is read by pipelines.json pipelines[2].workspace.credential.clientId" in out
    assert "for pipeline aml-retrain" not in out  # the infrastructure for the first one is there


def test_without_a_workspace_the_azure_ml_pipeline_is_set_aside_and_the_others_run(real: Check) -> None:
    """AML_WORKSPACE_ID defaults to empty: deploying without Azure ML leaves that pipeline unavailable, naming the
    setting, and the definitions still load (values known only in Azure stand in as a placeholder URL)."""
    values = {s.name: real.infra.literal(s.file, s.value) for s in real.settings}
    assert values["AML_WORKSPACE_ID"] == ""
    settings = {
        name: "https://placeholder.invalid/" if values.get(name) is None else str(values[name])
        for name in real.code.definition_settings
    }
    definitions = parse_definitions(
        json.loads((APP_ROOT / "pipelines.json").read_text(encoding="utf-8")), settings, source="pipelines.json"
    )
    assert "weekly-retrain" in definitions.pipelines
    assert {p.name for p in real.code.aml_pipelines} <= set(definitions.unavailable)
    assert all("'AML_WORKSPACE_ID', which is not set" in why for why in definitions.unavailable.values())
