"""Definitions of Azure Machine Learning (v2) services: command-job training, online and batch endpoint targets.

A pipeline that uses them names its workspace once, at the pipeline level:

    "workspace": {"resourceId": "%AML_WORKSPACE_ID%",
                  "managementEndpoint": "%AZURE_RESOURCE_MANAGER_ENDPOINT%",      (default: public Azure)
                  "credential": {"tenant", "clientId", "clientSecretSetting", "authorityHost"}}

The credential follows azure-identity's convention for AZURE_CLIENT_ID: when the setting named by
`clientSecretSetting` holds a secret, a service principal (`clientId`, `tenant`) signs in with it;
otherwise the app's managed identity does, user-assigned when `clientId` is given.

    "training": {"kind": "aml-command", "command", "environment", "compute", "experiment",
                 "parameters" (literal inputs), "dataInput", "modelOutput", "metricsOutput",
                 "outputDatastore", "modelName", "code", "instanceCount"}
    targets:    {"kind": "aml-online", "endpoint", "deployment": {...}, "rollout": {...}, "health": {...}}
                {"kind": "aml-batch", "endpoint", "deployment": {"compute", "instanceCount", ...}, "keepDeployments"}

Environments, computes and code may be written `name:version` / `name` (in the workspace) or as
full ARM ids (or `azureml://registries/...` for an environment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from .base import Target, TrainingConfig
from .reader import Reader

AML_TRAINING = "aml-command"
PUBLIC_ARM = "https://management.azure.com"
WORKSPACE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/workspaces/"
    r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$",
    re.IGNORECASE,
)
ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,254}$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
IO_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,254}$")
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")


@dataclass(frozen=True)
class AmlCredential:
    tenant: str | None = None
    client_id: str | None = None  # the service principal's app id, or the user-assigned identity's client id
    client_secret_setting: str | None = None
    authority_host: str | None = None


@dataclass(frozen=True)
class Workspace:
    resource_id: str
    management_endpoint: str = PUBLIC_ARM
    credential: AmlCredential = field(default_factory=AmlCredential)

    def asset_id(self, collection: str, name: str, version: str | None = None) -> str:
        return f"{self.resource_id}/{collection}/{name}" + (f"/versions/{version}" if version is not None else "")


@dataclass(frozen=True, kw_only=True)
class AmlCommandTraining(TrainingConfig):
    kind: str = AML_TRAINING
    announces_completion: ClassVar[bool] = (
        True  # the workspace's Event Grid subscription delivers RunStatusChanged to the app
    )
    workspace: Workspace
    command: str
    environment_id: str
    compute_id: str | None
    experiment: str
    model_name: str
    parameters: Mapping[str, str] = field(default_factory=dict)  # literal job inputs
    data_input: str = "training_data"
    model_output: str = "model"
    metrics_output: str | None = "metrics"
    output_datastore: str = "workspaceblobstore"
    code_id: str | None = None
    instance_count: int = 1

    @property
    def label_hint(self) -> str | None:
        return next(
            (v for k, v in self.parameters.items() if k.lower().replace("_", "") in ("labelcolumn", "label")), None
        )


@dataclass(frozen=True)
class HealthCheck:
    """Probe requests against a deployment: at most `max_error_rate` may fail, the 95th percentile under `max_latency_ms`."""

    probes: int = 20
    max_error_rate: float = 0.05
    max_latency_ms: float = 2000.0
    sample_rows: int = 5


@dataclass(frozen=True)
class DeploymentSpec:
    instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    environment_id: str | None = None
    code_id: str | None = None
    scoring_script: str | None = None
    compute_id: str | None = None  # batch


@dataclass(frozen=True, kw_only=True)
class AmlEndpointTarget(Target):
    """What an online and a batch endpoint target share: where the endpoint is, the model, how new deployments look."""

    workspace: Workspace
    endpoint: str
    model_name: str
    deployment: DeploymentSpec = field(default_factory=DeploymentSpec)
    keep_deployments: int = 1  # earlier deployments kept (online: at 0%) after a rollout, for rollback


@dataclass(frozen=True, kw_only=True)
class AmlOnlineTarget(AmlEndpointTarget):
    checks_health: ClassVar[bool] = True
    mirror_percent: int = 0
    mirror_bake: timedelta = timedelta(0)
    traffic_steps: tuple[int, ...] = (10, 50, 100)
    bake: timedelta = timedelta(minutes=5)
    health: HealthCheck = field(default_factory=HealthCheck)


@dataclass(frozen=True, kw_only=True)
class AmlBatchTarget(AmlEndpointTarget):
    """A batch endpoint: a new deployment becomes its default once it is created."""


TRAINING_FIELDS = {
    "command",
    "environment",
    "compute",
    "experiment",
    "parameters",
    "dataInput",
    "modelOutput",
    "metricsOutput",
    "outputDatastore",
    "modelName",
    "code",
    "instanceCount",
}
ONLINE_FIELDS = {"endpoint", "deployment", "rollout", "health"}
BATCH_FIELDS = {"endpoint", "deployment", "keepDeployments"}
PIPELINE_SECTIONS = {"workspace"}


def workspace(reader: Reader, pipeline: dict[str, Any], path: str) -> Workspace:
    """The pipeline's `workspace` section (required by every Azure ML kind)."""
    where = f"{path}.workspace"
    raw = reader.obj(pipeline.get("workspace"), where, {"resourceId", "managementEndpoint", "credential"})
    given = reader.text(raw.get("resourceId"), f"{where}.resourceId")
    resource_id = given.rstrip("/")
    if not WORKSPACE_ID.match(resource_id):
        raise reader.error(
            f"{where}.resourceId",
            f"{reader.show(given)} is not an Azure ML workspace resource id "
            "(/subscriptions/…/resourceGroups/…/providers/Microsoft.MachineLearningServices/workspaces/…)",
        )
    endpoint = (
        reader.url(raw["managementEndpoint"], f"{where}.managementEndpoint")
        if "managementEndpoint" in raw
        else PUBLIC_ARM
    )
    cred = reader.obj(
        raw.get("credential"),
        f"{where}.credential",
        {"tenant", "clientId", "clientSecretSetting", "authorityHost"},
        required=False,
    )
    secret = cred.get("clientSecretSetting")
    credential = AmlCredential(
        tenant=reader.optional_text(cred.get("tenant"), f"{where}.credential.tenant"),
        client_id=reader.optional_text(cred.get("clientId"), f"{where}.credential.clientId"),
        client_secret_setting=None
        if secret is None
        else reader.setting_name(secret, f"{where}.credential.clientSecretSetting"),
        authority_host=None
        if cred.get("authorityHost") is None
        else reader.url(cred["authorityHost"], f"{where}.credential.authorityHost"),
    )
    if credential.client_secret_setting and not (credential.tenant and credential.client_id):
        raise reader.error(f"{where}.credential", "a service principal (clientSecretSetting) needs tenant and clientId")
    return Workspace(resource_id, endpoint.rstrip("/"), credential)


def _asset(reader: Reader, ws: Workspace, value: Any, path: str, collection: str, *, versioned: bool) -> str:
    """An ARM id (or registry URI) as given, or `name[:version]` in the workspace expanded to one."""
    text = reader.text(value, path)
    if text.startswith(("/subscriptions/", "azureml://registries/")):
        return text
    name, _, version = text.partition(":")
    if not ASSET_NAME.match(name) or (versioned and not ASSET_NAME.match(version)):
        form = "name:version" if versioned else "name"
        raise reader.error(path, f"{reader.show(text)} must be {form} in the workspace, or an ARM id")
    return ws.asset_id(collection, name, version if versioned else None)


def _io_name(reader: Reader, value: Any, path: str, default: str) -> str:
    name = reader.text(value, path, default=default)
    if not IO_NAME.match(name):
        raise reader.error(path, f"{reader.show(name)} must be an identifier (letters, digits, _)")
    return name


def training(reader: Reader, raw: dict[str, Any], path: str, pipeline: dict[str, Any]) -> AmlCommandTraining:
    ws = workspace(reader, pipeline, path.rsplit(".", 1)[0])
    parameters = reader.strings(raw.get("parameters"), f"{path}.parameters")
    for key in parameters:
        if not IO_NAME.match(key):
            raise reader.error(
                f"{path}.parameters.{key}", "a parameter name must be an identifier (letters, digits, _)"
            )
    data_input = _io_name(reader, raw.get("dataInput"), f"{path}.dataInput", "training_data")
    model_output = _io_name(reader, raw.get("modelOutput"), f"{path}.modelOutput", "model")
    metrics = raw.get("metricsOutput", "metrics")
    metrics_output = None if metrics is None else _io_name(reader, metrics, f"{path}.metricsOutput", "metrics")
    command = reader.text(raw.get("command"), f"{path}.command")
    known = {
        "inputs": {data_input, *parameters},
        "outputs": {model_output, *([metrics_output] if metrics_output else [])},
    }
    for side, name in PLACEHOLDER.findall(command):
        if name not in known[side]:
            raise reader.error(
                f"{path}.command", f"${{{{{side}.{name}}}}} names no {side[:-1]}; have {sorted(known[side])}"
            )
    if "${{inputs." + data_input not in command.replace(" ", ""):
        raise reader.error(f"{path}.command", f"must pass the training data: ${{{{inputs.{data_input}}}}}")
    model_name = reader.text(raw.get("modelName"), f"{path}.modelName", default=str(pipeline.get("name") or "model"))
    if not ASSET_NAME.match(model_name):
        raise reader.error(f"{path}.modelName", f"{reader.show(model_name)} is not a valid model name")
    return AmlCommandTraining(
        workspace=ws,
        command=command,
        environment_id=_asset(
            reader, ws, raw.get("environment"), f"{path}.environment", "environments", versioned=True
        ),
        compute_id=None
        if raw.get("compute") is None
        else _asset(reader, ws, raw["compute"], f"{path}.compute", "computes", versioned=False),
        experiment=reader.text(
            raw.get("experiment"), f"{path}.experiment", default=str(pipeline.get("name") or "retrain")
        ),
        model_name=model_name,
        parameters=parameters,
        data_input=data_input,
        model_output=model_output,
        metrics_output=metrics_output,
        output_datastore=reader.text(
            raw.get("outputDatastore"), f"{path}.outputDatastore", default="workspaceblobstore"
        ),
        code_id=None
        if raw.get("code") is None
        else _asset(reader, ws, raw["code"], f"{path}.code", "codes", versioned=True),
        instance_count=reader.integer(raw.get("instanceCount"), f"{path}.instanceCount", 1, 1, 100),
    )


def _endpoint(reader: Reader, raw: dict[str, Any], path: str) -> str:
    name = reader.text(raw.get("endpoint"), f"{path}.endpoint")
    if not ENDPOINT_NAME.match(name):
        raise reader.error(
            f"{path}.endpoint", f"{reader.show(name)} must be 3-32 letters, digits or dashes, beginning with a letter"
        )
    return name


def _deployment(reader: Reader, ws: Workspace, value: Any, path: str, *, batch: bool) -> DeploymentSpec:
    fields = {"instanceCount", "environment", "code", "scoringScript"} | ({"compute"} if batch else {"instanceType"})
    raw = reader.obj(value, path, fields, required=False)
    if ("code" in raw) != ("scoringScript" in raw):
        raise reader.error(
            path, "code and scoringScript go together (a custom scoring script), or neither (an MLflow model)"
        )
    compute = raw.get("compute")
    if batch and compute is None:
        raise reader.error(f"{path}.compute", "is required: the compute cluster that runs batch scoring jobs")
    return DeploymentSpec(
        instance_type=reader.text(raw.get("instanceType"), f"{path}.instanceType", default="Standard_DS3_v2"),
        instance_count=reader.integer(raw.get("instanceCount"), f"{path}.instanceCount", 1, 1, 100),
        environment_id=None
        if raw.get("environment") is None
        else _asset(reader, ws, raw["environment"], f"{path}.environment", "environments", versioned=True),
        code_id=None
        if raw.get("code") is None
        else _asset(reader, ws, raw["code"], f"{path}.code", "codes", versioned=True),
        scoring_script=reader.optional_text(raw.get("scoringScript"), f"{path}.scoringScript"),
        compute_id=None
        if compute is None
        else _asset(reader, ws, compute, f"{path}.compute", "computes", versioned=False),
    )


def _model_name(pipeline: dict[str, Any]) -> str:
    training_raw = pipeline.get("training") if isinstance(pipeline.get("training"), dict) else {}
    name = training_raw.get("modelName") if isinstance(training_raw, dict) else None
    return name if isinstance(name, str) and ASSET_NAME.match(name) else str(pipeline.get("name") or "model")


def _endpoint_fields(
    reader: Reader, raw: dict[str, Any], path: str, pipeline: dict[str, Any], base: Target, *, batch: bool
) -> dict[str, Any]:
    """The fields every endpoint target has (see AmlEndpointTarget), read from its definition."""
    ws = workspace(reader, pipeline, path.split(".targets[", 1)[0])
    return {
        "name": base.name,
        "kind": base.kind,
        "policy": base.policy,
        "workspace": ws,
        "endpoint": _endpoint(reader, raw, path),
        "model_name": _model_name(pipeline),
        "deployment": _deployment(reader, ws, raw.get("deployment"), f"{path}.deployment", batch=batch),
    }


def online_target(
    reader: Reader, raw: dict[str, Any], path: str, pipeline: dict[str, Any], base: Target
) -> AmlOnlineTarget:
    rollout = reader.obj(
        raw.get("rollout"), f"{path}.rollout", {"mirror", "trafficSteps", "bake", "keepDeployments"}, required=False
    )
    mirror = reader.obj(rollout.get("mirror"), f"{path}.rollout.mirror", {"percent", "bake"}, required=False)
    steps_raw = reader.list(rollout.get("trafficSteps", [10, 50, 100]), f"{path}.rollout.trafficSteps")
    steps = tuple(reader.integer(s, f"{path}.rollout.trafficSteps[{i}]", 0, 1, 100) for i, s in enumerate(steps_raw))
    if not steps or steps[-1] != 100 or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise reader.error(
            f"{path}.rollout.trafficSteps", f"expected rising percentages ending at 100, got {list(steps)}"
        )
    health = reader.obj(
        raw.get("health"), f"{path}.health", {"probes", "maxErrorRate", "maxLatencyMs", "sampleRows"}, required=False
    )
    target = AmlOnlineTarget(
        **_endpoint_fields(reader, raw, path, pipeline, base, batch=False),
        keep_deployments=reader.integer(rollout.get("keepDeployments"), f"{path}.rollout.keepDeployments", 1, 0, 10),
        mirror_percent=reader.integer(mirror.get("percent"), f"{path}.rollout.mirror.percent", 0, 0, 50),
        mirror_bake=reader.timespan(mirror.get("bake"), f"{path}.rollout.mirror.bake", timedelta(0), allow_zero=True),
        traffic_steps=steps,
        bake=reader.timespan(rollout.get("bake"), f"{path}.rollout.bake", timedelta(minutes=5), allow_zero=True),
        health=HealthCheck(
            probes=reader.integer(health.get("probes"), f"{path}.health.probes", 20, 1, 500),
            max_error_rate=reader.number(
                health.get("maxErrorRate"), f"{path}.health.maxErrorRate", minimum=0, maximum=1, default=0.05
            ),
            max_latency_ms=reader.number(
                health.get("maxLatencyMs"), f"{path}.health.maxLatencyMs", minimum=1, maximum=600_000, default=2000.0
            ),
            sample_rows=reader.integer(health.get("sampleRows"), f"{path}.health.sampleRows", 5, 1, 100),
        ),
    )
    baking = target.mirror_bake * (target.mirror_percent > 0) + target.bake * len(steps)
    if baking >= target.policy.timeout:
        raise reader.error(
            f"{path}.rollout",
            f"the bake times add up to {baking}, which leaves no time within policy.timeout {target.policy.timeout}",
        )
    return target


def batch_target(
    reader: Reader, raw: dict[str, Any], path: str, pipeline: dict[str, Any], base: Target
) -> AmlBatchTarget:
    return AmlBatchTarget(
        **_endpoint_fields(reader, raw, path, pipeline, base, batch=True),
        keep_deployments=reader.integer(raw.get("keepDeployments"), f"{path}.keepDeployments", 1, 0, 10),
    )
