"""What the code reads that the infrastructure must provide, derived from the code when the check runs: the app settings
(retraining/settings.py APP_SETTINGS, the %NAME% expressions in host.json and in the functions' bindings, the settings
and secrets the pipeline definitions file names), the containers the pipelines and Settings use, the blobs each
pipeline watches, the functions with an Event Grid trigger, and the pipelines that train with Azure ML; each with
where it is read (derive_code_reads, into a CodeReads).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retraining.definitions import _SETTING_REF
from retraining.definitions.azure_ml import AML_TRAINING
from retraining.errors import ConfigError
from retraining.settings import APP_ROOT, APP_SETTINGS, AppSetting, Settings

from .rules import GLOB_SPECIAL, NEVER_IN_AZURE

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
