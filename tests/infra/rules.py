"""What the infra check holds infra/ to beyond what it derives from the code: the settings the Functions host reads
(HOST_SETTINGS) and those that must never reach Azure, the text that betrays a key, the resource types and templates it
looks for, the roles the app's identity needs (ROLES), the Azure ML actions the app's custom role must hold
(AML_ACTIONS) and never hold (AML_REFUSED), the task hub's name rule and the extension bundle's floor; and the Finding
every check reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from retraining.settings import APP_ROOT

INFRA = APP_ROOT / "infra"

# Settings read by the Functions host or its extensions, not by the app: allowed although neither
# APP_SETTINGS nor the definitions name them. Add one only with the reason it is read.
# Not set, on purpose: FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION (Flex Consumption takes
# the runtime from functionAppConfig.runtime; Microsoft's Flex Consumption azd templates set neither).
HOST_SETTINGS: Mapping[str, str] = {
    "AzureWebJobsStorage__blobServiceUri": "Functions host storage (keys, timer schedule monitor) and Durable's blobs, identity-based",
    "AzureWebJobsStorage__queueServiceUri": "Durable Functions, Azure Storage provider: control and work-item queues",
    "AzureWebJobsStorage__tableServiceUri": "Durable Functions, Azure Storage provider: History and Instances tables",
    "AzureWebJobsStorage__credential": "AzureWebJobsStorage connects with a managed identity ('managedidentity')",
    "AzureWebJobsStorage__clientId": "which user-assigned identity AzureWebJobsStorage uses",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Functions host telemetry (an ingestion endpoint and key id, no secret)",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host telemetry with Microsoft Entra auth (App Insights local auth is off)",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type": (
        "host.json override: 'azureManaged' puts the task hub on the Durable Task Scheduler"
    ),
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName": (
        "host.json override: which setting holds the scheduler connection"
    ),
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING": "Durable extension, azureManaged provider: endpoint and managed identity, no secret",
}

# Settings the code reads locally that must never reach Azure, with the reason (local_only ones are added).
NEVER_IN_AZURE: Mapping[str, str] = {
    "TrainingStorage": "a connection string carries an account key; Azure uses TrainingStorage__blobServiceUri and __clientId",
    "AzureWebJobsStorage": "a connection string carries an account key; Azure uses the AzureWebJobsStorage__* identity settings",
}

# Text that only appears where a key or a keyed connection string is handled.
KEY_PATTERNS = (
    re.compile(r"\blistKeys\s*\(", re.IGNORECASE),
    re.compile(r"\blistConnectionStrings\s*\(", re.IGNORECASE),
    re.compile(r"AccountKey\s*=", re.IGNORECASE),
    re.compile(r"SharedAccessKey\s*=", re.IGNORECASE),
    re.compile(r"SharedAccessSignature\s*=", re.IGNORECASE),
    re.compile(r"DefaultEndpointsProtocol\s*=", re.IGNORECASE),
    re.compile(r"\bprimaryKey\b"),
)

KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\((VaultName=\$\{(?P<vault>\w+)\.name\};SecretName=|SecretUri=)"
)
GLOB_SPECIAL = re.compile(r"[*?\[]")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FUNCTION_APP_TYPE = "Microsoft.Web/sites"
ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
WORKSPACE_TYPE = "Microsoft.MachineLearningServices/workspaces"
SYSTEM_TOPIC_TYPE = "Microsoft.EventGrid/systemTopics"
SUBSCRIPTION_TYPE = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
STORAGE_TOPIC = "Microsoft.Storage.StorageAccounts"
AML_TOPIC = "Microsoft.MachineLearningServices.Workspaces"
AML_EVENT_PREFIX = "Microsoft.MachineLearningServices."
AML_EVENT_DATA = ("runStatus",)  # the keys of event data _aml_job_ends models
# The templates: main.bicep is provisioned (`azd provision`); events.bicep is deployed by infra/hooks/postdeploy
# after the code, since Event Grid refuses a subscription to a function that does not exist yet
# (tests/infra/test_azd.py checks the hook deploys it).
PROVISIONED = "main.bicep"
POST_DEPLOY = "events.bicep"


@dataclass(frozen=True)
class Role:
    """A role the app's identity needs: on which resource, and which code call needs it."""

    name: str
    guid: str
    scope: str  # a key of Check.scopes()
    needed_by: str
    custom: bool = False  # a custom role defined in infra/ (Microsoft.Authorization/roleDefinitions) may stand in


# The roles the code needs. Each is checked to be assigned to the app's identity at that scope.
ROLES: tuple[Role, ...] = (
    Role(
        "Storage Blob Data Owner",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "host storage",
        "Functions host on AzureWebJobsStorage: keys, locks, the timer's schedule monitor (use_monitor=True), "
        "Durable's blobs and leases, the Flex Consumption deployment package",
    ),
    Role(
        "Storage Queue Data Contributor",
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "host storage",
        "Durable Functions, Azure Storage provider: the task hub's queues",
    ),
    Role(
        "Storage Table Data Contributor",
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "host storage",
        "Durable Functions, Azure Storage provider: the task hub's tables",
    ),
    Role(
        "Storage Blob Data Contributor",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "training storage",
        "retraining/storage.py: get_blob_properties, download_blob, upload_blob, create_container, and "
        "get_user_delegation_key for the SAS tokens",
    ),
    Role(
        "Key Vault Secrets User",
        "4633458b-17de-408a-b874-0445c86b69e6",
        "key vault",
        "App Service resolving the @Microsoft.KeyVault(...) settings that Settings.secret() reads",
    ),
    Role(
        "Monitoring Metrics Publisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "application insights",
        "the host's telemetry with APPLICATIONINSIGHTS_AUTHENTICATION_STRING (Entra auth)",
    ),
    Role(
        "Azure ML app role (custom, or AzureML Data Scientist)",
        "f6c7c914-8db3-469d-8ca1-694a8f32e121",
        "azure ml workspace",
        "Azure ML pipelines: submit command jobs, register models, create and update online and batch "
        "endpoints and deployments",
        custom=True,
    ),
    Role(
        "Storage Blob Data Reader",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "azure ml workspace storage",
        "retraining/services/azure_ml/training.py collect: the job's model folder and metrics.json in the "
        "workspace's default datastore, read with the workspace credential",
    ),
    Role(
        "Durable Task Data Contributor",
        "0ad04412-c4d5-4796-b79c-f76d14c8d402",
        "durable task scheduler",
        "Durable Functions with storageProvider azureManaged (the scheduler switch)",
    ),
)


ROLE_DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
_AML = "Microsoft.MachineLearningServices/workspaces"
# The Azure ML actions the app's custom role holds, each with the call that needs it (retraining/services/azure_ml).
# The role in infra/ must hold exactly these, each commented in place with its call.
AML_ACTIONS: Mapping[str, str] = {
    f"{_AML}/read": "workspace.py tracking_host: GET the workspace",
    f"{_AML}/jobs/read": "training.py status and collect: GET jobs/{name}",
    f"{_AML}/jobs/write": "training.py submit: PUT jobs/{name}",
    f"{_AML}/jobs/cancel/action": "training.py cancel: POST jobs/{name}/cancel",
    f"{_AML}/experiments/runs/submit/action": "training.py submit: a command job is an experiment run",
    f"{_AML}/experiments/runs/read": "workspace.py run_metrics and run_error",
    f"{_AML}/environments/read": "training.py submit: the job's environmentId",
    f"{_AML}/environments/versions/read": "training.py submit: the job's environmentId",
    f"{_AML}/computes/read": "training.py submit: the job's computeId",
    f"{_AML}/datastores/read": "workspace.py datastore: GET datastores/{name}",
    f"{_AML}/models/read": "registry.py: GET models/{name}",
    f"{_AML}/models/write": "registry.py: the model container a first version creates",
    f"{_AML}/models/versions/read": "registry.py: GET models/{name}/versions",
    f"{_AML}/models/versions/write": "registry.py register: PUT models/{name}/versions/{version}",
    f"{_AML}/onlineEndpoints/read": "endpoints.py endpoint: GET onlineEndpoints/{name}",
    f"{_AML}/onlineEndpoints/write": "online.py _put: PUT onlineEndpoints/{name} (traffic)",
    f"{_AML}/onlineEndpoints/deployments/read": "endpoints.py deployments: GET deployments",
    f"{_AML}/onlineEndpoints/deployments/write": "endpoints.py deploy: PUT deployments/{name}",
    f"{_AML}/onlineEndpoints/deployments/delete": "endpoints.py cleanup and remove_new",
    f"{_AML}/onlineEndpoints/deployments/getLogs/action": "online.py logs: POST getLogs",
    f"{_AML}/onlineEndpoints/listKeys/action": "probe.py _credential, authMode key",
    f"{_AML}/onlineEndpoints/token/action": "probe.py _credential, authMode AMLToken",
    f"{_AML}/batchEndpoints/read": "endpoints.py endpoint: GET batchEndpoints/{name}",
    f"{_AML}/batchEndpoints/write": "batch.py _switch: PUT batchEndpoints/{name} (defaults)",
    f"{_AML}/batchEndpoints/deployments/read": "endpoints.py deployments: GET deployments",
    f"{_AML}/batchEndpoints/deployments/write": "endpoints.py deploy: PUT deployments/{name}",
    f"{_AML}/batchEndpoints/deployments/delete": "endpoints.py cleanup and remove_new",
}
AML_DATA_ACTIONS: Mapping[str, str] = {
    f"{_AML}/onlineEndpoints/score/action": "probe.py _credential, authMode AADToken: scoring with the app's token",
}
# Actions that hand out secrets or change more than the app needs: never in the app's role.
AML_REFUSED = (
    "datastores/listsecrets/action",
    "/listKeys/action",  # but onlineEndpoints/listKeys/action, the scoring key of the app's own endpoint
    "/listNotebookKeys/action",
    "/listStorageAccountKeys/action",
    "computes/write",
    "computes/delete",
    f"{_AML}/write",
    f"{_AML}/delete",
    "*",
)
TASK_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,44}")  # Azure Storage provider's rule; DTS accepts these too
EXTENSION_BUNDLE_FLOOR = (4, 32, 0)  # Durable Task Scheduler (azureManaged) support in the extension bundle


@dataclass(frozen=True)
class Finding:
    check: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}"
