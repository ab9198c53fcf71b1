"""Pipeline definitions: one JSON file, several pipelines, validated at load.

A pipeline names its training service, its data, where outputs go, its policies, an optional
evaluation gate and the scoring targets to update. Secrets never appear in the file: keys are
named by app setting (`apiKeySetting`, `servicePrincipalKeySetting`), which Key Vault references can
back. Any other string may be `%SETTING%`, resolved from app settings when the definition is loaded,
so the same file points at Azure or at the local emulator.

Every validation error names the file and the JSON path, e.g.
`pipelines.json: pipelines[0].policy.timeout: '25:00:00' is out of range`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .timespans import parse_timespan

_SETTING_REF = re.compile(r"^%([A-Za-z_][A-Za-z0-9_.:]*)%$")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
TRAINING_KINDS = ("studio-bes",)
TARGET_KINDS = ("classic", "arm")
# Durable timers in Python stop at 6 days (longer ones are split, differently by each engine); SAS
# tokens outlive the timeout by a margin and, with a managed identity, are signed by a user
# delegation key, which Azure issues for at most 7 days.
MAX_TIMEOUT = timedelta(days=5, hours=23)
# A run waiting for approval holds its pipeline's queue: a week at most. The wait is re-armed in
# timer chunks of at most a day, so the Durable timer limit never applies to it.
MAX_APPROVAL = timedelta(days=7)
NOTIFY_EVENTS = ("awaiting_approval", "run_not_succeeded", "rolled_back", "target_on_old_model")


@dataclass(frozen=True)
class ExternalDataPolicy:
    """The seed dataset's `policy.externalData`: how long to wait for training data to appear."""

    retry_interval: timedelta = timedelta(minutes=1)
    retry_timeout: timedelta = timedelta(minutes=10)
    maximum_retry: int = 3


@dataclass(frozen=True)
class ActivityPolicy:
    timeout: timedelta
    retry: int
    retry_interval: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class PollingPolicy:
    """Capped exponential back-off: each wait is `fraction` of the time elapsed so far, within bounds."""

    first_interval: timedelta = timedelta(seconds=5)
    max_interval: timedelta = timedelta(minutes=5)
    fraction: float = 0.05


@dataclass(frozen=True)
class TrainingService:
    ml_endpoint: str
    api_key_setting: str
    kind: str = "studio-bes"
    input_name: str = "input1"
    model_output: str = "output1"
    evaluation_output: str | None = "output2"
    global_parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A scoring web service whose trained-model resource gets replaced."""

    name: str
    kind: str  # "classic" or "arm"
    update_resource_endpoint: str
    trained_model_name: str
    policy: ActivityPolicy
    api_key_setting: str | None = None  # classic
    tenant: str | None = None  # arm
    service_principal_id: str | None = None
    service_principal_key_setting: str | None = None
    authority_host: str | None = None  # arm; None means Azure public cloud


@dataclass(frozen=True)
class Approval:
    """`gate.approval`: a model that passed the gate waits for a person to approve it, up to `timeout`."""

    required: bool = False
    timeout: timedelta = timedelta(days=2)


@dataclass(frozen=True)
class Notifications:
    """`notifications`: where to POST signed JSON about a run, the setting holding the HMAC key, and which events."""

    webhook: str
    secret_setting: str
    events: tuple[str, ...] = NOTIFY_EVENTS


@dataclass(frozen=True)
class Gate:
    minimums: Mapping[str, float] = field(default_factory=dict)
    not_worse_than_serving: tuple[str, ...] = ()
    allow_schema_change: bool = False  # accept data whose columns differ from the champion's
    approval: Approval = field(default_factory=Approval)

    @property
    def enabled(self) -> bool:
        return bool(self.minimums or self.not_worse_than_serving)


@dataclass(frozen=True)
class Pipeline:
    name: str
    training: TrainingService
    data_container: str
    data_blob: str
    data_watch: str  # glob, relative to the data container: blobs whose arrival starts a run
    external_data: ExternalDataPolicy
    output_container: str
    policy: ActivityPolicy
    polling: PollingPolicy
    gate: Gate
    targets: tuple[Target, ...]
    schedule_enabled: bool = True
    active_from: datetime | None = None
    active_until: datetime | None = None
    label_column: str | None = None  # None: the training service's "Label Column" parameter, else the last column
    notifications: Notifications | None = None

    @property
    def label(self) -> str | None:
        return self.label_column or self.training.global_parameters.get("Label Column")

    def is_active(self, moment: datetime) -> bool:
        """Whether a scheduled run at `moment` falls inside the pipeline's start/end period."""
        if not self.schedule_enabled:
            return False
        if self.active_from and moment < self.active_from:
            return False
        return not (self.active_until and moment >= self.active_until)

    def watches(self, container: str, blob: str) -> bool:
        """Whether the arrival of `container/blob` should start a run of this pipeline."""
        return container == self.data_container and fnmatchcase(blob, self.data_watch)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise ConfigError(f"pipeline {self.name!r} has no target {name!r}")


@dataclass(frozen=True)
class Definitions:
    pipelines: Mapping[str, Pipeline]
    source: str

    def get(self, name: str) -> Pipeline:
        try:
            return self.pipelines[name]
        except KeyError:
            raise ConfigError(f"{self.source}: no pipeline named {name!r} (have: {', '.join(self.pipelines) or 'none'})") from None


def load_definitions(path: Path, settings: Mapping[str, str]) -> Definitions:
    """Read and validate a definitions file; `%SETTING%` strings are resolved from `settings`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path.name}: cannot read pipeline definitions ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"{path.name}: not valid JSON ({exc})") from None
    return parse_definitions(raw, settings, source=path.name)  # the name only: errors may reach callers, paths must not


def parse_definitions(raw: Any, settings: Mapping[str, str], *, source: str = "definitions") -> Definitions:
    reader = _Reader(source, settings)
    root = reader.obj(raw, "", {"pipelines", "$schema", "description"})
    items = reader.list(root.get("pipelines"), "pipelines", required=True)
    pipelines: dict[str, Pipeline] = {}
    for index, item in enumerate(items):
        pipeline = reader.pipeline(item, f"pipelines[{index}]")
        if pipeline.name in pipelines:
            raise reader.error(f"pipelines[{index}].name", f"duplicate pipeline name {pipeline.name!r}")
        pipelines[pipeline.name] = pipeline
    if not pipelines:
        raise reader.error("pipelines", "at least one pipeline is required")
    return Definitions(pipelines, source)


class _Reader:
    """Validates one JSON document, keeping the file name and JSON path for every error."""

    def __init__(self, source: str, settings: Mapping[str, str]) -> None:
        self.source = source
        self.settings = settings

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path or '(root)'}: {message}")

    def obj(self, value: Any, path: str, allowed: set[str], *, required: bool = True) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected an object, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.error(path, f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
        return value

    def list(self, value: Any, path: str, *, required: bool = False) -> list[Any]:
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise self.error(path, "expected a list")
        return value

    def text(self, value: Any, path: str, *, required: bool = True, default: str | None = None) -> str:
        if value is None:
            if required and default is None:
                raise self.error(path, "is required")
            return default or ""
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"expected a non-empty string, got {value!r}")
        match = _SETTING_REF.match(value)
        if match:
            resolved = self.settings.get(match.group(1))
            if not resolved:
                raise self.error(path, f"refers to app setting {match.group(1)!r}, which is not set")
            return resolved
        return value

    def setting_name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.:]*$", value):
            # Never echo the value: a secret pasted here by mistake must not reach logs or HTTP answers.
            raise self.error(path, "expected the name of an app setting holding the secret (the value given is not shown)")
        return value

    def optional_text(self, value: Any, path: str) -> str | None:
        return None if value is None else self.text(value, path)

    def integer(self, value: Any, path: str, default: int, minimum: int = 0, maximum: int = 1000) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.error(path, f"expected an integer from {minimum} to {maximum}, got {value!r}")
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"expected a number, got {value!r}")
        return float(value)

    def timespan(self, value: Any, path: str, default: timedelta) -> timedelta:
        if value is None:
            return default
        try:
            parsed = parse_timespan(value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None
        if parsed <= timedelta(0):
            raise self.error(path, "must be longer than zero")
        return parsed

    def moment(self, value: Any, path: str) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(path, f"expected an ISO 8601 date-time, got {value!r}")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(path, f"{value!r} is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise self.error(path, f"{value!r} needs a time zone (for example a trailing Z)")
        return parsed

    def url(self, value: Any, path: str) -> str:
        url = self.text(value, path)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(path, f"expected an http(s) URL, got {url!r}")
        return url

    def container(self, value: Any, path: str) -> str:
        name = self.text(value, path)
        if not re.match(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$", name):
            raise self.error(path, f"{name!r} is not a valid blob container name")
        return name

    def blob_name(self, value: Any, path: str) -> str:
        name = self.text(value, path)
        if name.startswith("/") or ".." in name.split("/") or len(name) > 1024 or "\\" in name:
            raise self.error(path, f"{name!r} is not a safe blob name")
        return name

    def policy(self, value: Any, path: str, timeout: timedelta, retry: int) -> ActivityPolicy:
        raw = self.obj(value, path, {"timeout", "retry", "retryIntervalInSeconds", "concurrency",
                                     "executionPriorityOrder"}, required=False)
        if raw.get("concurrency") not in (None, 1):
            raise self.error(f"{path}.concurrency", "only 1 is supported: one run per pipeline at a time")
        if raw.get("executionPriorityOrder") not in (None, "NewestFirst"):
            raise self.error(f"{path}.executionPriorityOrder", "only NewestFirst is supported")
        limit = self.timespan(raw.get("timeout"), f"{path}.timeout", timeout)
        if limit > MAX_TIMEOUT:
            raise self.error(f"{path}.timeout", "must be at most 5.23:00:00: Durable timers in Python are limited to "
                                                "6 days, and a SAS signed with a user delegation key to 7")
        return ActivityPolicy(
            timeout=limit,
            retry=self.integer(raw.get("retry"), f"{path}.retry", retry, 0, 20),
            retry_interval=timedelta(seconds=self.integer(raw.get("retryIntervalInSeconds"), f"{path}.retryIntervalInSeconds", 30, 1, 3600)),
        )

    def pipeline(self, value: Any, path: str) -> Pipeline:
        raw = self.obj(value, path, {"name", "description", "schedule", "training", "data", "output", "policy",
                                     "polling", "gate", "targets", "notifications"})
        name = self.text(raw.get("name"), f"{path}.name")
        if not _NAME.match(name):
            raise self.error(f"{path}.name", f"{name!r} must be 1-40 lowercase letters, digits or dashes")
        schedule = self.obj(raw.get("schedule"), f"{path}.schedule", {"enabled", "start", "end"}, required=False)
        enabled = schedule.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.error(f"{path}.schedule.enabled", "expected true or false")
        start, end = self.moment(schedule.get("start"), f"{path}.schedule.start"), self.moment(schedule.get("end"), f"{path}.schedule.end")
        if start and end and end <= start:
            raise self.error(f"{path}.schedule.end", "must be after schedule.start")
        data = self.obj(raw.get("data"), f"{path}.data", {"container", "blob", "watch", "externalData", "labelColumn"})
        external = self.obj(data.get("externalData"), f"{path}.data.externalData",
                            {"retryInterval", "retryTimeout", "maximumRetry"}, required=False)
        polling = self.obj(raw.get("polling"), f"{path}.polling", {"firstInterval", "maxInterval", "fraction"}, required=False)
        fraction = polling.get("fraction", 0.05)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise self.error(f"{path}.polling.fraction", "expected a number in (0, 1]")
        output = self.obj(raw.get("output"), f"{path}.output", {"container"})
        targets_raw = self.list(raw.get("targets"), f"{path}.targets")
        targets = tuple(self.target(t, f"{path}.targets[{i}]") for i, t in enumerate(targets_raw))
        names = [t.name for t in targets]
        for i, target_name in enumerate(names):
            if names.index(target_name) != i:
                raise self.error(f"{path}.targets[{i}].name", f"duplicate target name {target_name!r}")
        return Pipeline(
            name=name,
            training=self.training(raw.get("training"), f"{path}.training"),
            data_container=self.container(data.get("container"), f"{path}.data.container"),
            data_blob=self.blob_name(data.get("blob"), f"{path}.data.blob"),
            data_watch=self.blob_name(data.get("watch", data.get("blob")), f"{path}.data.watch"),
            external_data=ExternalDataPolicy(
                retry_interval=self.timespan(external.get("retryInterval"), f"{path}.data.externalData.retryInterval", timedelta(minutes=1)),
                retry_timeout=self.timespan(external.get("retryTimeout"), f"{path}.data.externalData.retryTimeout", timedelta(minutes=10)),
                maximum_retry=self.integer(external.get("maximumRetry"), f"{path}.data.externalData.maximumRetry", 3, 0, 1000),
            ),
            output_container=self.container(output.get("container"), f"{path}.output.container"),
            policy=self.policy(raw.get("policy"), f"{path}.policy", timedelta(hours=2), 1),
            polling=PollingPolicy(
                first_interval=self.timespan(polling.get("firstInterval"), f"{path}.polling.firstInterval", timedelta(seconds=5)),
                max_interval=self.timespan(polling.get("maxInterval"), f"{path}.polling.maxInterval", timedelta(minutes=5)),
                fraction=float(fraction),
            ),
            gate=self.gate(raw.get("gate"), f"{path}.gate"),
            targets=targets,
            schedule_enabled=enabled,
            active_from=start,
            active_until=end,
            label_column=self.optional_text(data.get("labelColumn"), f"{path}.data.labelColumn"),
            notifications=self.notifications(raw.get("notifications"), f"{path}.notifications"),
        )

    def notifications(self, value: Any, path: str) -> Notifications | None:
        if value is None:
            return None
        raw = self.obj(value, path, {"webhook", "secretSetting", "events"})
        events = self.list(raw.get("events"), f"{path}.events") or list(NOTIFY_EVENTS)
        for i, event in enumerate(events):
            if event not in NOTIFY_EVENTS:
                raise self.error(f"{path}.events[{i}]", f"expected one of {list(NOTIFY_EVENTS)}, got {event!r}")
        return Notifications(self.url(raw.get("webhook"), f"{path}.webhook"),
                             self.setting_name(raw.get("secretSetting"), f"{path}.secretSetting"), tuple(dict.fromkeys(events)))

    def training(self, value: Any, path: str) -> TrainingService:
        raw = self.obj(value, path, {"kind", "mlEndpoint", "apiKeySetting", "input", "modelOutput", "evaluationOutput", "globalParameters"})
        kind = raw.get("kind", "studio-bes")
        if kind not in TRAINING_KINDS:
            raise self.error(f"{path}.kind", f"expected one of {list(TRAINING_KINDS)}, got {kind!r}")
        parameters = self.obj(raw.get("globalParameters"), f"{path}.globalParameters", set(raw.get("globalParameters") or {}), required=False)
        for key, parameter in parameters.items():
            if not isinstance(parameter, str):
                raise self.error(f"{path}.globalParameters.{key}", f"expected a string, got {parameter!r}")
        evaluation = raw.get("evaluationOutput", "output2")
        return TrainingService(
            kind=kind,
            ml_endpoint=self.url(raw.get("mlEndpoint"), f"{path}.mlEndpoint"),
            api_key_setting=self.setting_name(raw.get("apiKeySetting"), f"{path}.apiKeySetting"),
            input_name=self.text(raw.get("input"), f"{path}.input", default="input1"),
            model_output=self.text(raw.get("modelOutput"), f"{path}.modelOutput", default="output1"),
            evaluation_output=None if evaluation is None else self.text(evaluation, f"{path}.evaluationOutput"),
            global_parameters={k: self.text(v, f"{path}.globalParameters.{k}") for k, v in parameters.items()},
        )

    def target(self, value: Any, path: str) -> Target:
        raw = self.obj(value, path, {"name", "kind", "updateResourceEndpoint", "trainedModelName", "policy", "apiKeySetting",
                                     "tenant", "servicePrincipalId", "servicePrincipalKeySetting", "authorityHost"})
        kind = raw.get("kind")
        if kind not in TARGET_KINDS:
            raise self.error(f"{path}.kind", f"expected one of {list(TARGET_KINDS)}, got {kind!r}")
        name = self.text(raw.get("name"), f"{path}.name")
        if not _NAME.match(name.lower()):
            raise self.error(f"{path}.name", f"{name!r} must be 1-40 letters, digits or dashes")
        target = Target(
            name=name,
            kind=kind,
            update_resource_endpoint=self.url(raw.get("updateResourceEndpoint"), f"{path}.updateResourceEndpoint"),
            trained_model_name=self.text(raw.get("trainedModelName"), f"{path}.trainedModelName"),
            policy=self.policy(raw.get("policy"), f"{path}.policy", timedelta(hours=1), 3),
        )
        if kind == "classic":
            return Target(**{**target.__dict__, "api_key_setting": self.setting_name(raw.get("apiKeySetting"), f"{path}.apiKeySetting")})
        authority = raw.get("authorityHost")
        return Target(**{
            **target.__dict__,
            "tenant": self.text(raw.get("tenant"), f"{path}.tenant"),
            "service_principal_id": self.text(raw.get("servicePrincipalId"), f"{path}.servicePrincipalId"),
            "service_principal_key_setting": self.setting_name(raw.get("servicePrincipalKeySetting"), f"{path}.servicePrincipalKeySetting"),
            "authority_host": None if authority is None else self.url(authority, f"{path}.authorityHost"),
        })

    def gate(self, value: Any, path: str) -> Gate:
        raw = self.obj(value, path, {"minimums", "notWorseThanServing", "allowSchemaChange", "approval"}, required=False)
        allow = raw.get("allowSchemaChange", False)
        if not isinstance(allow, bool):
            raise self.error(f"{path}.allowSchemaChange", "expected true or false")
        minimums_raw = self.obj(raw.get("minimums"), f"{path}.minimums", set(raw.get("minimums") or {}), required=False)
        minimums = {k: self.number(v, f"{path}.minimums.{k}") for k, v in minimums_raw.items()}
        compare = self.list(raw.get("notWorseThanServing"), f"{path}.notWorseThanServing")
        for i, metric in enumerate(compare):
            if not isinstance(metric, str) or not metric:
                raise self.error(f"{path}.notWorseThanServing[{i}]", "expected a metric name such as 'AUC'")
        return Gate(minimums, tuple(compare), allow, self.approval(raw.get("approval"), f"{path}.approval"))

    def approval(self, value: Any, path: str) -> Approval:
        raw = self.obj(value, path, {"required", "timeout"}, required=False)
        required = raw.get("required", bool(raw))
        if not isinstance(required, bool):
            raise self.error(f"{path}.required", "expected true or false")
        timeout = self.timespan(raw.get("timeout"), f"{path}.timeout", Approval().timeout)
        if timeout > MAX_APPROVAL:
            raise self.error(f"{path}.timeout", "must be at most 7.00:00:00: a run waiting for approval holds its pipeline's queue")
        return Approval(required, timeout)
