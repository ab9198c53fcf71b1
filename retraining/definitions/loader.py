"""Loading a definitions file: the generic parts of each pipeline, and one parser per service kind.

A kind's parser lives with its family (`studio`, `azure_ml`); the tables below are the only place
that knows them all, as `retraining.services` is for the service modules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..drift.policy import RetrainWhen, parse_retrain_when
from ..errors import ConfigError
from ..polling import FRACTION_RANGE, check_polling
from . import azure_ml, studio
from .base import (
    MAX_APPROVAL,
    MAX_TIMEOUT,
    NOTIFY_EVENTS,
    ActivityPolicy,
    Approval,
    Definitions,
    ExternalDataPolicy,
    Gate,
    Notifications,
    Pipeline,
    PollingPolicy,
    ServingPolicy,
    Target,
    TrainingConfig,
)
from .reader import Reader, UnsetSettingError

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


@dataclass(frozen=True)
class TrainingKind:
    fields: frozenset[str]
    parse: Callable[[Reader, dict[str, Any], str, dict[str, Any]], TrainingConfig]


@dataclass(frozen=True)
class TargetKind:
    fields: frozenset[str]
    parse: Callable[[Reader, dict[str, Any], str, dict[str, Any], Target], Target]
    serves: tuple[str, ...]  # the training kinds whose models it can serve
    default_timeout: timedelta = timedelta(hours=1)


TRAINING_KINDS: dict[str, TrainingKind] = {
    studio.STUDIO_TRAINING: TrainingKind(frozenset(studio.TRAINING_FIELDS), studio.training),
    azure_ml.AML_TRAINING: TrainingKind(frozenset(azure_ml.TRAINING_FIELDS), azure_ml.training),
}
TARGET_KINDS: dict[str, TargetKind] = {
    "classic": TargetKind(frozenset(studio.CLASSIC_FIELDS), studio.classic_target, (studio.STUDIO_TRAINING,)),
    "arm": TargetKind(frozenset(studio.ARM_FIELDS), studio.arm_target, (studio.STUDIO_TRAINING,)),
    "aml-online": TargetKind(
        frozenset(azure_ml.ONLINE_FIELDS), azure_ml.online_target, (azure_ml.AML_TRAINING,), timedelta(hours=2)
    ),
    "aml-batch": TargetKind(frozenset(azure_ml.BATCH_FIELDS), azure_ml.batch_target, (azure_ml.AML_TRAINING,)),
}
PIPELINE_FIELDS = {
    "name",
    "description",
    "schedule",
    "training",
    "data",
    "output",
    "policy",
    "polling",
    "gate",
    "targets",
    "notifications",
    "serving",
    "retrainWhen",
    *azure_ml.PIPELINE_SECTIONS,
}


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
    """Validate a definitions document. A pipeline that refers to an unset app setting is set aside as
    unavailable (its runs are refused with the reason), so one unconfigured service stops no other pipeline."""
    reader = Reader(source, settings)
    root = reader.obj(raw, "", {"pipelines", "$schema", "description"})
    items = reader.list(root.get("pipelines"), "pipelines", required=True)
    pipelines: dict[str, Pipeline] = {}
    unavailable: dict[str, str] = {}
    for index, item in enumerate(items):
        path = f"pipelines[{index}]"
        name = _name(reader, item, path)
        if name in pipelines or name in unavailable:
            raise reader.error(f"{path}.name", f"duplicate pipeline name {name!r}")
        try:
            pipelines[name] = _pipeline(reader, item, path, name)
        except UnsetSettingError as exc:
            unavailable[name] = str(exc)
    if not items:
        raise reader.error("pipelines", "at least one pipeline is required")
    return Definitions(pipelines, source, unavailable)


def _name(reader: Reader, value: Any, path: str) -> str:
    raw = reader.obj(value, path, PIPELINE_FIELDS)
    name = reader.text(raw.get("name"), f"{path}.name")
    if not _NAME.match(name):
        raise reader.error(f"{path}.name", f"{reader.show(name)} must be 1-40 lowercase letters, digits or dashes")
    return name


def _policy(reader: Reader, value: Any, path: str, timeout: timedelta, retry: int) -> ActivityPolicy:
    raw = reader.obj(
        value,
        path,
        {"timeout", "retry", "retryIntervalInSeconds", "concurrency", "executionPriorityOrder"},
        required=False,
    )
    if raw.get("concurrency") not in (None, 1):
        raise reader.error(f"{path}.concurrency", "only 1 is supported: one run per pipeline at a time")
    if raw.get("executionPriorityOrder") not in (None, "NewestFirst"):
        raise reader.error(f"{path}.executionPriorityOrder", "only NewestFirst is supported")
    limit = reader.timespan(raw.get("timeout"), f"{path}.timeout", timeout)
    if limit > MAX_TIMEOUT:
        raise reader.error(
            f"{path}.timeout",
            "must be at most 5.23:00:00: Durable timers in Python are limited to "
            "6 days, and a SAS signed with a user delegation key to 7",
        )
    return ActivityPolicy(
        timeout=limit,
        retry=reader.integer(raw.get("retry"), f"{path}.retry", retry, 0, 20),
        retry_interval=timedelta(
            seconds=reader.integer(raw.get("retryIntervalInSeconds"), f"{path}.retryIntervalInSeconds", 30, 1, 3600)
        ),
    )


def _pipeline(reader: Reader, raw: dict[str, Any], path: str, name: str) -> Pipeline:
    schedule = reader.obj(raw.get("schedule"), f"{path}.schedule", {"enabled", "start", "end"}, required=False)
    start, end = (
        reader.moment(schedule.get("start"), f"{path}.schedule.start"),
        reader.moment(schedule.get("end"), f"{path}.schedule.end"),
    )
    if start and end and end <= start:
        raise reader.error(f"{path}.schedule.end", "must be after schedule.start")
    data = reader.obj(raw.get("data"), f"{path}.data", {"container", "blob", "watch", "externalData", "labelColumn"})
    external = reader.obj(
        data.get("externalData"),
        f"{path}.data.externalData",
        {"retryInterval", "retryTimeout", "maximumRetry"},
        required=False,
    )
    polling = reader.obj(
        raw.get("polling"),
        f"{path}.polling",
        {"firstInterval", "maxInterval", "fraction", "completionEvents"},
        required=False,
    )
    fraction = polling.get("fraction", 0.05)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise reader.error(f"{path}.polling.fraction", f"{FRACTION_RANGE}, got {fraction!r}")
    first_interval = reader.timespan(
        polling.get("firstInterval"), f"{path}.polling.firstInterval", timedelta(seconds=5)
    )
    max_interval = reader.timespan(polling.get("maxInterval"), f"{path}.polling.maxInterval", timedelta(minutes=5))
    # The monitor's planner checks the same settings: refusing them here keeps a run from submitting a job
    # whose monitor then fails on its first replay.
    check_polling(
        first_interval.total_seconds(),
        max_interval.total_seconds(),
        float(fraction),
        f"{reader.source}: {path}.polling",
    )
    output = reader.obj(raw.get("output"), f"{path}.output", {"container"}, required=False)
    training = _training(reader, raw, f"{path}.training")
    completion_events = reader.flag(polling.get("completionEvents"), f"{path}.polling.completionEvents", False)
    if completion_events and not training.announces_completion:
        raise reader.error(
            f"{path}.polling.completionEvents", f"training kind {training.kind!r} does not announce completion"
        )
    targets = tuple(
        _target(reader, t, f"{path}.targets[{i}]", raw, training)
        for i, t in enumerate(reader.list(raw.get("targets"), f"{path}.targets"))
    )
    names = [t.name for t in targets]
    for i, target_name in enumerate(names):
        if names.index(target_name) != i:
            raise reader.error(f"{path}.targets[{i}].name", f"duplicate target name {target_name!r}")
    return Pipeline(
        name=name,
        training=training,
        data_container=reader.container(data.get("container"), f"{path}.data.container"),
        data_blob=reader.blob_name(data.get("blob"), f"{path}.data.blob"),
        data_watch=reader.blob_name(data.get("watch", data.get("blob")), f"{path}.data.watch"),
        external_data=ExternalDataPolicy(
            retry_interval=reader.timespan(
                external.get("retryInterval"), f"{path}.data.externalData.retryInterval", timedelta(minutes=1)
            ),
            retry_timeout=reader.timespan(
                external.get("retryTimeout"), f"{path}.data.externalData.retryTimeout", timedelta(minutes=10)
            ),
            maximum_retry=reader.integer(
                external.get("maximumRetry"), f"{path}.data.externalData.maximumRetry", 3, 0, 1000
            ),
        ),
        output_container=reader.container(output["container"], f"{path}.output.container")
        if "container" in output
        else None,
        policy=_policy(reader, raw.get("policy"), f"{path}.policy", timedelta(hours=2), 1),
        polling=PollingPolicy(
            first_interval=first_interval,
            max_interval=max_interval,
            fraction=float(fraction),
            completion_events=completion_events,
        ),
        gate=_gate(reader, raw.get("gate"), f"{path}.gate"),
        targets=targets,
        schedule_enabled=reader.flag(schedule.get("enabled"), f"{path}.schedule.enabled", True),
        active_from=start,
        active_until=end,
        label_column=reader.optional_text(data.get("labelColumn"), f"{path}.data.labelColumn"),
        notifications=_notifications(reader, raw.get("notifications"), f"{path}.notifications"),
        serving=_serving(reader, raw.get("serving"), f"{path}.serving"),
        retrain_when=_retrain_when(reader, raw.get("retrainWhen"), f"{path}.retrainWhen"),
    )


def _retrain_when(reader: Reader, value: Any, path: str) -> RetrainWhen | None:
    """`retrainWhen` (absent: every run trains); every wrong field named with its path."""
    return parse_retrain_when(value, f"{reader.source}: {path}")


def _serving(reader: Reader, value: Any, path: str) -> ServingPolicy:
    raw = reader.obj(value, path, {"consistency", "interrupted", "otherWriters"}, required=False)
    return ServingPolicy(
        consistency=reader.choice(raw.get("consistency"), f"{path}.consistency", ("all", "independent")),
        interrupted=reader.choice(raw.get("interrupted"), f"{path}.interrupted", ("restore", "hold")),
        other_writers=reader.choice(raw.get("otherWriters"), f"{path}.otherWriters", ("yield", "revert")),
    )


def _notifications(reader: Reader, value: Any, path: str) -> Notifications | None:
    if value is None:
        return None
    raw = reader.obj(value, path, {"webhook", "secretSetting", "events"})
    events = reader.list(raw.get("events"), f"{path}.events") or list(NOTIFY_EVENTS)
    for i, event in enumerate(events):
        if event not in NOTIFY_EVENTS:
            raise reader.error(f"{path}.events[{i}]", f"expected one of {list(NOTIFY_EVENTS)}, got {event!r}")
    return Notifications(
        reader.url(raw.get("webhook"), f"{path}.webhook"),
        reader.setting_name(raw.get("secretSetting"), f"{path}.secretSetting"),
        tuple(dict.fromkeys(events)),
    )


def _training(reader: Reader, pipeline: dict[str, Any], path: str) -> TrainingConfig:
    value = pipeline.get("training")
    kind_name = value.get("kind", studio.STUDIO_TRAINING) if isinstance(value, dict) else None
    kind = TRAINING_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None and isinstance(value, dict):
        raise reader.error(f"{path}.kind", f"expected one of {list(TRAINING_KINDS)}, got {kind_name!r}")
    raw = reader.obj(value, path, {"kind", *(kind.fields if kind else ())})
    assert kind is not None
    return kind.parse(reader, raw, path, pipeline)


def _target(reader: Reader, value: Any, path: str, pipeline: dict[str, Any], training: TrainingConfig) -> Target:
    kind_name = value.get("kind") if isinstance(value, dict) else None
    kind = TARGET_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None and isinstance(value, dict):
        raise reader.error(f"{path}.kind", f"expected one of {list(TARGET_KINDS)}, got {kind_name!r}")
    raw = reader.obj(value, path, {"name", "kind", "policy", *(kind.fields if kind else ())})
    assert kind is not None and isinstance(kind_name, str)
    if training.kind not in kind.serves:
        raise reader.error(
            f"{path}.kind",
            f"a {kind_name!r} target serves models trained by {list(kind.serves)}, "
            f"not by this pipeline's {training.kind!r}",
        )
    name = reader.text(raw.get("name"), f"{path}.name")
    if not _NAME.match(name.lower()):
        raise reader.error(f"{path}.name", f"{reader.show(name)} must be 1-40 letters, digits or dashes")
    base = Target(name, kind_name, _policy(reader, raw.get("policy"), f"{path}.policy", kind.default_timeout, 3))
    return kind.parse(reader, raw, path, pipeline, base)


def _gate(reader: Reader, value: Any, path: str) -> Gate:
    raw = reader.obj(value, path, {"minimums", "notWorseThanServing", "allowSchemaChange", "approval"}, required=False)
    minimums_raw = reader.obj(raw.get("minimums"), f"{path}.minimums", set(raw.get("minimums") or {}), required=False)
    minimums = {k: reader.number(v, f"{path}.minimums.{k}") for k, v in minimums_raw.items()}
    compare = reader.list(raw.get("notWorseThanServing"), f"{path}.notWorseThanServing")
    for i, metric in enumerate(compare):
        if not isinstance(metric, str) or not metric:
            raise reader.error(f"{path}.notWorseThanServing[{i}]", "expected a metric name such as 'AUC'")
    return Gate(
        minimums,
        tuple(compare),
        reader.flag(raw.get("allowSchemaChange"), f"{path}.allowSchemaChange", False),
        _approval(reader, raw.get("approval"), f"{path}.approval"),
    )


def _approval(reader: Reader, value: Any, path: str) -> Approval:
    raw = reader.obj(value, path, {"required", "timeout"}, required=False)
    required = raw.get("required", bool(raw))
    if not isinstance(required, bool):
        raise reader.error(f"{path}.required", "expected true or false")
    timeout = reader.timespan(raw.get("timeout"), f"{path}.timeout", Approval().timeout)
    if timeout > MAX_APPROVAL:
        raise reader.error(
            f"{path}.timeout", "must be at most 7.00:00:00: a run waiting for approval holds its pipeline's queue"
        )
    return Approval(required, timeout)
