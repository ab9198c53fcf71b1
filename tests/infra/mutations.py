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
]
