"""The deployment defects a review found stay fixed, and the host settings the Bicep turns on are required.

Each test copies infra/ (the `infra` fixture of test_infra_check), plants one defect and requires the offline
check to name it; the first tests check the real files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from retraining.settings import APP_ROOT, APP_SETTINGS

from .infra_check import AML_ACTIONS, INFRA, TASK_HUB_NAME, Check
from .mutations import edit, failures, remove_resource


@pytest.fixture(scope="module")
def real() -> Check:
    return Check()


def block(path: Path, start: str) -> str:
    text = path.read_text(encoding="utf-8")
    begin = text.index(start)
    return text[begin : text.index("\n}\n", begin) + 3]


# ---- 3. RETRAIN_PAGE_URL from the site's defaultHostName -----------------------------------------------


def test_the_page_url_is_the_sites_default_host_name(real: Check) -> None:
    (setting,) = real.by_name["RETRAIN_PAGE_URL"]
    assert setting.value == "https://${functionApp.properties.defaultHostName}/api/status"
    assert not [f for f in real.check_host() if "azurewebsites.net" in f.message]


def test_a_hand_made_page_url_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "RETRAIN_PAGE_URL: 'https://${functionApp.properties.defaultHostName}/api/status'",
        "RETRAIN_PAGE_URL: 'https://func-${resourceToken}.azurewebsites.net/api/status'",
    )
    out = failures(infra)
    assert "RETRAIN_PAGE_URL must be 'https://${functionApp.properties.defaultHostName}/api/status'" in out
    assert "names azurewebsites.net" in out


def test_a_config_that_replaces_the_settings_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "properties: union(list('${functionApp.id}/config/appsettings', '2024-04-01').properties, {",
        "properties: union({}, {",
    )
    assert "a config/appsettings PUT replaces every app setting" in failures(infra)


# ---- 4. Event Grid dead-lettering -------------------------------------------------------------------------


def test_a_subscription_without_dead_letter_is_named(infra: Path) -> None:
    text = (infra / "events.bicep").read_text(encoding="utf-8")
    start = text.index("    deadLetterWithResourceIdentity: {")
    end = text.index("\n    }\n", start) + 7
    (infra / "events.bicep").write_text(text[:start] + text[end:], encoding="utf-8")
    assert "subscription trainingDataArrived in infra/events.bicep has no dead-letter destination" in failures(infra)


def test_a_topic_that_cannot_write_dead_letters_is_named(infra: Path) -> None:
    edit(
        infra / "resources.bicep",
        "  identity: { type: 'SystemAssigned' } // writes dead-lettered events (shared keys are off)\n",
        "",
    )
    remove_resource(infra / "resources.bicep", "deadLetterWriter")
    out = failures(infra)
    assert "system topic trainingEvents in infra/resources.bicep needs identity SystemAssigned" in out
    assert "system topic trainingEvents's identity has no Storage Blob Data Contributor" in out


def test_the_hook_retries_waits_and_removes_stale_subscriptions() -> None:
    for script in ("postdeploy.sh", "postdeploy.ps1"):
        text = (INFRA / "hooks" / script).read_text(encoding="utf-8")
        assert "az functionapp function show" in text, f"{script} does not wait for the functions"
        assert re.search(r"attempt.*-ge 5", text), f"{script} does not retry the subscription deployment"
        assert "properties.outputs.trainingDataSubscriptions.value" in text
        assert "event-subscription delete" in text, f"{script} leaves a removed pipeline's subscription behind"
    outputs = Check().infra.files["events.bicep"].section("outputs")
    assert "trainingDataSubscriptions" in outputs


# ---- 5. least-privilege Azure ML role -----------------------------------------------------------------------


def test_the_app_role_on_the_workspace_is_least_privilege(real: Check) -> None:
    text = real.infra.files["aml-access.bicep"].text
    assert not [line for line in text.splitlines() if line.strip().startswith("'") and "listsecrets" in line]
    assert real.check_aml_role() == []
    for action in AML_ACTIONS:
        assert f"'{action}'" in text


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "          'Microsoft.MachineLearningServices/workspaces/datastores/read'\n",
            "          'Microsoft.MachineLearningServices/workspaces/datastores/read'\n"
            "          'Microsoft.MachineLearningServices/workspaces/datastores/listsecrets/action'\n",
            "datastores/listsecrets/action is not needed by any call the app makes and hands out more",
        ),
        (
            "          'Microsoft.MachineLearningServices/workspaces/jobs/cancel/action'\n",
            "",
            "lacks Microsoft.MachineLearningServices/workspaces/jobs/cancel/action, needed by training.py cancel",
        ),
        (
            "          // workspace.py WorkspaceClient.tracking_host: GET the workspace (its mlFlowTrackingUri)\n",
            "",
            "Microsoft.MachineLearningServices/workspaces/read has no comment naming the call that needs it",
        ),
        (
            "          'Microsoft.MachineLearningServices/workspaces/read'\n",
            "          'Microsoft.MachineLearningServices/workspaces/*/read'\n",
            "workspaces/*/read is not needed",
        ),
        (
            ": amlAppRole.id\n",
            ": subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMLDataScientist)\n",
            "no role assignment in infra/aml-access.bicep assigns the custom role amlAppRole",
        ),
    ],
)
def test_a_broader_or_narrower_aml_role_is_named(infra: Path, old: str, new: str, expected: str) -> None:
    edit(infra / "aml-access.bicep", old, new)
    assert expected in failures(infra)


def test_the_built_in_role_is_an_opt_in() -> None:
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert "param amlUseBuiltInRole bool = false" in main
    assert "useBuiltInRole: amlUseBuiltInRole" in main


# ---- 6. the workspace's storage account from the workspace's properties --------------------------------


def test_the_workspace_storage_role_is_deployed_where_the_account_is(infra: Path) -> None:
    edit(infra / "aml-storage-access.bicep", "  scope: resourceGroup(storageAccount[2], storageAccount[4])\n", "")
    assert "cannot find the azure ml workspace storage that Storage Blob Data Reader must be assigned on" in failures(
        infra
    )


# ---- 7. Key Vault soft delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("resources.bicep", "    createMode: keyVaultCreateMode\n", ""),
        ("main.bicep", "@allowed(['default', 'recover'])\n", ""),
        ("main.parameters.json", ',\n    "keyVaultCreateMode": { "value": "${KEY_VAULT_CREATE_MODE=default}" }', ""),
    ],
)
def test_a_vault_that_cannot_come_back_is_named(infra: Path, file: str, old: str, new: str) -> None:
    edit(infra / file, old, new)
    assert "properties.createMode must come from a parameter allowing 'default' and 'recover'" in failures(infra)


# ---- 8. smaller points ------------------------------------------------------------------------------------------


def test_task_hub_names_follow_the_pattern(real: Check) -> None:
    assert TASK_HUB_NAME.fullmatch("retrain") and not TASK_HUB_NAME.fullmatch("retrain-hub")
    assert not TASK_HUB_NAME.fullmatch("1retrain") and not TASK_HUB_NAME.fullmatch("ab")
    assert real._task_hub_names() == []


def test_a_task_hub_name_with_a_dash_is_named(infra: Path) -> None:
    edit(infra / "main.bicep", "param taskHubName string = 'retrain'", "param taskHubName string = 'retrain-hub'")
    assert "TASK_HUB_NAME 'retrain-hub' (the default of taskHubName) must be a letter" in failures(infra)


def test_scale_and_scheduler_sku_are_settable_from_the_parameters_file() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    main = Check().infra.files["main.bicep"].section("parameters")
    for name in ("durableTaskSchedulerSku", "maximumInstanceCount", "instanceMemoryMB", "keyVaultCreateMode"):
        match = re.fullmatch(r"\$\{[A-Z_]+=([^}]*)\}", parameters[name]["value"])
        assert match, f"main.parameters.json {name} needs a ${{ENV=default}} value"
        default = main[name]["default"]
        assert match.group(1) == str(default), f"{name}: main.parameters.json's default differs from main.bicep's"


def test_the_extension_bundle_starts_at_the_schedulers_minimum(infra: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["extensionBundle"]["version"] == "[4.32.0, 5.0.0)"
    copy = infra.parent / "host.json"
    copy.write_text(json.dumps({**host, "extensionBundle": {**host["extensionBundle"], "version": "[4.*, 5.0.0)"}}))
    monkeypatch.setattr("tests.infra.checks_host.APP_ROOT", infra.parent)
    assert "host.json extensionBundle.version '[4.*, 5.0.0)' must start at 4.32.0" in failures(infra)


# Read by the Functions host or Core Tools locally, not by the app.
LOCAL_HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}


def test_local_settings_example_has_what_the_code_reads(real: Check) -> None:
    """`func start` with local.settings.example.json sets no pipeline aside: every setting the code requires, every
    %NAME% and secret the pipelines file names, nothing the code does not read."""
    values = json.loads((APP_ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    code = real.code
    needed = {
        *(s.name for s in APP_SETTINGS if s.required),
        *code.definition_settings,
        *code.secret_settings,
        *code.binding_settings,
    }
    assert not needed - set(values), f"local.settings.example.json lacks {sorted(needed - set(values))}"
    known = {s.name for s in APP_SETTINGS} | needed | LOCAL_HOST_SETTINGS
    assert not set(values) - known, f"local.settings.example.json sets what nothing reads: {set(values) - known}"
    assert {"AML_WORKSPACE_ID", "AZURE_RESOURCE_MANAGER_ENDPOINT", "AML_TENANT", "AML_CLIENT_ID"} <= set(values)


# ---- Required host settings: removing each fails the check --------------------------------------------------


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        (
            "  { name: 'AzureWebJobsStorage__queueServiceUri', value: hostStorage.properties.primaryEndpoints.queue }\n",
            "app setting AzureWebJobsStorage__queueServiceUri is required",
        ),
        (
            "  { name: 'AzureWebJobsStorage__blobServiceUri', value: hostStorage.properties.primaryEndpoints.blob }\n",
            "app setting AzureWebJobsStorage__blobServiceUri is required",
        ),
        (
            "  { name: 'AzureWebJobsStorage__tableServiceUri', value: hostStorage.properties.primaryEndpoints.table }\n",
            "app setting AzureWebJobsStorage__tableServiceUri is required",
        ),
        (
            "  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }\n",
            "app setting AzureWebJobsStorage__credential is required",
        ),
        (
            "  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: "
            "'ClientId=${appIdentity.properties.clientId};Authorization=AAD' }\n",
            "app setting APPLICATIONINSIGHTS_AUTHENTICATION_STRING is required",
        ),
        (
            "    keyVaultReferenceIdentity: appIdentity.id\n",
            "properties.keyVaultReferenceIdentity must be appIdentity.id",
        ),
        (
            "          authentication: {\n            type: 'UserAssignedIdentity'\n"
            "            userAssignedIdentityResourceId: appIdentity.id\n          }\n",
            "functionAppConfig.deployment.storage.authentication must be",
        ),
        (
            "    ipAllowlist: ['0.0.0.0/0'] // required; an empty list denies everyone. Access still needs the data role below.\n",
            "ipAllowlist is required",
        ),
    ],
)
def test_a_removed_host_setting_is_named(infra: Path, old: str, expected: str) -> None:
    edit(infra / "resources.bicep", old, "")
    assert expected in failures(infra)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("type: 'UserAssignedIdentity'", "type: 'UserAssigned'", "deployment.storage.authentication must be"),
        (
            "runtime: { name: 'python', version: '3.11' }",
            "runtime: { name: 'pyton', version: '3.11' }",
            "runtime must be python",
        ),
        (
            "sku: { name: 'FC1', tier: 'FlexConsumption' }",
            "sku: { name: 'Y1', tier: 'Dynamic' }",
            "must have sku { name: 'FC1'",
        ),
        (
            "'Endpoint=${useDurableTaskScheduler ? scheduler.properties.endpoint : ''};Authentication=ManagedIdentity;",
            "'Endpoint=${useDurableTaskScheduler ? scheduler.properties.endpoint : ''};",
            "connectionStringName must name a setting",
        ),
        (
            "'ClientId=${appIdentity.properties.clientId};Authorization=AAD'",
            "'Authorization=AAD'",
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be ClientId=${appIdentity.properties.clientId}",
        ),
    ],
)
def test_a_wrong_host_setting_is_named(infra: Path, old: str, new: str, expected: str) -> None:
    edit(infra / "resources.bicep", old, new)
    assert expected in failures(infra)


# ---- Planted errors: each fails the check, naming the file and line -----------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "resources.bicep",
            "    serverFarmId: plan.id\n",
            "    serverFarmId: plann.id\n",
            "infra/resources.bicep:",
        ),
        ("resources.bicep", "    serverFarmId: plan.id\n", "    serverFarmId: plann.id\n", "plann is not declared"),
        (
            "main.bicep",
            "    maximumInstanceCount: maximumInstanceCount\n",
            "    maximumInstanceCount: '40'\n",
            "module resources passes a string to resources.bicep's int param maximumInstanceCount",
        ),
        (
            "main.bicep",
            "    maximumInstanceCount: maximumInstanceCount\n",
            "",
            "module resources does not pass resources.bicep's required param maximumInstanceCount",
        ),
        (
            "main.bicep",
            "    instanceMemoryMB: instanceMemoryMB\n",
            "    instanceMemoryMB: instanceMemoryMB\n    instanceMemory: instanceMemoryMB\n",
            "module resources passes instanceMemory, which resources.bicep does not declare",
        ),
        (
            "main.bicep",
            "resources.outputs.keyVaultName\n",
            "resources.outputs.keyVaultNam\n",
            "resources.bicep has no output keyVaultNam",
        ),
        ("main.bicep", "targetScope = 'subscription'\n", "", "needs targetScope = 'subscription'"),
        (
            "main.bicep",
            "param maximumInstanceCount int = 40\n",
            "param maximumInstanceCount int = 'forty'\n",
            "param maximumInstanceCount is int but its default is a string",
        ),
        (
            "resources.bicep",
            "'Microsoft.Web/serverfarms@2024-04-01'",
            "'Microsoft.Web/serverfarms@2099-13-45'",
            "resource plan has API version '2099-13-45', which is not a published date",
        ),
        (
            "resources.bicep",
            "sku: { name: 'FC1', tier: 'FlexConsumption' }",
            "sku: { name: 'Y1', tier: 'Dynamic' }",
            "functionAppConfig is Flex Consumption's",
        ),
        (
            "resources.bicep",
            "runtime: { name: 'python', version: '3.11' }",
            "runtime: { name: 'pyton', version: '3.11' }",
            "functionAppConfig.runtime must be python",
        ),
        (
            "resources.bicep",
            "            type: 'UserAssignedIdentity'\n",
            "            type: 'UserAssigned'\n",
            "deployment.storage.authentication must be",
        ),
    ],
)
def test_a_planted_error_is_named(infra: Path, file: str, old: str, new: str, expected: str) -> None:
    edit(infra / file, old, new)
    assert expected in failures(infra)
