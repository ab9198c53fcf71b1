"""The offline check that infra/ (Bicep for `azd up`) provides what the code reads.

What the code reads is derived when the check runs, from the code itself, never from a list kept here:

- app settings: `retraining.settings.APP_SETTINGS` (local_only ones must *not* be set in Azure), the
  `%NAME%` binding expressions in host.json and in the functions' bindings (`function_app.app`), and,
  in the pipeline definitions file the deployed app will read (RETRAIN_PIPELINES_FILE as the Bicep sets
  it), every `%NAME%` string and every secret named by a `...Setting` field;
- containers: each pipeline's `data.container` and `output.container`, and every `..._container` field
  of `Settings` (run records today), with the values the Bicep gives their settings;
- Event Grid: the functions with an `eventGridTrigger` binding, and each pipeline's `data.watch` glob;
- Azure ML: the pipelines whose `training.kind` is Azure ML's command job, the job events
  `retraining.services.azure_ml.events` acts on, and the setting each pipeline's credential takes its
  client id from.

Beyond what the code reads, it requires what the Functions host needs for what the Bicep turns on (identity-based
AzureWebJobsStorage__*, keyVaultReferenceIdentity, App Insights Entra auth, the deployment storage's authentication,
the scheduler's connection and ipAllowlist, a Flex Consumption plan and Python runtime), a dead-letter destination
per blob subscription, a recoverable Key Vault, the least-privilege Azure ML role (AML_ACTIONS), and the Bicep's own
consistency (tests/infra/bicep_structure.py: names, module parameters and outputs, parameter types, targetScope),
and checks resource types, API versions, property names, value types and enum values against a table made from
Azure's REST specs (tests/infra/typecheck.py, tests/infra/typetable/).

The Bicep is parsed with pycep (the parser checkov uses), and the check follows what feeds the Function
App's `siteConfig.appSettings`: name/value arrays, `concat`, conditionals, for-expressions over objects,
variables, and parameters back through the `module` that passes them. Every finding says what is
missing or extra and where to change it. Run it alone with `python -m tests.infra.infra_check`.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retraining.definitions import _SETTING_REF
from retraining.definitions.azure_ml import AML_TRAINING
from retraining.errors import ConfigError
from retraining.services.azure_ml.events import RUN_COMPLETED, RUN_STATUS_CHANGED, TERMINAL
from retraining.settings import APP_ROOT, APP_SETTINGS, AppSetting, Settings

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


# ---- What the code reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Watch:
    pipeline: str
    container: str
    glob: str
    where: str

    def filters(self) -> tuple[str, str]:
        """The Event Grid subject filters this glob allows: the literal text before its first wildcard
        and after its last one (blob names are relative to the container)."""
        first = GLOB_SPECIAL.search(self.glob)
        if first is None:
            return self.glob, ""
        prefix, tail = self.glob[: first.start()], self.glob[first.start() :]
        last_end = 0
        for match in GLOB_SPECIAL.finditer(tail):
            end = match.end()
            if match.group() == "[":
                close = tail.find("]", match.end() + 1)
                end = close + 1 if close > 0 else end
            last_end = max(last_end, end)
        return prefix, tail[last_end:]


@dataclass(frozen=True)
class AmlPipeline:
    """A pipeline that trains with an Azure ML command job: its workspace's job events must reach the app."""

    name: str
    where: str
    client_id_setting: str | None  # the %NAME% its workspace.credential.clientId refers to
    client_id_where: str


@dataclass
class CodeReads:
    """Everything the code reads that the infrastructure must provide, each with where it is read."""

    app_settings: dict[str, AppSetting]
    binding_settings: dict[str, str] = field(default_factory=dict)
    definition_settings: dict[str, str] = field(default_factory=dict)
    secret_settings: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)
    watches: list[Watch] = field(default_factory=list)
    event_grid_functions: list[str] = field(default_factory=list)
    aml_pipelines: list[AmlPipeline] = field(default_factory=list)
    container_settings: dict[str, str] = field(default_factory=dict)  # app setting -> Settings field
    definitions_file: str = ""
    problems: list[str] = field(default_factory=list)  # what the code refuses in the values the Bicep gives

    @property
    def forbidden(self) -> dict[str, str]:
        local = {
            s.name: "local_only in retraining/settings.py APP_SETTINGS"
            for s in self.app_settings.values()
            if s.local_only
        }
        return {**NEVER_IN_AZURE, **local}

    def required(self) -> dict[str, str]:
        """Setting -> where the code reads it; all must be set in Azure."""
        needed = {name: f"retraining/settings.py APP_SETTINGS ({s.meaning})" for name, s in self.app_settings.items()}
        needed.update({name: where for name, where in self.binding_settings.items() if name not in needed})
        needed.update(self.definition_settings)
        needed.update(self.secret_settings)
        return {name: where for name, where in needed.items() if name not in self.forbidden}


def function_bindings() -> list[tuple[str, dict[str, Any]]]:
    """(function name, binding) for every function `function_app.app` registers, indexed once per
    process by devhost's discovery (the app may be indexed only once)."""
    from devhost.discovery import load_app

    return [(spec.name, dict(binding)) for spec in load_app().all for binding in spec.bindings]


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(json path, key, string) for every string in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(item, str):
                yield child, str(key), item
            else:
                yield from _json_strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            child = f"{path}[{index}]"
            if isinstance(item, str):
                yield child, "", item
            else:
                yield from _json_strings(item, child)


def _binding_references(text: str) -> list[str]:
    return re.findall(r"%([A-Za-z_][A-Za-z0-9_.:]*)%", text)


def derive_code_reads(
    bicep_values: Mapping[str, str | None],
    *,
    app_settings: Sequence[AppSetting] = APP_SETTINGS,
    definitions_path: Path | None = None,
    bindings: Callable[[], list[tuple[str, dict[str, Any]]]] = function_bindings,
    host_json: Path = APP_ROOT / "host.json",
) -> CodeReads:
    """What the code reads, given the literal values the Bicep gives its settings (None: not literal)."""
    reads = CodeReads({s.name: s for s in app_settings})
    for json_path, _, text in _json_strings(json.loads(host_json.read_text(encoding="utf-8")), ""):
        for name in _binding_references(text):
            reads.binding_settings[name] = f"host.json {json_path}"
    for function, binding in bindings():
        for json_path, _, text in _json_strings(binding, ""):
            for name in _binding_references(text):
                reads.binding_settings[name] = f"function {function} binding {binding.get('type')}.{json_path}"
        if binding.get("type") == "eventGridTrigger":
            reads.event_grid_functions.append(function)

    # The Settings the deployed app builds from the values the Bicep sets (code defaults for the rest)
    # give the definitions file it reads and the value of every container setting.
    env = {name: value for name, value in bicep_values.items() if value is not None and name in reads.app_settings}
    env.setdefault("TrainingStorage__blobServiceUri", "https://unresolved.invalid/")  # known only in Azure
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        reads.problems.append(f"Settings.from_env refuses the values the Bicep sets: {exc}")
        settings = Settings.from_env({"TrainingStorage__blobServiceUri": env["TrainingStorage__blobServiceUri"]})
    for name in vars(settings):
        if name.endswith("_container"):
            setting = next((s.name for s in app_settings if s.name.lower().endswith(name)), "?")
            reads.containers[getattr(settings, name)] = f"Settings.{name}, app setting {setting}"
            reads.container_settings[setting] = name

    path = definitions_path or settings.pipelines_file
    reads.definitions_file = path.name
    raw = json.loads(path.read_text(encoding="utf-8"))
    for json_path, key, text in _json_strings(raw, ""):
        where = f"{path.name} {json_path}"
        match = _SETTING_REF.match(text)
        if match:
            reads.definition_settings.setdefault(match.group(1), where)
        elif key.endswith("Setting"):
            reads.secret_settings.setdefault(text, where)

    def resolved(value: Any) -> str:
        match = _SETTING_REF.match(value) if isinstance(value, str) else None
        if match:
            return bicep_values.get(match.group(1)) or value
        return str(value)

    for index, pipeline in enumerate(raw.get("pipelines", [])):
        name, data = pipeline.get("name", f"#{index}"), pipeline.get("data") or {}
        here = f"{path.name} pipelines[{index}]"
        if "container" in data:
            reads.containers.setdefault(resolved(data["container"]), f"{here}.data.container")
        if "container" in (pipeline.get("output") or {}):
            reads.containers.setdefault(resolved(pipeline["output"]["container"]), f"{here}.output.container")
        glob = data.get("watch", data.get("blob"))
        if "container" in data and isinstance(glob, str):
            reads.watches.append(Watch(name, resolved(data["container"]), resolved(glob), f"{here}.data.watch"))
        training = pipeline.get("training") or {}
        if isinstance(training, dict) and training.get("kind") == AML_TRAINING:
            credential = (pipeline.get("workspace") or {}).get("credential") or {}
            client_id = credential.get("clientId") if isinstance(credential, dict) else None
            match = _SETTING_REF.match(client_id) if isinstance(client_id, str) else None
            reads.aml_pipelines.append(
                AmlPipeline(
                    name,
                    f"{here}.training.kind '{AML_TRAINING}'",
                    match.group(1) if match else None,
                    f"{here}.workspace.credential.clientId",
                )
            )
    return reads


# ---- The Bicep, parsed ----------------------------------------------------------------------------------


@functools.cache
def _parser() -> Any:
    from pycep import BicepParser

    return BicepParser()


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> dict[str, Any]:
    tree: dict[str, Any] = _parser().parse(text=text)
    return tree


@dataclass(repr=False)
class BicepFile:
    path: Path
    text: str
    tree: dict[str, Any]

    def __repr__(self) -> str:
        return f"BicepFile({self.path.name})"

    @property
    def name(self) -> str:
        return self.path.name

    def section(self, kind: str) -> dict[str, Any]:
        return self.tree.get(kind) or {}

    def symbols(self) -> set[str]:
        return {
            *self.section("parameters"),
            *self.section("variables"),
            *self.section("resources"),
            *self.section("modules"),
        }


def unwrap(config: Any) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """A resource's or module's (condition, loop, body), whatever pycep wrapped around the body."""
    condition, loop = None, None
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        condition = config.get("condition") or condition
        loop = config.get("loop_type") or loop
        config = config["config"]
    return condition, loop, config if isinstance(config, dict) else {}


def dotted(node: Any) -> str | None:
    """`a.b.c` for a chain of property accessors (`a::b` becomes `a__b`, as pycep names child resources)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "operator" in node:
        operator = node["operator"]
        if operator.get("type") in ("property_accessor", "nested_resource_accessor"):
            left, right = dotted(operator["operands"]["operand_1"]), dotted(operator["operands"]["operand_2"])
            if left is None or right is None:
                return None
            joiner = "__" if operator["type"] == "nested_resource_accessor" else "."
            return f"{left}{joiner}{right}"
    return None


@dataclass(frozen=True)
class Resource:
    file: BicepFile
    symbol: str  # `name`, or `parent__child` for a nested resource (pycep's naming)
    type: str
    condition: Any
    loop: dict[str, Any] | None
    body: dict[str, Any]
    existing: bool


@dataclass(frozen=True)
class Setting:
    name: str
    value: Any
    file: BicepFile
    origin: str  # the variable (or parameter) it comes from
    conditional: bool
    item: str | None = None  # the for-expression's item name, when the value is a template over it
    home: str = ""  # where a line for it is written: `var X in infra/F`

    def __post_init__(self) -> None:
        if not self.home:
            object.__setattr__(self, "home", f"var {self.origin} in infra/{self.file.name}")


class Infra:
    """The Bicep files of infra/, parsed, with the lookups the checks need."""

    def __init__(self, root: Path = INFRA) -> None:
        self.root = root
        self.files: dict[str, BicepFile] = {}
        self.errors: list[Finding] = []
        for path in sorted(root.glob("*.bicep")):
            text = path.read_text(encoding="utf-8")
            try:
                tree = _parse(text)
            except Exception as exc:  # lark raises many error types; each is a file we cannot check
                self.errors.append(
                    Finding("parse", f"infra/{path.name} does not parse with pycep: {str(exc).splitlines()[0]}")
                )
                continue
            self.files[path.name] = BicepFile(path, text, tree)

    # -- resources -----------------------------------------------------------------------------------

    def resources(self) -> Iterator[Resource]:
        """Every resource; pycep lists most nested ones at the top as `parent__child`, with their full type."""
        for file in self.files.values():
            for symbol, resource in file.section("resources").items():
                yield from self._resource(file, symbol, resource["type"], resource)

    def _resource(self, file: BicepFile, symbol: str, type_: str, resource: dict[str, Any]) -> Iterator[Resource]:
        condition, loop, body = unwrap(resource.get("config"))
        yield Resource(file, symbol, type_, condition, loop, body, bool(resource.get("existing")))
        # pycep leaves the child of a conditional resource nested, under __child_resource__.
        child = body.get("__child_resource__")
        if isinstance(child, dict) and "__attrs__" in child:
            attrs = child["__attrs__"]
            yield from self._resource(file, f"{symbol}__{child['__name__']}", f"{type_}/{attrs['type']}", attrs)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources() if r.type.lower() == type_.lower()]

    def roots(self, file: BicepFile) -> set[str]:
        """The templates (files no module deploys) that deploy `file`, itself if it is one."""
        seen: set[str] = set()
        todo, found = [file], set()
        while todo:
            current = todo.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            callers = [caller for caller, _ in self.callers(current)]
            if not callers:
                found.add(current.name)
            todo.extend(callers)
        return found

    def provisioned(self, file: BicepFile) -> bool:
        return PROVISIONED in self.roots(file)

    # -- following values ----------------------------------------------------------------------------

    def callers(self, file: BicepFile) -> Iterator[tuple[BicepFile, dict[str, Any]]]:
        """(calling file, module params) for each `module` that deploys `file`."""
        for caller in self.files.values():
            for module in caller.section("modules").values():
                path = (module.get("detail") or {}).get("path", "")
                if (caller.path.parent / path).resolve() == file.path.resolve():
                    _, _, body = unwrap(module.get("config"))
                    yield caller, body.get("params") or {}

    def origin(self, file: BicepFile, node: Any) -> tuple[BicepFile, Any]:
        """Follow an identifier through variables and up through module parameters to its source."""
        for _ in range(20):
            node = dotted(node) or node
            if not isinstance(node, str):
                return file, node
            if node in file.section("variables"):
                node = file.section("variables")[node]["value"]
                continue
            if node in file.section("parameters"):
                passed = [(caller, params[node]) for caller, params in self.callers(file) if node in params]
                if len(passed) == 1:
                    file, node = passed[0]
                    continue
            if "." in node and node.split(".")[0] in file.section("modules") and ".outputs." in node:
                module_name, _, output = node.partition(".outputs.")
                module = file.section("modules")[module_name]
                target = self.files.get(Path(module["detail"]["path"]).name)
                if target and output in target.section("outputs"):
                    file, node = target, target.section("outputs")[output]["value"]
                    continue
            return file, node
        return file, node

    def literal(self, file: BicepFile, node: Any) -> str | None:
        """The literal string a value has before deployment, or None (a runtime value, or a required param)."""
        if isinstance(node, dict) and "function" in node and node["function"].get("type") == "string":
            return self.literal(file, node["function"]["parameters"]["value_to_convert"])
        if isinstance(node, bool):
            return str(node).lower()
        if isinstance(node, int):
            return str(node)
        if not isinstance(node, str):
            return None
        if node in file.section("parameters"):
            source_file, source = self.origin(file, node)
            if isinstance(source, str) and source in source_file.section("parameters"):
                return self.literal(source_file, source_file.section("parameters")[source].get("default"))
            if source_file is not file or source != node:
                return self.literal(source_file, source)
            return None
        if node in file.section("variables"):
            return self.literal(file, file.section("variables")[node]["value"])
        if node in file.symbols() or "${" in node:
            return None
        return node

    def objects(self, file: BicepFile, node: Any) -> tuple[BicepFile, str, dict[str, Any]] | None:
        """(file, variable name, object literal) an identifier stands for, or None."""
        name = node if isinstance(node, str) else "?"
        source_file, source = self.origin(file, node)
        if isinstance(source, dict) and not ({"function", "operator", "loop_type"} & set(source)):
            origin_name = next((v for v, d in source_file.section("variables").items() if d["value"] is source), name)
            return source_file, origin_name, source
        return None

    def arrays(self, file: BicepFile, node: Any) -> tuple[BicepFile, str, list[Any]] | None:
        source_file, source = self.origin(file, node)
        if isinstance(source, list):
            origin_name = next(
                (v for v, d in source_file.section("variables").items() if d["value"] is source), str(node)
            )
            return source_file, origin_name, source
        return None

    # -- the Function App ----------------------------------------------------------------------------

    def function_app(self) -> Resource | None:
        apps = [
            r
            for r in self.of_type(FUNCTION_APP_TYPE)
            if not r.existing and "functionapp" in str(r.body.get("kind", ""))
        ]
        return apps[0] if len(apps) == 1 else None

    def settings(self) -> tuple[list[Setting], list[Finding]]:
        app = self.function_app()
        if app is None:
            return [], [
                Finding(
                    "settings",
                    "no single Flex Consumption Function App (Microsoft.Web/sites, kind functionapp) found in infra/",
                )
            ]
        node = ((app.body.get("properties") or {}).get("siteConfig") or {}).get("appSettings")
        if node is None:
            return [], [
                Finding("settings", f"infra/{app.file.name} {app.symbol}: properties.siteConfig.appSettings is not set")
            ]
        found: list[Setting] = []
        problems: list[Finding] = []
        self._settings(app.file, node, False, "appSettings", found, problems)
        for config in self.of_type("Microsoft.Web/sites/config"):
            if config.file is not app.file or config.body.get("parent") != app.symbol:
                continue
            if config.body.get("name") != "appsettings":
                continue
            self._config_settings(app, config, found, problems)
        return found, problems

    def _config_settings(self, app: Resource, config: Resource, out: list[Setting], problems: list[Finding]) -> None:
        """A config/appsettings child of the app: a PUT replaces every setting, so it must merge the ones
        siteConfig.appSettings set (`union(list('${app.id}/config/appsettings', ...).properties, {...})`)."""
        where = f"infra/{config.file.name} {config.symbol}"
        node = config.body.get("properties")
        function = node.get("function", {}) if isinstance(node, dict) else {}
        arguments = list(function.get("parameters", {}).values()) if function.get("type") == "union" else [node]
        merged = any(
            "list_func" in json.dumps(argument) and f"${{{app.symbol}.id}}/config/appsettings" in json.dumps(argument)
            for argument in arguments
        )
        if not merged:
            problems.append(
                Finding(
                    "settings",
                    f"{where}: a config/appsettings PUT replaces every app setting; merge the site's own with "
                    f"union(list('${{{app.symbol}.id}}/config/appsettings', '<api-version>').properties, {{...}})",
                )
            )
        for argument in arguments:
            if isinstance(argument, dict) and not ({"function", "operator", "loop_type"} & set(argument)):
                for key, value in argument.items():
                    out.append(
                        Setting(
                            key.strip("'"),
                            value,
                            config.file,
                            config.symbol,
                            False,
                            home=f"resource {config.symbol} in infra/{config.file.name}",
                        )
                    )

    def _settings(
        self, file: BicepFile, node: Any, conditional: bool, origin: str, out: list[Setting], problems: list[Finding]
    ) -> None:
        if isinstance(node, list):
            for item in node:
                name = item.get("name") if isinstance(item, dict) else None
                if not isinstance(name, str) or name in file.symbols():
                    problems.append(
                        Finding(
                            "settings",
                            f"infra/{file.name} {origin}: an app setting whose name is not a literal: {item!r:.120}",
                        )
                    )
                    continue
                out.append(Setting(name, item.get("value"), file, origin, conditional))
            return
        if isinstance(node, str) and node in file.section("variables"):
            value = file.section("variables")[node]["value"]
            if isinstance(value, dict) and "loop_type" in value:
                self._loop_settings(file, node, value, conditional, out, problems)
            else:
                self._settings(file, value, conditional, node, out, problems)
            return
        if isinstance(node, dict) and node.get("function", {}).get("type") == "concat":
            for argument in node["function"]["parameters"].values():
                self._settings(file, argument, conditional, origin, out, problems)
            return
        if isinstance(node, dict) and node.get("operator", {}).get("type") == "conditional":
            operands = node["operator"]["operands"]
            self._settings(file, operands["true_value"], True, origin, out, problems)
            self._settings(file, operands["false_value"], True, origin, out, problems)
            return
        problems.append(
            Finding(
                "settings",
                f"infra/{file.name} {origin}: cannot follow this app settings expression: {json.dumps(node)[:160]}",
            )
        )

    def _loop_settings(
        self,
        file: BicepFile,
        var: str,
        loop: dict[str, Any],
        conditional: bool,
        out: list[Setting],
        problems: list[Finding],
    ) -> None:
        detail, body = loop["loop_type"]["detail"], loop.get("config") or {}
        item = detail.get("item_name")
        if loop["loop_type"].get("type") != "object" or dotted(body.get("name")) != f"{item}.key":
            problems.append(
                Finding(
                    "settings",
                    f"infra/{file.name} var {var}: expected [for {item} in items(OBJECT): {{ name: {item}.key, value: ... }}]",
                )
            )
            return
        source = self.objects(file, detail["object_name"])
        if source is None:
            problems.append(
                Finding(
                    "settings",
                    f"infra/{file.name} var {var}: cannot find the object {detail['object_name']} it loops over",
                )
            )
            return
        source_file, source_var, entries = source
        for key, value in entries.items():
            if dotted(body.get("value")) == f"{item}.value":
                out.append(Setting(key.strip("'"), value, source_file, source_var, conditional))
            else:
                out.append(
                    Setting(
                        key.strip("'"),
                        body.get("value"),
                        file,
                        var,
                        conditional,
                        item=item,
                        home=f"var {source_var} in infra/{source_file.name}",
                    )
                )


# ---- The checks -------------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def _home(settings: list[Setting], names: Iterable[str], default: str) -> str:
    """Where settings of one kind live (file and variable), to say where a missing one goes."""
    homes = [s.home for s in settings if s.name in set(names)]
    return max(set(homes), key=homes.count) if homes else default


class Check:
    """Runs every check on one infra/ directory against what the code reads."""

    def __init__(self, root: Path = INFRA, **derive: Any) -> None:
        self.infra = Infra(root)
        self.settings, self.setting_problems = self.infra.settings()
        self.by_name: dict[str, list[Setting]] = {}
        for setting in self.settings:
            self.by_name.setdefault(setting.name, []).append(setting)
        values = {s.name: self.infra.literal(s.file, s.value) for s in self.settings}
        self.code = derive_code_reads(values, **derive)

    def run(self) -> list[Finding]:
        findings = [*self.infra.errors]
        for check in (
            self.check_settings,
            self.check_secrets,
            self.check_containers,
            self.check_roles,
            self.check_event_grid,
            self.check_azure_ml,
            self.check_no_keys,
            self.check_durable_task_scheduler,
            self.check_host,
            self.check_key_vault,
            self.check_aml_role,
            self.check_bicep,
        ):
            findings.extend(check())
        return findings

    # -- app settings -----------------------------------------------------------------------------------

    def check_settings(self) -> list[Finding]:
        findings = [*self.setting_problems, *(Finding("settings", problem) for problem in self.code.problems)]
        required = self.code.required()
        code_home = _home(self.settings, self.code.app_settings, "var appSettings in infra/main.bicep")
        definitions_home = _home(
            self.settings, self.code.definition_settings, "var pipelineSettings in infra/main.bicep"
        )
        for name, where in sorted(required.items()):
            if name in self.by_name or name in self.code.secret_settings:
                continue
            home = definitions_home if name in self.code.definition_settings else code_home
            findings.append(
                Finding(
                    "settings",
                    f"app setting {name} is read by {where} but the infrastructure does not set it: "
                    f"add `{name}: {_camel(name)}` to {home} (and `param {_camel(name)} string` in that file)",
                )
            )
        for name, settings in sorted(self.by_name.items()):
            where = ", ".join(sorted({s.home for s in settings}))
            if len(settings) > 1 and not all(s.conditional for s in settings):
                findings.append(Finding("settings", f"app setting {name} is set more than once ({where}): keep one"))
            if name in self.code.forbidden:
                findings.append(
                    Finding(
                        "settings",
                        f"app setting {name} must not be set in Azure ({self.code.forbidden[name]}): remove it from {where}",
                    )
                )
            elif name not in required and name not in HOST_SETTINGS:
                findings.append(
                    Finding(
                        "settings",
                        f"app setting {name} is set by {where} but nothing reads it (not in retraining/settings.py "
                        f"APP_SETTINGS, {self.code.definitions_file}, the bindings, or HOST_SETTINGS in "
                        f"tests/infra/infra_check.py): remove it, or allow-list it there with the reason it is read",
                    )
                )
        identity = self.app_identity()
        for name, settings in sorted(self.by_name.items()):
            if (
                name.endswith("__clientId")
                and identity
                and any(dotted(s.value) != f"{identity[1]}.properties.clientId" for s in settings)
            ):
                findings.append(
                    Finding(
                        "settings",
                        f"app setting {name} must be the app identity's client id, {identity[1]}.properties.clientId",
                    )
                )
        credential = self.by_name.get("AzureWebJobsStorage__credential", [])
        if not credential or self.infra.literal(credential[0].file, credential[0].value) != "managedidentity":
            findings.append(
                Finding(
                    "settings",
                    "AzureWebJobsStorage__credential must be 'managedidentity' (identity-based host storage)",
                )
            )
        return findings

    # -- secrets ----------------------------------------------------------------------------------------

    def check_secrets(self) -> list[Finding]:
        findings = []
        secret_home = _home(self.settings, self.code.secret_settings, "var secrets in infra/main.bicep")
        vaults = {r.symbol for r in self.infra.of_type("Microsoft.KeyVault/vaults") if not r.existing}
        for name, where in sorted(self.code.secret_settings.items()):
            settings = self.by_name.get(name, [])
            if not settings:
                findings.append(
                    Finding(
                        "secrets",
                        f"secret {name} is named by {where} but no app setting provides it: add "
                        f"`{name}: {_camel(name)}` to {secret_home}, with `@secure() param {_camel(name)} string = ''`",
                    )
                )
                continue
            for setting in settings:
                reference = setting.value if isinstance(setting.value, str) else None
                match = KEY_VAULT_REFERENCE.match(reference or "")
                if not match or (match.group("vault") and match.group("vault") not in vaults):
                    findings.append(
                        Finding(
                            "secrets",
                            f"app setting {name} (secret named by {where}) must be a Key Vault reference "
                            f"@Microsoft.KeyVault(VaultName=${{<vault>.name}};SecretName=...) to a vault in infra/, "
                            f"not {json.dumps(setting.value)[:80]} (var {setting.origin} in infra/{setting.file.name})",
                        )
                    )
                    continue
                if setting.item and f"SecretName=${{toLower(replace({setting.item}.key, '_', '-'))}}" not in (
                    reference or ""
                ):
                    findings.append(
                        Finding(
                            "secrets",
                            f"app setting {name}: the reference's SecretName must be toLower(replace({setting.item}.key, '_', '-')), "
                            "the name the secrets are written under",
                        )
                    )
                findings.extend(self._secret_source(name, setting))
        findings.extend(self._secret_writer())
        return findings

    def _secret_source(self, name: str, setting: Setting) -> list[Finding]:
        """The secret's value comes from a @secure() parameter, and is written to the vault."""
        if setting.item is None:
            return []
        var = setting.file.section("variables").get(setting.origin, {}).get("value", {})
        source = self.infra.objects(setting.file, var.get("loop_type", {}).get("detail", {}).get("object_name"))
        if source is None:
            return [Finding("secrets", f"app setting {name}: cannot find the object of secrets it comes from")]
        file, origin, entries = source
        value = next((v for k, v in entries.items() if k.strip("'") == name), None)
        parameter = file.section("parameters").get(value) if isinstance(value, str) else None
        if parameter is None or not any(d.get("type") == "secure" for d in parameter.get("decorators", [])):
            return [
                Finding(
                    "secrets",
                    f"secret {name} (var {origin} in infra/{file.name}) must come from a @secure() param, not {value!r}",
                )
            ]
        return []

    def _secret_writer(self) -> list[Finding]:
        writers = [
            r
            for r in self.infra.of_type("Microsoft.KeyVault/vaults/secrets")
            if r.loop and r.loop.get("type") == "object"
        ]
        loops = {(r.file.name, r.loop["detail"]["object_name"]) for r in writers if r.loop}
        readers = {
            (s.file.name, s.file.section("variables")[s.origin]["value"]["loop_type"]["detail"]["object_name"])
            for s in self.settings
            if s.item is not None and s.name in self.code.secret_settings
        }
        missing = readers - loops
        return [
            Finding(
                "secrets",
                f"infra/{file} has no Microsoft.KeyVault/vaults/secrets for-expression over {obj}: the secrets "
                "the references point at are never written",
            )
            for file, obj in sorted(missing)
        ]

    # -- containers -------------------------------------------------------------------------------------

    def _storage_symbol(self, setting: str) -> tuple[BicepFile, str] | None:
        settings = self.by_name.get(setting, [])
        path = dotted(settings[0].value) if settings else None
        if not path or not path.endswith(".properties.primaryEndpoints.blob"):
            return None
        return settings[0].file, path.split(".")[0]

    def containers_in(self, account: tuple[BicepFile, str]) -> tuple[dict[str, str], list[Finding]]:
        """Container name -> where it is declared, for one storage account."""
        file, symbol = account
        names: dict[str, str] = {}
        problems = []
        for resource in self.infra.of_type("Microsoft.Storage/storageAccounts/blobServices/containers"):
            if resource.file is not file:
                continue
            parent = dotted(resource.body.get("parent")) or resource.symbol
            if parent.split("__")[0] != symbol:
                continue
            if resource.loop:
                found = self.infra.arrays(file, resource.loop["detail"].get("array_name"))
                if found is None:
                    problems.append(
                        Finding(
                            "containers",
                            f"infra/{file.name} {resource.symbol}: cannot find the list of container names it loops over",
                        )
                    )
                    continue
                source_file, origin, items = found
                for item in items:
                    literal = self.infra.literal(source_file, item)
                    if literal is None:
                        problems.append(
                            Finding(
                                "containers",
                                f"container {item!r} in var {origin} in infra/{source_file.name} has no value "
                                "before deployment: give it a literal or a param with a default",
                            )
                        )
                    else:
                        names[literal] = f"var {origin} in infra/{source_file.name}"
            else:
                literal = self.infra.literal(file, resource.body.get("name"))
                if literal:
                    names[literal] = f"{resource.symbol} in infra/{file.name}"
        return names, problems

    def check_containers(self) -> list[Finding]:
        account = self._storage_symbol("TrainingStorage__blobServiceUri")
        if account is None:
            return [
                Finding(
                    "containers",
                    "TrainingStorage__blobServiceUri must be <storage account>.properties.primaryEndpoints.blob",
                )
            ]
        names, findings = self.containers_in(account)
        for setting in self.code.container_settings:
            unknown = [s for s in self.by_name.get(setting, []) if self.infra.literal(s.file, s.value) is None]
            findings.extend(
                Finding(
                    "containers",
                    f"app setting {setting} (var {s.origin} in infra/{s.file.name}) names a container but has "
                    "no value before deployment: give it a literal or a param with a default",
                )
                for s in unknown
            )
        homes = sorted(set(names.values()), key=lambda home: (not home.startswith("var "), home))  # the list first
        home = homes[0] if homes else f"a containers resource under {account[1]} in infra/{account[0].name}"
        for container, where in sorted(self.code.containers.items()):
            if container not in names:
                findings.append(
                    Finding(
                        "containers",
                        f"container '{container}' ({where}) is not created in the training storage account "
                        f"{account[1]}: add '{container}' to {home}",
                    )
                )
        host = self._storage_symbol("AzureWebJobsStorage__blobServiceUri")
        app = self.infra.function_app()
        deployment = (
            (((app.body.get("properties") or {}).get("functionAppConfig") or {}).get("deployment") or {}).get("storage")
            if app
            else None
        )
        match = re.fullmatch(
            r"\$\{(\w+)\.properties\.primaryEndpoints\.blob\}\$\{(\w+)\}", str((deployment or {}).get("value", ""))
        )
        if host is None or match is None or match.group(1) != host[1]:
            findings.append(
                Finding(
                    "containers",
                    "functionAppConfig.deployment.storage.value must be "
                    "'${<host storage>.properties.primaryEndpoints.blob}${<container name>}'",
                )
            )
        else:
            deployment_container = self.infra.literal(host[0], match.group(2))
            if deployment_container not in self.containers_in(host)[0]:
                findings.append(
                    Finding(
                        "containers",
                        f"the deployment container '{deployment_container}' is not created in the host storage account {host[1]}",
                    )
                )
        return findings

    # -- roles ------------------------------------------------------------------------------------------

    def scopes(self) -> dict[str, tuple[BicepFile, str] | None]:
        """Each role scope of ROLES -> the resource that is it, found from what the settings point at. Roles are
        provisioned: resources only the post-deploy template declares (events.bicep reads the workspace too) are not scopes."""

        def by_type(type_: str) -> tuple[BicepFile, str] | None:
            found = [r for r in self.infra.of_type(type_) if self.infra.provisioned(r.file)]
            return (found[0].file, found[0].symbol) if len(found) == 1 else None

        secrets = [s for s in self.settings if s.name in self.code.secret_settings and isinstance(s.value, str)]
        vault = KEY_VAULT_REFERENCE.match(secrets[0].value) if secrets else None
        insights = self.by_name.get("APPLICATIONINSIGHTS_CONNECTION_STRING", [])
        insights_path = dotted(insights[0].value) if insights else None
        workspace = by_type(WORKSPACE_TYPE)
        return {
            "host storage": self._storage_symbol("AzureWebJobsStorage__blobServiceUri"),
            "training storage": self._storage_symbol("TrainingStorage__blobServiceUri"),
            "key vault": (secrets[0].file, vault.group("vault")) if vault and vault.group("vault") else None,
            "application insights": (insights[0].file, insights_path.split(".")[0]) if insights_path else None,
            "azure ml workspace": workspace,
            "azure ml workspace storage": self._workspace_storage(workspace) if workspace else None,
            "durable task scheduler": by_type("Microsoft.DurableTask/schedulers/taskHubs")
            or by_type("Microsoft.DurableTask/schedulers"),
        }

    def _workspace_storage(self, workspace: tuple[BicepFile, str]) -> tuple[BicepFile, str] | None:
        """The existing storage account named from the workspace's properties.storageAccount. That id is a runtime
        value and a role's scope must be known when the deployment starts, so it reaches the account through a
        module parameter: the account's name uses a parameter the workspace's file passes that property to."""
        file, symbol = workspace
        expected = (file.name, f"{symbol}.properties.storageAccount")
        for account in self.infra.of_type("Microsoft.Storage/storageAccounts"):
            if not account.existing or not self.infra.provisioned(account.file):
                continue
            used = set(_strings(account.body.get("name"))) & set(account.file.section("parameters"))
            if not any(self._from(account.file, name) == expected for name in used):
                continue
            # Hub-based and bring-your-own-storage workspaces keep the account in another resource group: the
            # module deploying the assignment must be scoped from the same id, not left in the workspace's group.
            for caller in self.infra.files.values():
                for module in caller.section("modules").values():
                    if (caller.path.parent / module["detail"]["path"]).resolve() != account.file.path.resolve():
                        continue
                    _, _, body = unwrap(module.get("config"))
                    names = set(_strings(self._expand(caller, body.get("scope")))) & set(caller.section("parameters"))
                    if any(self._from(caller, name) == expected for name in names):
                        return account.file, account.symbol
        return None

    def _from(self, file: BicepFile, name: str) -> tuple[str, str | None]:
        """(file, dotted expression) a parameter's value comes from, through the modules that pass it."""
        source_file, source = self.infra.origin(file, name)
        return source_file.name, dotted(source)

    def _expand(self, file: BicepFile, node: Any, depth: int = 0) -> Any:
        """An expression with the variables it names replaced by their values."""
        if isinstance(node, str) and node in file.section("variables") and depth < 10:
            return self._expand(file, file.section("variables")[node]["value"], depth + 1)
        if isinstance(node, dict):
            return {key: self._expand(file, value, depth) for key, value in node.items()}
        if isinstance(node, list):
            return [self._expand(file, value, depth) for value in node]
        return node

    def app_identity(self) -> tuple[BicepFile, str] | None:
        app = self.infra.function_app()
        identities = (app.body.get("identity") or {}).get("userAssignedIdentities") if app else None
        keys = list(identities or {})
        match = re.fullmatch(r"'?\$\{(\w+)\.id\}'?", keys[0]) if len(keys) == 1 else None
        return (app.file, match.group(1)) if app and match else None

    def assignments(self) -> list[tuple[Resource, set[str], tuple[BicepFile, Any], tuple[BicepFile, Any]]]:
        """(assignment, role GUIDs, scope, principal), each followed to where it is defined."""
        found = []
        for resource in self.infra.of_type(ROLE_ASSIGNMENT_TYPE):
            properties = resource.body.get("properties") or {}
            guids = set(self._guids(resource.file, properties.get("roleDefinitionId")))
            principal = self.infra.origin(resource.file, dotted(properties.get("principalId")))
            found.append((resource, guids, (resource.file, dotted(resource.body.get("scope"))), principal))
        return found

    def _guids(self, file: BicepFile, node: Any) -> Iterator[str]:
        """Role definition GUIDs in an expression, through variables (`roles.x`) as well as literals."""
        chain = dotted(node)
        if chain is not None:
            head, _, rest = chain.partition(".")
            definition = file.section("resources").get(head)
            if rest == "id" and definition and definition.get("type") == ROLE_DEFINITION_TYPE:
                yield f"custom:{head}"
                return
            source_file, source = self.infra.origin(file, head)
            if rest and isinstance(source, dict):
                source = source.get(rest)
            yield from GUID.findall(str(source if isinstance(source, str) else chain))
        elif isinstance(node, dict):
            for value in node.values():
                yield from self._guids(file, value)
        elif isinstance(node, list):
            for value in node:
                yield from self._guids(file, value)

    def check_roles(self) -> list[Finding]:
        findings = []
        identity = self.app_identity()
        if identity is None:
            return [
                Finding(
                    "roles", "the Function App must have exactly one user-assigned identity, '${<identity>.id}': {}"
                )
            ]
        principal = (identity[0].name, f"{identity[1]}.properties.principalId")
        scopes = self.scopes()
        assignments = self.assignments()
        for role in ROLES:
            scope = scopes.get(role.scope)
            if scope is None:
                findings.append(
                    Finding(
                        "roles", f"cannot find the {role.scope} that {role.name} must be assigned on ({role.needed_by})"
                    )
                )
                continue
            ok = [
                a
                for a, guids, (file, at), (pfile, who) in assignments
                if (role.guid in guids or (role.custom and any(g.startswith("custom:") for g in guids)))
                and (file, at) == scope
                and (pfile.name, who) == principal
            ]
            if not ok:
                findings.append(
                    Finding(
                        "roles",
                        f"role {role.name} ({role.guid}) on the {role.scope} ({scope[1]} in infra/{scope[0].name}) "
                        f"is not assigned to the app's identity {identity[1]}; needed by {role.needed_by}: add a "
                        f"{ROLE_ASSIGNMENT_TYPE} with scope {scope[1]}, principalId {principal[1]}, commented with that call",
                    )
                )
        for resource, _, _, (pfile, who) in assignments:
            comment = _comment_above(resource.file.text, f"resource {resource.symbol.split('__')[-1]} ")
            if (pfile.name, who) == principal and not comment:
                findings.append(
                    Finding(
                        "roles",
                        f"role assignment {resource.symbol} in infra/{resource.file.name} has no comment naming the call that needs it",
                    )
                )
        return findings

    # -- Event Grid -------------------------------------------------------------------------------------

    def _function_target(self, subscription: Resource) -> str | None:
        """The function of the app a subscription delivers to: endpointType AzureFunction, resourceId
        '${<Function App>.id}/functions/<name>' (the app's id may come through module parameters)."""
        destination = (subscription.body.get("properties") or {}).get("destination") or {}
        target = (destination.get("properties") or {}).get("resourceId")
        match = re.fullmatch(r"\$\{([\w.]+)\}/functions/(\w+)", target) if isinstance(target, str) else None
        if destination.get("endpointType") != "AzureFunction" or match is None:
            return None
        file, app = self.infra.origin(subscription.file, match.group(1))
        app_path = dotted(app)
        head, _, rest = (app_path or "").partition(".")
        site = file.section("resources").get(head)
        return (
            match.group(2)
            if rest == "id" and site and str(site.get("type", "")).lower() == FUNCTION_APP_TYPE.lower()
            else None
        )

    def _topic(self, subscription: Resource) -> Resource | None:
        parent = dotted(subscription.body.get("parent")) or (
            subscription.symbol.split("__")[0] if "__" in subscription.symbol else None
        )
        return next(
            (t for t in self.infra.of_type(SYSTEM_TOPIC_TYPE) if t.file is subscription.file and t.symbol == parent),
            None,
        )

    def _is_azure_ml(self, subscription: Resource) -> bool:
        """A subscription to Azure ML events: on a workspace's system topic, or (its topic declared elsewhere)
        including only Azure ML event types. The others are storage subscriptions."""
        topic = self._topic(subscription)
        if topic is not None and not topic.existing:
            return (topic.body.get("properties") or {}).get("topicType") == AML_TOPIC
        types = ((subscription.body.get("properties") or {}).get("filter") or {}).get("includedEventTypes")
        return isinstance(types, list) and bool(types) and all(str(t).startswith(AML_EVENT_PREFIX) for t in types)

    def check_event_grid(self) -> list[Finding]:
        """Storage: the training account's system topic, and a BlobCreated subscription for each pipeline's watch."""
        findings = []
        training = self._storage_symbol("TrainingStorage__blobServiceUri")
        topics = [t.body.get("properties") or {} for t in self.infra.of_type(SYSTEM_TOPIC_TYPE) if not t.existing]
        if training is None or not any(
            t.get("topicType") == STORAGE_TOPIC and dotted(t.get("source")) == f"{training[1]}.id" for t in topics
        ):
            findings.append(
                Finding(
                    "event grid",
                    f"no Event Grid system topic (topicType {STORAGE_TOPIC}) on the training storage account",
                )
            )
        every = self.infra.of_type(SUBSCRIPTION_TYPE)
        subscriptions = [s for s in every if not self._is_azure_ml(s)]
        # The functions new data goes to: the Event Grid functions, less those Azure ML subscriptions deliver to.
        aml_functions = {self._function_target(s) for s in every if self._is_azure_ml(s)}
        functions = [f for f in self.code.event_grid_functions if f not in aml_functions] or list(
            self.code.event_grid_functions
        )
        delivered: dict[tuple[str, str, str], str] = {}
        for function in functions:
            for subscription in subscriptions:
                properties = subscription.body.get("properties") or {}
                destination = properties.get("destination") or {}
                target = str((destination.get("properties") or {}).get("resourceId", ""))
                if destination.get("endpointType") != "AzureFunction" or not target.endswith(f"/functions/{function}"):
                    continue
                found, problems = self._subscription_filters(subscription, properties.get("filter") or {})
                findings.extend(problems)
                findings.extend(self._dead_letter(subscription, properties))
                delivered.update({key: f"{subscription.symbol} in infra/{subscription.file.name}" for key in found})
        if not self.code.event_grid_functions:
            findings.append(
                Finding("event grid", "no function has an eventGridTrigger binding, yet pipelines watch for new blobs")
            )
        for watch in self.code.watches:
            prefix, suffix = watch.filters()
            if (watch.container, prefix, suffix) not in delivered:
                near = [k for k in delivered if k[0] == watch.container]
                findings.append(
                    Finding(
                        "event grid",
                        f"no BlobCreated subscription to {', '.join(functions)} for pipeline "
                        f"{watch.pipeline} ({watch.where} '{watch.glob}' in container '{watch.container}'): "
                        f"add {{ pipeline: '{watch.pipeline}', container: '{watch.container}', blobPrefix: '{prefix}', "
                        f"blobSuffix: '{suffix}' }} to var watches in infra/events.bicep"
                        + (f" (found filters {near})" if near else ""),
                    )
                )
        return findings

    def _subscription_filters(
        self, subscription: Resource, filter_: dict[str, Any]
    ) -> tuple[list[tuple[str, str, str]], list[Finding]]:
        """The (container, blob prefix, blob suffix) filters a subscription (or each of a for-expression) has."""
        where = f"{subscription.symbol} in infra/{subscription.file.name}"
        problems = []
        if filter_.get("includedEventTypes") != ["Microsoft.Storage.BlobCreated"]:
            problems.append(
                Finding("event grid", f"{where}: includedEventTypes must be ['Microsoft.Storage.BlobCreated']")
            )
        advanced = filter_.get("advancedFilters") or []
        if not any(
            f.get("operatorType") == "NumberGreaterThan"
            and f.get("key") == "data.contentLength"
            and f.get("value") == 0
            for f in advanced
        ):
            problems.append(
                Finding(
                    "event grid",
                    f"{where}: add the advanced filter NumberGreaterThan data.contentLength 0 "
                    "(an ADLS Gen2 CreateFile raises BlobCreated for an empty file)",
                )
            )
        begins, ends = filter_.get("subjectBeginsWith"), filter_.get("subjectEndsWith")
        if subscription.loop is None:
            match = re.fullmatch(r"/blobServices/default/containers/([^/]+)/blobs/(.*)", str(begins))
            return ([(match.group(1), match.group(2), str(ends or ""))] if match else []), problems
        item = subscription.loop["detail"].get("item_name")
        pattern = f"/blobServices/default/containers/${{{item}.container}}/blobs/${{{item}.blobPrefix}}"
        if begins != pattern or dotted(ends) != f"{item}.blobSuffix":
            problems.append(
                Finding(
                    "event grid",
                    f"{where}: filter must be subjectBeginsWith '{pattern}', subjectEndsWith {item}.blobSuffix",
                )
            )
            return [], problems
        found = self.infra.arrays(subscription.file, subscription.loop["detail"].get("array_name"))
        if found is None:
            return [], [*problems, Finding("event grid", f"{where}: cannot find the list it loops over")]
        file, _, entries = found
        return [
            (
                str(self.infra.literal(file, e.get("container"))),
                str(self.infra.literal(file, e.get("blobPrefix")) or ""),
                str(self.infra.literal(file, e.get("blobSuffix")) or ""),
            )
            for e in entries
            if isinstance(e, dict)
        ], problems

    # -- Azure ML ---------------------------------------------------------------------------------------

    def check_azure_ml(self) -> list[Finding]:
        """With an Azure ML pipeline: the workspace's system topic, a subscription that delivers the job events the
        code acts on to an Event Grid function of the app, and the client id its credential signs in with."""
        pipelines = self.code.aml_pipelines
        if not pipelines:
            return []
        who = ", ".join(f"{p.name} ({p.where})" for p in pipelines)
        findings = self._aml_client_ids()
        topics = [
            t
            for t in self.infra.of_type(SYSTEM_TOPIC_TYPE)
            if not t.existing and (t.body.get("properties") or {}).get("topicType") == AML_TOPIC
        ]
        for topic in topics:
            findings.extend(self._aml_topic(topic))
        if not topics:
            findings.append(
                Finding(
                    "azure ml",
                    f"no Event Grid system topic (topicType {AML_TOPIC}) on the Azure ML workspace of pipeline {who}: "
                    f"add one, source <workspace>.id, in infra/aml-events.bicep",
                )
            )
        subscriptions = [s for s in self.infra.of_type(SUBSCRIPTION_TYPE) if self._is_azure_ml(s)]
        for subscription in subscriptions:
            findings.extend(self._aml_subscription(subscription, topics))
        if not subscriptions:
            functions = ", ".join(self.code.event_grid_functions) or "none has an eventGridTrigger binding"
            findings.append(
                Finding(
                    "azure ml",
                    f"no Event Grid subscription delivering {RUN_STATUS_CHANGED} and {RUN_COMPLETED} from the "
                    f"workspace's system topic to an Event Grid function of the app ({functions}), for pipeline {who}: "
                    "add one to infra/aml-events.bicep, deployed by infra/events.bicep",
                )
            )
        return findings

    def _aml_client_ids(self) -> list[Finding]:
        """retraining/services/azure_ml/workspace.py credential_of: without a secret, the managed identity with the
        credential's client id signs in; the app has one user-assigned identity, so that must be the default."""
        identity = self.app_identity()
        if identity is None:
            return []  # check_roles says so
        expected = f"{identity[1]}.properties.clientId"
        findings = []
        for pipeline in self.code.aml_pipelines:
            if pipeline.client_id_setting is None:
                findings.append(
                    Finding(
                        "azure ml",
                        f"pipeline {pipeline.name}: {pipeline.client_id_where} must be a %SETTING% the infrastructure "
                        f"sets to the app identity's client id ({expected})",
                    )
                )
                continue
            for setting in self.by_name.get(pipeline.client_id_setting, []):
                if not _defaults_to(setting.value, expected):
                    findings.append(
                        Finding(
                            "azure ml",
                            f"app setting {setting.name} ({pipeline.client_id_where}) must default to the app identity's "
                            f"client id, {expected}: without a secret the pipeline signs in as the user-assigned "
                            f"identity with that client id (retraining/services/azure_ml/workspace.py credential_of); "
                            f"{setting.home}",
                        )
                    )
        return findings

    def _aml_topic(self, topic: Resource) -> list[Finding]:
        where = f"system topic {topic.symbol} in infra/{topic.file.name}"
        findings = []
        source = dotted((topic.body.get("properties") or {}).get("source")) or ""
        head, _, rest = source.partition(".")
        workspace = topic.file.section("resources").get(head)
        if rest != "id" or not workspace or str(workspace.get("type", "")).lower() != WORKSPACE_TYPE.lower():
            findings.append(Finding("azure ml", f"{where}: source must be <workspace>.id, a {WORKSPACE_TYPE} resource"))
        file, location = self.infra.origin(topic.file, topic.body.get("location"))
        declared = {dotted(branch) for branch in _branches(location)}
        workspaces = {
            f"{symbol}.location"
            for symbol, resource in file.section("resources").items()
            if str(resource.get("type", "")).lower() == WORKSPACE_TYPE.lower()
        }
        if not declared & workspaces:
            findings.append(
                Finding(
                    "azure ml",
                    f"{where}: location must be the workspace's (<workspace>.location, passed in as a module "
                    "parameter): a system topic lives in its source's region",
                )
            )
        return findings

    def _aml_subscription(self, subscription: Resource, topics: list[Resource]) -> list[Finding]:
        where = f"Azure ML subscription {subscription.symbol} in infra/{subscription.file.name}"
        properties = subscription.body.get("properties") or {}
        destination = (properties.get("destination") or {}).get("properties") or {}
        filter_ = properties.get("filter") or {}
        problems = []
        if self._topic(subscription) not in topics:
            problems.append(f"must be on the workspace's system topic (topicType {AML_TOPIC}), its parent")
        roots = self.infra.roots(subscription.file)
        if roots != {POST_DEPLOY}:
            problems.append(
                f"must be deployed by infra/{POST_DEPLOY} alone, after the code (deployed from {', '.join(sorted(roots))})"
            )
        function = self._function_target(subscription)
        if function not in self.code.event_grid_functions:
            problems.append(
                f"must deliver to an Event Grid function of the app ({', '.join(self.code.event_grid_functions)}): endpointType "
                "'AzureFunction', resourceId '${<Function App>.id}/functions/<function>'"
            )
        types = filter_.get("includedEventTypes")
        missing = [t for t in (RUN_STATUS_CHANGED, RUN_COMPLETED) if not isinstance(types, list) or t not in types]
        if missing:
            problems.append(
                f"includedEventTypes lacks {', '.join(missing)} (retraining/services/azure_ml/events.py acts on both)"
            )
        if properties.get("eventDeliverySchema") != "EventGridSchema":
            problems.append("eventDeliverySchema must be 'EventGridSchema' (the trigger takes a func.EventGridEvent)")
        if destination.get("maxEventsPerBatch") != 1:
            problems.append("maxEventsPerBatch must be 1 (the trigger takes one event)")
        if not properties.get("retryPolicy"):
            problems.append("set a retryPolicy")
        for event_type, data in _aml_job_ends():
            outcome = _filter_passes(filter_, event_type, data)
            if outcome is None:
                problems.append(
                    f"cannot evaluate its filter (a subject filter, an advanced filter on a key other than eventType and "
                    f"data.{', data.'.join(AML_EVENT_DATA)}, or an operator other than StringIn, StringNotIn, IsNotNull and "
                    f"IsNullOrUndefined), so cannot tell it lets every job end through: {json.dumps(filter_)[:200]}"
                )
                break
            if outcome is False and isinstance(types, list) and event_type in types:
                problems.append(
                    f"its filter drops {event_type} {json.dumps(data)}, a job's end the code acts on (a key an event lacks "
                    "fails StringIn and passes StringNotIn)"
                )
        return [Finding("azure ml", f"{where}: {problem}") for problem in problems]

    # -- no keys ----------------------------------------------------------------------------------------

    def check_no_keys(self) -> list[Finding]:
        findings = []
        for path in sorted(
            p
            for p in self.infra.root.rglob("*")
            if p.is_file() and p.suffix in (".bicep", ".json", ".sh", ".ps1", ".yaml")
        ):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("//", 1)[0] if path.suffix == ".bicep" else line
                for pattern in KEY_PATTERNS:
                    if pattern.search(code):
                        findings.append(
                            Finding(
                                "no keys",
                                f"{path.relative_to(self.infra.root.parent)}:{number} handles a key or keyed "
                                f"connection string ({pattern.pattern}): use the managed identity",
                            )
                        )
        for account in self.infra.of_type("Microsoft.Storage/storageAccounts"):
            if not account.existing and (account.body.get("properties") or {}).get("allowSharedKeyAccess") is not False:
                findings.append(
                    Finding(
                        "no keys",
                        f"storage account {account.symbol} in infra/{account.file.name} must set allowSharedKeyAccess: false",
                    )
                )
        for component in self.infra.of_type("Microsoft.Insights/components"):
            if (component.body.get("properties") or {}).get("DisableLocalAuth") is not True:
                findings.append(
                    Finding(
                        "no keys", f"{component.symbol} in infra/{component.file.name} must set DisableLocalAuth: true"
                    )
                )
        for vault in self.infra.of_type("Microsoft.KeyVault/vaults"):
            if not vault.existing and (vault.body.get("properties") or {}).get("enableRbacAuthorization") is not True:
                findings.append(
                    Finding(
                        "no keys", f"{vault.symbol} in infra/{vault.file.name} must set enableRbacAuthorization: true"
                    )
                )
        return findings

    # -- Durable Task Scheduler -------------------------------------------------------------------------

    def check_durable_task_scheduler(self) -> list[Finding]:
        findings = []
        host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
        provider = (host.get("extensions", {}).get("durableTask", {}).get("storageProvider") or {}).get(
            "type", "AzureStorage"
        )
        if provider != "AzureStorage":
            findings.append(
                Finding(
                    "durable task scheduler",
                    f"host.json storageProvider.type is {provider!r}: the default must stay Azure Storage",
                )
            )
        prefix = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__"
        kind = self.by_name.get(prefix + "type", [])
        name = self.by_name.get(prefix + "connectionStringName", [])
        if (
            not kind
            or self.infra.literal(kind[0].file, kind[0].value) != "azureManaged"
            or not all(s.conditional for s in kind)
        ):
            return [
                *findings,
                Finding(
                    "durable task scheduler", f"set {prefix}type to 'azureManaged' only when the scheduler switch is on"
                ),
            ]
        connection = self.infra.literal(name[0].file, name[0].value) if name else None
        value = self.by_name.get(connection or "", [])
        text = value[0].value if value and isinstance(value[0].value, str) else ""
        identity = self.app_identity()
        if (
            not connection
            or "Authentication=ManagedIdentity" not in text
            or not identity
            or f"ClientID=${{{identity[1]}.properties.clientId}}" not in text
        ):
            findings.append(
                Finding(
                    "durable task scheduler",
                    f"{prefix}connectionStringName must name a setting "
                    "'Endpoint=...;Authentication=ManagedIdentity;ClientID=${<app identity>.properties.clientId}'",
                )
            )
        hubs = self.infra.of_type("Microsoft.DurableTask/schedulers/taskHubs")
        hub_name = self.infra.origin(hubs[0].file, hubs[0].body.get("name")) if hubs else None
        setting = self.by_name.get("TASK_HUB_NAME", [])
        setting_name = self.infra.origin(setting[0].file, setting[0].value) if setting else None
        if (
            not hubs
            or hub_name is None
            or setting_name is None
            or (hub_name[0].name, hub_name[1]) != (setting_name[0].name, setting_name[1])
        ):
            findings.append(
                Finding(
                    "durable task scheduler",
                    "the scheduler's task hub must be named by the same value as TASK_HUB_NAME",
                )
            )
        return findings

    # -- the Bicep's own consistency ------------------------------------------------------------------------

    def check_bicep(self) -> list[Finding]:
        """Names, module parameters and outputs, parameter types, targetScope (bicep_structure), API versions
        that are real dates, and resource types, API versions, property names, value types and enums against the
        table of Azure's types made from the REST specs (typecheck, typetable/types.json)."""
        from .bicep_structure import check as structure
        from .typecheck import check as typecheck

        findings = [Finding("bicep", problem) for problem in structure(self.infra)]
        findings.extend(Finding("bicep types", problem) for problem in typecheck(self.infra))
        for file in self.infra.files.values():
            for symbol, resource in file.section("resources").items():
                version = str(resource.get("api_version", ""))
                match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(-preview|-beta|-alpha|-privatepreview)?", version)
                try:
                    when = datetime.date(*map(int, match.groups()[:3])) if match else None
                except ValueError:
                    when = None
                if when is None or when > datetime.date.today():
                    number = next((n for n, line in enumerate(file.text.splitlines(), 1) if f"@{version}'" in line), 0)
                    findings.append(
                        Finding(
                            "bicep",
                            f"infra/{file.name}:{number}: resource {symbol} has API version {version!r}, which is not "
                            "a published date",
                        )
                    )
        return findings

    # -- dead-lettering ----------------------------------------------------------------------------------

    def _dead_letter(self, subscription: Resource, properties: dict[str, Any]) -> list[Finding]:
        """A blob event that cannot be delivered within its time to live is written to a container of the training
        account by the system topic's own identity (shared keys are off), which holds a role there."""
        where = f"subscription {subscription.symbol} in infra/{subscription.file.name}"
        dead = properties.get("deadLetterWithResourceIdentity") or {}
        destination = dead.get("deadLetterDestination") or {}
        target = destination.get("properties") or {}
        if (
            (dead.get("identity") or {}).get("type") != "SystemAssigned"
            or destination.get("endpointType") != "StorageBlob"
            or not target.get("resourceId")
            or not target.get("blobContainerName")
        ):
            return [
                Finding(
                    "event grid",
                    f"{where} has no dead-letter destination: events are dropped after their time to live; add "
                    "deadLetterWithResourceIdentity { identity: { type: 'SystemAssigned' }, deadLetterDestination: "
                    "{ endpointType: 'StorageBlob', properties: { resourceId, blobContainerName } } }",
                )
            ]
        topics = [
            t
            for t in self.infra.of_type(SYSTEM_TOPIC_TYPE)
            if not t.existing and (t.body.get("properties") or {}).get("topicType") == STORAGE_TOPIC
        ]
        findings = []
        for topic in topics:
            if (topic.body.get("identity") or {}).get("type") != "SystemAssigned":
                findings.append(
                    Finding(
                        "event grid",
                        f"system topic {topic.symbol} in infra/{topic.file.name} needs identity SystemAssigned to "
                        "write dead-lettered events",
                    )
                )
            writer = f"{topic.symbol}.identity.principalId"
            if not any(
                "ba92f5b4-2d11-453d-a403-e96b0029c9fe" in guids and who == writer and pfile is topic.file
                for _, guids, _, (pfile, who) in self.assignments()
            ):
                findings.append(
                    Finding(
                        "event grid",
                        f"system topic {topic.symbol}'s identity has no Storage Blob Data Contributor on the "
                        "dead-letter container: add a role assignment with principalId "
                        f"{writer} in infra/{topic.file.name}",
                    )
                )
        return findings

    # -- what the host needs for what the Bicep turns on ---------------------------------------------------

    def _value(self, name: str) -> tuple[Setting | None, str | None]:
        found = self.by_name.get(name, [])
        if not found:
            return None, None
        value = found[0].value
        return found[0], dotted(value) if not isinstance(value, str) or "${" not in value else value

    def check_host(self) -> list[Finding]:
        """The settings and site properties the Functions host needs for what the Bicep turns on: identity-based
        AzureWebJobsStorage, Key Vault references resolved with the app's identity, App Insights with Entra auth,
        the deployment package read with the identity, the status page's address from the site itself."""
        findings: list[Finding] = []
        app = self.infra.function_app()
        identity = self.app_identity()
        if app is None or identity is None:
            return [Finding("host", "no Function App with one user-assigned identity to check the host settings of")]
        ident = identity[1]
        properties = app.body.get("properties") or {}
        where = f"{app.symbol} in infra/{app.file.name}"

        def need(name: str, why: str, expected: str | None = None, pattern: str | None = None) -> None:
            setting, value = self._value(name)
            if setting is None:
                findings.append(
                    Finding("host", f"app setting {name} is required ({why}) but not set: add it to {where}")
                )
            elif setting.conditional:
                findings.append(Finding("host", f"app setting {name} is required ({why}) but only set conditionally"))
            elif expected is not None and value != expected:
                findings.append(Finding("host", f"app setting {name} must be {expected} ({why}), not {value}"))
            elif pattern is not None and not re.fullmatch(pattern, str(value)):
                findings.append(Finding("host", f"app setting {name} must match {pattern} ({why}), not {value}"))

        host = self._storage_symbol("AzureWebJobsStorage__blobServiceUri")
        account = host[1] if host else "<host storage>"
        for service, why in (
            ("blob", "host keys, timers and Durable's blobs with the identity"),
            ("queue", "Durable Functions, Azure Storage provider: control and work-item queues"),
            ("table", "Durable Functions, Azure Storage provider: History and Instances tables"),
        ):
            need(
                f"AzureWebJobsStorage__{service}ServiceUri",
                why,
                f"{account}.properties.primaryEndpoints.{service}",
            )
        need("AzureWebJobsStorage__credential", "AzureWebJobsStorage with a managed identity", "managedidentity")
        need("AzureWebJobsStorage__clientId", "which identity AzureWebJobsStorage uses", f"{ident}.properties.clientId")

        references = any(isinstance(s.value, str) and KEY_VAULT_REFERENCE.match(s.value) for s in self.settings)
        if references and dotted(properties.get("keyVaultReferenceIdentity")) != f"{ident}.id":
            findings.append(
                Finding(
                    "host",
                    f"{where}: properties.keyVaultReferenceIdentity must be {ident}.id: Key Vault references "
                    "resolve with the system identity otherwise, which this app does not have",
                )
            )
        if any(
            (c.body.get("properties") or {}).get("DisableLocalAuth") is True
            for c in self.infra.of_type("Microsoft.Insights/components")
        ):
            need("APPLICATIONINSIGHTS_CONNECTION_STRING", "where the host sends telemetry")
            need(
                "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
                "App Insights local auth is off: telemetry needs Entra auth",
                f"ClientId=${{{ident}.properties.clientId}};Authorization=AAD",
            )

        config = properties.get("functionAppConfig") or {}
        storage = ((config.get("deployment") or {}).get("storage")) or {}
        authentication = storage.get("authentication") or {}
        if (
            authentication.get("type") != "UserAssignedIdentity"
            or dotted(authentication.get("userAssignedIdentityResourceId")) != f"{ident}.id"
        ):
            findings.append(
                Finding(
                    "host",
                    f"{where}: functionAppConfig.deployment.storage.authentication must be {{ type: "
                    f"'UserAssignedIdentity', userAssignedIdentityResourceId: {ident}.id }} (shared keys are off)",
                )
            )
        if config:
            runtime = config.get("runtime") or {}
            if runtime.get("name") != "python" or str(runtime.get("version")) not in ("3.10", "3.11", "3.12"):
                findings.append(
                    Finding("host", f"{where}: functionAppConfig.runtime must be python 3.10, 3.11 or 3.12: {runtime}")
                )
            plan = dotted(properties.get("serverFarmId"))
            plans = [p for p in self.infra.of_type("Microsoft.Web/serverfarms") if f"{p.symbol}.id" == plan]
            sku = (plans[0].body.get("sku") or {}) if plans else {}
            if sku.get("name") != "FC1" or sku.get("tier") != "FlexConsumption":
                findings.append(
                    Finding(
                        "host",
                        f"{where}: functionAppConfig is Flex Consumption's: its plan ({plan}) must have sku "
                        f"{{ name: 'FC1', tier: 'FlexConsumption' }}, not {sku}",
                    )
                )

        for scheduler in self.infra.of_type("Microsoft.DurableTask/schedulers"):
            allow = (scheduler.body.get("properties") or {}).get("ipAllowlist")
            if not isinstance(allow, list) or not allow:
                findings.append(
                    Finding(
                        "host",
                        f"scheduler {scheduler.symbol} in infra/{scheduler.file.name}: ipAllowlist is required and an "
                        "empty list denies everyone (the app included)",
                    )
                )

        page, page_value = self._value("RETRAIN_PAGE_URL")
        if page is not None and page_value != f"https://${{{app.symbol}.properties.defaultHostName}}/api/status":
            findings.append(
                Finding(
                    "host",
                    f"RETRAIN_PAGE_URL must be 'https://${{{app.symbol}.properties.defaultHostName}}/api/status' (the "
                    f"site's own host name: other clouds and unique default host names differ), not {page_value}",
                )
            )
        for file in self.infra.files.values():
            for number, line in enumerate(file.text.splitlines(), 1):
                if "azurewebsites.net" in _code(line):
                    findings.append(
                        Finding(
                            "host",
                            f"infra/{file.name}:{number} names azurewebsites.net: use the site's defaultHostName",
                        )
                    )

        findings.extend(self._task_hub_names())
        return findings

    def _task_hub_names(self) -> list[Finding]:
        findings = []
        hub = self.by_name.get("TASK_HUB_NAME", [])
        values = []
        if hub:
            source_file, source = self.infra.origin(hub[0].file, hub[0].value)
            values.append((self.infra.literal(hub[0].file, hub[0].value), f"the default of {source}"))
            mapped = _parameters_file(self.infra.root).get(str(source))
            if mapped is not None:
                match = re.fullmatch(r"\$\{[A-Z0-9_]+(?:=([^}]*))?\}", mapped)
                values.append((match.group(1) if match else mapped, f"main.parameters.json {source}"))
        for value, where in values:
            if value is not None and not TASK_HUB_NAME.fullmatch(value):
                findings.append(
                    Finding(
                        "host",
                        f"TASK_HUB_NAME {value!r} ({where}) must be a letter then letters and digits, 3 to 45 characters",
                    )
                )
        host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
        version = str((host.get("extensionBundle") or {}).get("version", ""))
        floor = re.match(r"\[(\d+)\.(\d+|\*)(?:\.(\d+|\*))?", version)
        parts = tuple(int(p) if p and p.isdigit() else 0 for p in floor.groups()) if floor else (0, 0, 0)
        if parts < EXTENSION_BUNDLE_FLOOR:
            findings.append(
                Finding(
                    "host",
                    f"host.json extensionBundle.version {version!r} must start at "
                    f"{'.'.join(map(str, EXTENSION_BUNDLE_FLOOR))} (the Durable Task Scheduler's minimum), e.g. "
                    "'[4.32.0, 5.0.0)'",
                )
            )
        return findings

    # -- Key Vault soft delete ---------------------------------------------------------------------------

    def check_key_vault(self) -> list[Finding]:
        """`azd down` without --purge leaves the vault soft-deleted under its name; `azd up` must have a way back
        in: createMode from a parameter that allows 'recover', mapped in main.parameters.json."""
        findings = []
        mapped = _parameters_file(self.infra.root)
        for vault in self.infra.of_type("Microsoft.KeyVault/vaults"):
            if vault.existing:
                continue
            node = (vault.body.get("properties") or {}).get("createMode")
            source_file, source = self.infra.origin(vault.file, node)
            parameter = source_file.section("parameters").get(source) if isinstance(source, str) else None
            allowed = [
                value
                for decorator in (parameter or {}).get("decorators", [])
                if decorator.get("type") == "allowed"
                for value in decorator.get("argument", [])
            ]
            if parameter is None or "recover" not in allowed or source not in mapped:
                findings.append(
                    Finding(
                        "key vault",
                        f"{vault.symbol} in infra/{vault.file.name}: properties.createMode must come from a parameter "
                        "allowing 'default' and 'recover', set from main.parameters.json, so `azd up` after `azd down` "
                        "without --purge can take back the soft-deleted vault of the same name",
                    )
                )
        return findings

    # -- Azure ML least privilege ------------------------------------------------------------------------

    def check_aml_role(self) -> list[Finding]:
        """The app's role on the workspace holds exactly the actions its calls need (AML_ACTIONS), each commented
        in place, and none that hands out a secret; the built-in role is only an opt-in."""
        workspaces = [w for w in self.infra.of_type(WORKSPACE_TYPE) if self.infra.provisioned(w.file)]
        if not workspaces or not self.code.aml_pipelines:
            return []
        file = workspaces[0].file
        definitions = [r for r in self.infra.of_type(ROLE_DEFINITION_TYPE) if r.file is file]
        if len(definitions) != 1:
            return [
                Finding(
                    "azure ml",
                    f"infra/{file.name} must define one least-privilege custom role ({ROLE_DEFINITION_TYPE}) for the "
                    "app on the workspace: AzureML Data Scientist includes datastores/listsecrets/action",
                )
            ]
        role = definitions[0]
        findings = []
        permissions = (role.body.get("properties") or {}).get("permissions") or [{}]
        for field_name, expected in (("actions", AML_ACTIONS), ("dataActions", AML_DATA_ACTIONS)):
            held = [a for p in permissions for a in (p.get(field_name) or []) if isinstance(a, str)]
            for action in held:
                refused = [
                    r for r in AML_REFUSED if r in action and not action.endswith("onlineEndpoints/listKeys/action")
                ]
                if refused or action not in expected:
                    findings.append(
                        Finding(
                            "azure ml",
                            f"role {role.symbol} in infra/{file.name}: {field_name} {action} is not needed by any call "
                            f"the app makes{' and hands out more than the app needs' if refused else ''}",
                        )
                    )
                elif not _commented(file.text, action):
                    findings.append(
                        Finding(
                            "azure ml",
                            f"role {role.symbol} in infra/{file.name}: {action} has no comment naming the call that "
                            f"needs it ({expected[action]})",
                        )
                    )
            for action, call in expected.items():
                if action not in held:
                    findings.append(
                        Finding(
                            "azure ml",
                            f"role {role.symbol} in infra/{file.name}: {field_name} lacks {action}, needed by {call}",
                        )
                    )
        uses = [
            a
            for a, guids, _, _ in self.assignments()
            if a.file is file
            and f"custom:{role.symbol}" in guids
            and any(
                dotted(b) == f"{role.symbol}.id"
                for b in _branches((a.body.get("properties") or {}).get("roleDefinitionId"))
            )
        ]
        if not uses:
            findings.append(
                Finding("azure ml", f"no role assignment in infra/{file.name} assigns the custom role {role.symbol}")
            )
        return findings


def _parameters_file_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else "{}"


def _parameters_file(root: Path) -> dict[str, str]:
    """main.bicep parameter -> the value main.parameters.json gives it (`${ENV=default}`)."""
    parameters = json.loads(_parameters_file_text(root / "main.parameters.json")).get("parameters", {})
    return {name: str(entry.get("value")) for name, entry in parameters.items() if isinstance(entry, dict)}


def _code(line: str) -> str:
    """A Bicep line without its // comment (a // inside a string, as in https://, is not one)."""
    quoted = False
    for index, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif not quoted and line.startswith("//", index):
            return line[:index]
    return line


def _commented(text: str, action: str) -> bool:
    """An action string in a list has a // comment above it, directly or above the actions grouped with it."""
    lines = text.splitlines()
    index = next((i for i, line in enumerate(lines) if line.strip() == f"'{action}'"), None)
    while index is not None and index > 0:
        index -= 1
        above = lines[index].strip()
        if above.startswith("//"):
            return True
        if not (above.startswith("'") and above.endswith("'")):
            return False
    return False


def _strings(node: Any) -> Iterator[str]:
    """Every string in a parsed expression."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _branches(node: Any) -> list[Any]:
    """A value, or the two values of a conditional (`cond ? a : b`)."""
    operator = node.get("operator", {}) if isinstance(node, dict) else {}
    if operator.get("type") == "conditional":
        return [operator["operands"].get("true_value"), operator["operands"].get("false_value")]
    return [node]


def _defaults_to(node: Any, expected: str) -> bool:
    """The value is `expected`, or a conditional one of whose branches is (an override, defaulting to it)."""
    return any(dotted(branch) == expected for branch in _branches(node))


def _aml_job_ends() -> list[tuple[str, dict[str, str]]]:
    """The events retraining/services/azure_ml/events.py treats as a job's end, as Azure ML sends them:
    RunStatusChanged with each terminal runStatus (capitalised, as the service writes it), and RunCompleted,
    whose data has no runStatus."""
    return [*((RUN_STATUS_CHANGED, {"runStatus": status.capitalize()}) for status in TERMINAL), (RUN_COMPLETED, {})]


def _filter_passes(filter_: dict[str, Any], event_type: str, data: dict[str, str]) -> bool | None:
    """Whether Event Grid delivers an event through a subscription's filter; None when it cannot be evaluated here.
    Advanced filters are ANDed, their values ORed, strings compared without case; a missing key fails every
    operator but StringNotIn, NumberNotIn and IsNullOrUndefined (learn.microsoft.com/azure/event-grid/event-filtering)."""
    if filter_.get("subjectBeginsWith") or filter_.get("subjectEndsWith"):
        return None
    types = filter_.get("includedEventTypes")
    if isinstance(types, list) and types and event_type not in types:
        return False
    for advanced in filter_.get("advancedFilters") or []:
        key, operator = advanced.get("key"), advanced.get("operatorType")
        if key == "eventType":
            value: str | None = event_type
        elif isinstance(key, str) and key.startswith("data.") and key.removeprefix("data.") in AML_EVENT_DATA:
            value = data.get(key.removeprefix("data."))
        else:
            return None  # a key the sample events do not model
        listed = advanced.get("values") or []
        if not isinstance(listed, list):
            return None  # a variable: not followed here
        values = [str(v).lower() for v in listed]
        if operator == "StringIn":
            passes = value is not None and value.lower() in values
        elif operator == "StringNotIn":
            passes = value is None or value.lower() not in values
        elif operator == "IsNotNull":
            passes = value is not None
        elif operator == "IsNullOrUndefined":
            passes = value is None
        else:
            return None
        if not passes:
            return False
    return True


def _comment_above(text: str, declaration: str) -> str:
    """The // comment lines directly above a declaration."""
    lines = text.splitlines()
    index = next((i for i, line in enumerate(lines) if line.startswith(declaration)), None)
    comments: list[str] = []
    while index is not None and index > 0 and lines[index - 1].lstrip().startswith("//"):
        index -= 1
        comments.insert(0, lines[index].lstrip("/ "))
    return " ".join(comments)


def check(root: Path = INFRA, **derive: Any) -> list[Finding]:
    return Check(root, **derive).run()


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    findings = check(Path(argv[0]) if argv else INFRA)
    for finding in findings:
        print(finding)
    print(f"infra check: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
