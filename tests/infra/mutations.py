"""Ways the infrastructure tests break a copy of infra/ (the `infra` fixture, in conftest.py), and read the findings."""

from __future__ import annotations

import re
from pathlib import Path

from .infra_check import check


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def remove_resource(path: Path, symbol: str, kind: str = "resource") -> None:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^{kind} {symbol} .*?^\}}\]?\n", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"{path.name} has no {kind} {symbol}: update this test"
    path.write_text(text[: match.start()] + text[match.end() :], encoding="utf-8")


def failures(root: Path, **derive: object) -> str:
    findings = check(root, **derive)
    assert findings, "the check passed on broken infrastructure"
    return "\n".join(map(str, findings))


# ---- Planted type errors: each must be caught by the type check (typecheck.py), naming the file and line ----------
# (file, old, new, what the finding says[, where]): the finding names the line of `where` in the changed file, or
# without `where` the first line of `new` that is not in `old` (test_typecheck.py).
TYPE_ERRORS: list[tuple[str, ...]] = [
    (
        "events.bicep",
        "'Microsoft.Storage/storageAccounts@2023-05-01' existing",
        "'Microsoft.Storage/storageAcounts@2023-05-01' existing",
        "resource trainingStorage has type Microsoft.Storage/storageAcounts, which is not a resource type",
    ),
    (
        "resources.bicep",
        "'Microsoft.Web/serverfarms@2024-04-01'",
        "'Microsoft.Web/serverfarms@2024-04-02'",
        "has API version '2024-04-02' of Microsoft.Web/serverfarms, which the table does not have",
    ),
    (
        "resources.bicep",
        "    allowBlobPublicAccess: false\n",
        "    allowBlobPublicAcess: false\n",
        "has property properties.allowBlobPublicAcess, which the spec does not define (did you mean "
        "allowBlobPublicAccess?)",
    ),
    ("resources.bicep", "kind: 'StorageV2'", "kind: 'StorageV3'", "hostStorage kind is 'StorageV3', not one of"),
    (
        "resources.bicep",
        "sku: { name: 'Standard_LRS' }",
        "sku: { name: 'StorageV3' }",
        "hostStorage sku.name is 'StorageV3', not one of",
    ),
    (
        "resources.bicep",
        "    httpsOnly: true\n",
        "    httpsOnly: 'true'\n",
        "functionApp properties.httpsOnly is a bool in the spec, but a string is given",
    ),
    (
        "resources.bicep",
        "      ftpsState: 'Disabled'\n",
        "      ftpsState: 'Off'\n",
        "functionApp properties.siteConfig.ftpsState is 'Off', not one of",
    ),
    (
        "resources.bicep",
        "runtime: { name: 'python', version: '3.11' }",
        "runtime: { name: 'pyton', version: '3.11' }",
        "properties.functionAppConfig.runtime.name is 'pyton', not one of",
    ),
    (
        "resources.bicep",
        "            type: 'UserAssignedIdentity'\n",
        "            type: 'UserAssigned'\n",
        "functionAppConfig.deployment.storage.authentication.type is 'UserAssigned', not one of",
    ),
    (
        "resources.bicep",
        "  parent: trainingStorage::blobService\n  name: deadLetterContainerName\n  properties: { publicAccess: 'None' }",
        "  parent: trainingStorage::blobService\n  name: deadLetterContainerName\n  properties: { publicAccess: 'Private' }",
        "deadLetterContainer properties.publicAccess is 'Private', not one of",
    ),
    (
        "resources.bicep",
        "    httpsOnly: true\n",
        "    httpsOnly: true\n    defaultHostName: 'retrain.example'\n",
        "functionApp sets properties.defaultHostName, which is read-only",
    ),
    (
        "resources.bicep",
        "  kind: 'StorageV2'\n",
        "  kinds: 'StorageV2'\n",
        "hostStorage lacks kind, which the spec requires",
        "resource hostStorage ",
    ),
    (
        "resources.bicep",
        "param maximumInstanceCount int\n",
        "param maximumInstanceCount string\n",
        "scaleAndConcurrency.maximumInstanceCount is an int in the spec, but param maximumInstanceCount is declared "
        "string",
        "        maximumInstanceCount: maximumInstanceCount",
    ),
    (
        "main.bicep",
        "param maximumInstanceCount int = 40\n",
        "param maximumInstanceCount string = '40'\n",
        "module resources passes param maximumInstanceCount (string) to resources.bicep's int param "
        "maximumInstanceCount",
        "    maximumInstanceCount: maximumInstanceCount",
    ),
    (
        "resources.bicep",
        "  name: 'appsettings'\n",
        "  name: 'appsetings'\n",
        "pageUrlSetting is a Microsoft.Web/sites/config named 'appsetings'; the table knows only appsettings",
    ),
    # Authorization, Insights, OperationalInsights, ManagedIdentity, Key Vault, Durable Task, Resources
    (
        "resources.bicep",
        "    principalType: 'ServicePrincipal'\n",
        "    principalType: 'Users'\n",
        "hostBlobOwner properties.principalType is 'Users', not one of 'ForeignGroup', 'Group', 'ServicePrincipal', "
        "'User' (did you mean 'User'?)",
    ),
    (
        "resources.bicep",
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)\n",
        "",
        "hostBlobOwner lacks properties.roleDefinitionId, which the spec requires",
        "  properties: {\n    principalId: appIdentity.properties.principalId",
    ),
    (
        "aml-access.bicep",
        "    type: 'CustomRole'\n",
        "    type: 'CustomRole'\n    isCustom: true\n",
        "amlAppRole has property properties.isCustom, which the spec does not define",
    ),
    (
        "resources.bicep",
        "    Application_Type: 'web'\n",
        "    Application_Type: 'wed'\n",
        "appInsights properties.Application_Type is 'wed', not one of 'other', 'web' (did you mean 'web'?)",
    ),
    (
        "resources.bicep",
        "    DisableLocalAuth: true\n",
        "    DisableLocalAuth: 'true'\n",
        "appInsights properties.DisableLocalAuth is a bool in the spec, but a string is given",
    ),
    (
        "resources.bicep",
        "    sku: { name: 'PerGB2018' }\n",
        "    sku: { name: 'PerGB2019' }\n",
        "logAnalytics properties.sku.name is 'PerGB2019', not one of",
    ),
    (
        "resources.bicep",
        "  name: 'id-${resourceToken}'\n",
        "  name: 'id-${resourceToken}'\n  properties: { clientId: 'x' }\n",
        "appIdentity sets properties, which is read-only",
    ),
    (
        "resources.bicep",
        "    contentType: 'text/plain'\n",
        "    contentTyp: 'text/plain'\n",
        "secretValues has property properties.contentTyp, which the spec does not define (did you mean contentType?)",
    ),
    (
        "resources.bicep",
        "{ name: 'Consumption' }",
        "{ name: 'Consumptive' }",
        "scheduler properties.sku.name is 'Consumptive', not one of 'Consumption', 'Dedicated'",
    ),
    (
        "resources.bicep",
        "    ipAllowlist: ['0.0.0.0/0']",
        "    ipAllowList: ['0.0.0.0/0']",
        "scheduler lacks properties.ipAllowlist, which the spec requires",
        "  properties: {\n    sku: durableTaskSchedulerSku",
    ),
    (
        "main.bicep",
        "  location: location\n",
        "  location: location\n  managedBy: true\n",
        "rg managedBy is a string in the spec, but a bool is given",
    ),
    # Event Grid: system topics and their event subscriptions, with polymorphic destinations and filters
    (
        "resources.bicep",
        "    topicType: 'Microsoft.Storage.StorageAccounts'\n",
        "    topicTypes: 'Microsoft.Storage.StorageAccounts'\n",
        "trainingEvents has property properties.topicTypes, which the spec does not define (did you mean topicType?)",
    ),
    (
        "resources.bicep",
        "  identity: { type: 'SystemAssigned' } // writes",
        "  identity: { type: 'SystemAsigned' } // writes",
        "trainingEvents identity.type is 'SystemAsigned', not one of",
    ),
    (
        "events.bicep",
        "      isSubjectCaseSensitive: true\n",
        "      isSubjectCaseSensitve: true\n",
        "trainingDataArrived has property properties.filter.isSubjectCaseSensitve, which the spec does not define "
        "(did you mean isSubjectCaseSensitive?)",
    ),
    (
        "events.bicep",
        "      endpointType: 'AzureFunction'\n",
        "      endpointType: 'AzureFunctions'\n",
        "trainingDataArrived properties.destination.endpointType is 'AzureFunctions', not one of the kinds the spec "
        "defines: 'AzureFunction', 'EventHub',",
    ),
    (
        "events.bicep",
        "        maxEventsPerBatch: 1\n",
        "        maxEventPerBatch: 1\n",
        "trainingDataArrived has property properties.destination.properties.maxEventPerBatch, which the spec does not "
        "define (did you mean maxEventsPerBatch?)",
    ),
    (
        "events.bicep",
        "key: 'data.contentLength', value: 0 }",
        "key: 'data.contentLength', value: '0' }",
        "trainingDataArrived properties.filter.advancedFilters.[0].value is an int in the spec, but a string is given",
    ),
    (
        "events.bicep",
        "{ operatorType: 'NumberGreaterThan', key: 'data.contentLength', value: 0 }",
        "{ operatorType: 'NumberGreaterThan', key: 'data.contentLength', values: [0] }",
        "trainingDataArrived has property properties.filter.advancedFilters.[0].values, which the spec does not "
        "define (did you mean value?)",
    ),
    (
        "events.bicep",
        "        endpointType: 'StorageBlob'\n",
        "        endpointType: 'StorageQueue'\n",
        "trainingDataArrived properties.deadLetterWithResourceIdentity.deadLetterDestination.endpointType is "
        "'StorageQueue', not one of the kinds the spec defines: 'StorageBlob'",
    ),
    (
        "aml-events.bicep",
        "          operatorType: 'StringNotIn'\n",
        "          operatorType: 'StringNotEquals'\n",
        "amlJobEvent properties.filter.advancedFilters.[0].operatorType is 'StringNotEquals', not one of the kinds",
    ),
    (
        "aml-events.bicep",
        "    eventDeliverySchema: 'EventGridSchema'\n",
        "    eventDeliverySchema: 'CloudEventSchema'\n",
        "amlJobEvent properties.eventDeliverySchema is 'CloudEventSchema', not one of",
    ),
]
