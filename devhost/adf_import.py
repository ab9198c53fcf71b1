"""Turn Azure Data Factory (v1 or v2) JSON into our pipeline definitions.

Understands AzureStorage and AzureML linked services, AzureBlob datasets, and pipelines of
AzureMLBatchExecution and AzureMLUpdateResource activities with their policies. Secrets written
inline (API keys, service-principal keys, account keys) are moved out: the definition gets app
setting names, and the values go to a settings dictionary the caller writes to a local settings
file. v2 SecureString values and Azure Key Vault references are understood; a Key Vault reference
becomes an `@Microsoft.KeyVault(...)` setting value. Endpoint URLs become `%SETTING%` references too,
so pointing the definition at other services is a settings change, never an edit.

Every error names the file and the JSON path. The report says what was mapped, what was ignored
and why, and where each secret went, without ever showing a secret's value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from retraining.definitions import parse_definitions
from retraining.errors import ConfigError
from retraining.timespans import format_timespan, parse_timespan

KNOWN_ACTIVITIES = ("AzureMLBatchExecution", "AzureMLUpdateResource")
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
_FENCE = re.compile(r"```[A-Za-z]*\s*\n(.*?)```", re.DOTALL)


@dataclass
class Document:
    name: str
    kind: str  # "linkedService", "dataset" or "pipeline"
    properties: dict[str, Any]
    source: str  # "file.json" or "file.md#3"


@dataclass
class ImportResult:
    definition: dict[str, Any]
    settings: dict[str, str]
    report: list[str] = field(default_factory=list)


def _error(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def read_documents(paths: Iterable[Path]) -> list[Document]:
    """Read .json files (one document or a list), directories of them, or markdown with fenced JSON."""
    documents: list[Document] = []
    for path in paths:
        if path.is_dir():
            documents += read_documents(
                sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".md", ".txt"))
            )
            continue
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        if path.suffix.lower() == ".json":
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from None
            items = raw if isinstance(raw, list) else [raw]
            documents += [
                _document(item, f"{path.name}" + (f"[{i}]" if isinstance(raw, list) else ""))
                for i, item in enumerate(items)
            ]
        else:
            for index, block in enumerate(_FENCE.findall(text)):
                try:
                    raw = json.loads(block)
                except ValueError:
                    continue  # prose or partial snippets in the page are not documents
                if isinstance(raw, dict) and "name" in raw and "properties" in raw:
                    documents.append(_document(raw, f"{path.name}#block{index + 1}"))
    return documents


def _document(raw: Any, source: str) -> Document:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("properties"), dict):
        raise _error(source, "expected an ADF document with 'name' and 'properties'")
    properties = raw["properties"]
    if "activities" in properties:
        kind = "pipeline"
    elif (
        "typeProperties" in properties
        and properties.get("type") in ("AzureStorage", "AzureBlobStorage", "AzureML", "AzureKeyVault")
        or properties.get("type") in ("AzureML", "AzureStorage", "AzureBlobStorage", "AzureKeyVault")
    ):
        kind = "linkedService"
    elif properties.get("type") in ("AzureBlob", "Binary", "DelimitedText") or "linkedServiceName" in properties:
        kind = "dataset"
    else:
        raise _error(f"{source}: properties.type", f"unsupported document type {properties.get('type')!r}")
    return Document(raw["name"], kind, properties, source)


def _setting_name(*parts: str) -> str:
    words = []
    for part in parts:
        words += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part)
    return "_".join(w.upper() for w in words if w)


def _reference(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("referenceName"), str):
        return str(value["referenceName"])
    return None


class _Importer:
    def __init__(self, documents: list[Document]) -> None:
        self.linked: dict[str, Document] = {}
        self.datasets: dict[str, Document] = {}
        self.pipelines: dict[str, Document] = {}
        self.settings: dict[str, str] = {}
        self.report: list[str] = []
        for document in documents:
            table = {"linkedService": self.linked, "dataset": self.datasets, "pipeline": self.pipelines}[document.kind]
            if document.name in table:
                raise _error(
                    f"{document.source}: name",
                    f"duplicate {document.kind} name {document.name!r} (also in {table[document.name].source})",
                )
            table[document.name] = document

    # ---- secrets and settings ---------------------------------------------------------------------

    def secret(self, value: Any, where: str, setting: str) -> str:
        """Move a secret into the settings; return the setting's name."""
        if isinstance(value, str):
            self.settings[setting] = value
            self.report.append(f"secret moved: {where} -> app setting {setting}")
            return setting
        if isinstance(value, dict) and value.get("type") == "SecureString" and isinstance(value.get("value"), str):
            self.settings[setting] = value["value"]
            self.report.append(f"secret moved: {where} (SecureString) -> app setting {setting}")
            return setting
        if isinstance(value, dict) and value.get("type") == "AzureKeyVaultSecret":
            store = _reference(value.get("store"))
            vault = self.linked.get(store or "")
            if vault is None or vault.properties.get("type") != "AzureKeyVault":
                raise _error(f"{where}.store", f"Key Vault linked service {store!r} not found")
            base = str(vault.properties.get("typeProperties", {}).get("baseUrl", "")).rstrip("/")
            name = value.get("secretName")
            if not base or not isinstance(name, str):
                raise _error(where, "a Key Vault reference needs the vault's baseUrl and a secretName")
            self.settings[setting] = f"@Microsoft.KeyVault(SecretUri={base}/secrets/{name}/)"
            self.report.append(f"secret kept in Key Vault: {where} -> app setting {setting} (Key Vault reference)")
            return setting
        raise _error(where, "expected a string, a SecureString or an AzureKeyVaultSecret reference")

    def setting(self, value: Any, where: str, setting: str) -> str:
        """Put a non-secret value (an endpoint URL, a tenant) in the settings; return `%SETTING%`."""
        if not isinstance(value, str) or not value:
            raise _error(where, "is required")
        self.settings[setting] = value
        return f"%{setting}%"

    # ---- lookups --------------------------------------------------------------------------------

    def linked_service(self, name: str | None, where: str, kinds: tuple[str, ...]) -> Document:
        document = self.linked.get(name or "")
        if document is None:
            raise _error(where, f"linked service {name!r} not found")
        if document.properties.get("type") not in kinds:
            raise _error(
                where, f"linked service {name!r} is {document.properties.get('type')}, expected {' or '.join(kinds)}"
            )
        return document

    def dataset(self, name: str | None, where: str) -> Document:
        document = self.datasets.get(name or "")
        if document is None:
            raise _error(where, f"dataset {name!r} not found")
        return document

    def blob_of_dataset(self, document: Document) -> tuple[str, str]:
        where = f"{document.source}: properties.typeProperties"
        props = document.properties.get("typeProperties", {})
        folder = str(props.get("folderPath", "")).strip("/")
        if not folder:
            raise _error(f"{where}.folderPath", "is required")
        container, _, prefix = folder.partition("/")
        file_name = props.get("fileName")
        blob = f"{prefix}/{file_name}" if prefix and file_name else (file_name or prefix)
        self.storage(document)
        return container, str(blob or "")

    def storage(self, dataset: Document) -> None:
        name = _reference(dataset.properties.get("linkedServiceName"))
        service = self.linked_service(
            name, f"{dataset.source}: properties.linkedServiceName", ("AzureStorage", "AzureBlobStorage")
        )
        connection = service.properties.get("typeProperties", {}).get("connectionString")
        if "TrainingStorage" not in self.settings and connection is not None:
            self.secret(
                connection, f"{service.source}: typeProperties.connectionString (account key)", "TrainingStorage"
            )
        elif (
            connection is not None
            and isinstance(connection, str)
            and connection != self.settings.get("TrainingStorage")
        ):
            raise _error(
                f"{service.source}: typeProperties.connectionString", "all datasets must live in one storage account"
            )

    # ---- the mapping ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        for name, document in self.linked.items():
            if document.properties.get("type") == "AzureML" and not any(
                name in json.dumps(p.properties) for p in self.pipelines.values()
            ):
                self.report.append(f"ignored: linked service {name} ({document.source}): no pipeline uses it")
        pipelines = [self.pipeline(document) for document in self.pipelines.values()]
        if not pipelines:
            raise ConfigError("no ADF pipeline found among the given documents")
        return {"description": "Imported from Azure Data Factory by `retrain import-adf`.", "pipelines": pipelines}

    def pipeline(self, document: Document) -> dict[str, Any]:
        where = f"{document.source}: properties"
        activities = document.properties.get("activities")
        if not isinstance(activities, list) or not activities:
            raise _error(f"{where}.activities", "expected a list of activities")
        for index, activity in enumerate(activities):
            kind = activity.get("type") if isinstance(activity, dict) else None
            if kind not in KNOWN_ACTIVITIES:
                raise _error(
                    f"{where}.activities[{index}].type",
                    f"unknown activity type {kind!r}; supported: {', '.join(KNOWN_ACTIVITIES)}",
                )
        self.check_cycles(document, activities)
        batch = [(i, a) for i, a in enumerate(activities) if a["type"] == "AzureMLBatchExecution"]
        updates = [(i, a) for i, a in enumerate(activities) if a["type"] == "AzureMLUpdateResource"]
        if len(batch) != 1:
            raise _error(
                f"{where}.activities", f"expected exactly one AzureMLBatchExecution activity, found {len(batch)}"
            )
        index, training = batch[0]
        name = re.sub(r"[^a-z0-9-]+", "-", document.name.lower()).strip("-")[:40] or "pipeline"
        result: dict[str, Any] = {"name": name, "description": f"Imported from ADF pipeline {document.name!r}."}
        result.update(self.training(training, f"{where}.activities[{index}]", updates))
        result["targets"] = [self.target(a, f"{where}.activities[{i}]", result) for i, a in updates]
        result["schedule"] = self.schedule(document, where)
        self.report.append(f"mapped: pipeline {document.name} -> {name} with {len(result['targets'])} target(s)")
        return result

    def check_cycles(self, document: Document, activities: list[dict[str, Any]]) -> None:
        names = [a.get("name") for a in activities]
        edges: dict[str, set[str]] = {str(n): set() for n in names}
        producers: dict[str, str] = {}
        for activity in activities:
            for output in activity.get("outputs", []) or []:
                producers[str(_reference(output.get("name")) or output.get("name"))] = str(activity.get("name"))
        for index, activity in enumerate(activities):
            for dependency in activity.get("dependsOn", []) or []:
                upstream = dependency.get("activity") if isinstance(dependency, dict) else None
                if upstream not in edges:
                    raise _error(
                        f"{document.source}: properties.activities[{index}].dependsOn", f"unknown activity {upstream!r}"
                    )
                edges[str(activity.get("name"))].add(str(upstream))
            for item in activity.get("inputs", []) or []:
                producer = producers.get(str(item.get("name")))
                if producer and producer != activity.get("name"):
                    edges[str(activity.get("name"))].add(producer)
        state: dict[str, int] = {}

        def visit(node: str, trail: list[str]) -> None:
            if state.get(node) == 1:
                raise _error(
                    f"{document.source}: properties.activities", f"dependency cycle: {' -> '.join([*trail, node])}"
                )
            if state.get(node) == 2:
                return
            state[node] = 1
            for upstream in sorted(edges[node]):
                visit(upstream, [*trail, node])
            state[node] = 2

        for node in edges:
            visit(node, [])

    def training(
        self, activity: dict[str, Any], where: str, updates: list[tuple[int, dict[str, Any]]]
    ) -> dict[str, Any]:
        service_name = _reference(activity.get("linkedServiceName"))
        service = self.linked_service(service_name, f"{where}.linkedServiceName", ("AzureML",))
        props = service.properties.get("typeProperties", {})
        prefix = _setting_name(service.name)
        type_props = activity.get("typeProperties", {}) or {}
        inputs = self.ports(type_props, "input", where)
        outputs = self.ports(type_props, "output", where)
        if len(inputs) != 1:
            raise _error(
                f"{where}.typeProperties.webServiceInputs", f"expected exactly one training input, found {len(inputs)}"
            )
        input_name, (data_container, data_blob, data_doc) = next(iter(inputs.items()))
        model_datasets = {str(u.get("typeProperties", {}).get("trainedModelDatasetName")) for _, u in updates}
        model_port = next(
            (
                p
                for p, (_, blob, doc) in outputs.items()
                if blob.endswith(".ilearner") or (doc and doc.name in model_datasets)
            ),
            None,
        )
        if model_port is None:
            raise _error(f"{where}.typeProperties.webServiceOutputs", "no output is a trained model (.ilearner)")
        evaluation = next((p for p in outputs if p != model_port), None)
        output_container, _, model_dataset = outputs[model_port]
        self.report.append(
            f"mapped: {model_dataset.name if model_dataset else model_port} -> each run writes "
            f"{output_container}/{{pipeline}}/{{run}}/model.ilearner, so no model is ever overwritten"
        )
        parameters = type_props.get("globalParameters") or type_props.get("webServiceParameters") or {}
        for key, value in parameters.items():
            if isinstance(value, str) and value.startswith("$$"):
                self.report.append(
                    f"kept as text: globalParameters.{key} is an ADF v1 expression ({value[:40]}); replace it with a value"
                )
        external = (data_doc.properties.get("policy", {}) or {}).get("externalData", {}) if data_doc else {}
        policy = activity.get("policy", {}) or {}
        training: dict[str, Any] = {
            "mlEndpoint": self.setting(
                props.get("mlEndpoint"), f"{service.source}: typeProperties.mlEndpoint", f"{prefix}_ML_ENDPOINT"
            ),
            "apiKeySetting": self.secret(
                props.get("apiKey"), f"{service.source}: typeProperties.apiKey", f"{prefix}_API_KEY"
            ),
            "input": input_name,
            "modelOutput": model_port,
            "evaluationOutput": evaluation,
            "globalParameters": {str(k): str(v) for k, v in parameters.items()},
        }
        data: dict[str, Any] = {"container": data_container, "blob": data_blob}
        if external:
            data["externalData"] = {
                k: self.timespan(
                    external[k], f"{data_doc.source if data_doc else where}: properties.policy.externalData.{k}"
                )
                for k in ("retryInterval", "retryTimeout")
                if k in external
            }
            if "maximumRetry" in external:
                data["externalData"]["maximumRetry"] = external["maximumRetry"]
        return {
            "training": training,
            "data": data,
            "output": {"container": output_container},
            "policy": self.policy(policy, f"{where}.policy", concurrency=True),
        }

    def ports(self, type_props: dict[str, Any], kind: str, where: str) -> dict[str, tuple[str, str, Document | None]]:
        """Ports -> (container, blob, dataset) for v1 dataset names and v2 {linkedServiceName, filePath}."""
        single, plural = f"webService{kind.title()}", f"webService{kind.title()}s"
        raw: dict[str, Any] = dict(type_props.get(plural) or {})
        if type_props.get(single) is not None:
            if raw:
                raise _error(f"{where}.typeProperties", f"give {single} or {plural}, not both")
            raw = {f"{kind}1": type_props[single]}
        ports: dict[str, tuple[str, str, Document | None]] = {}
        for port, value in raw.items():
            path = f"{where}.typeProperties.{plural}.{port}"
            if isinstance(value, str):
                document = self.dataset(value, path)
                container, blob = self.blob_of_dataset(document)
                ports[port] = (container, blob, document)
            elif isinstance(value, dict) and "filePath" in value or isinstance(value, dict) and "FilePath" in value:
                file_path = str(value.get("filePath", value.get("FilePath", ""))).strip("/")
                container, _, blob = file_path.partition("/")
                service = _reference(value.get("linkedServiceName", value.get("LinkedServiceName")))
                linked = self.linked_service(service, f"{path}.linkedServiceName", ("AzureStorage", "AzureBlobStorage"))
                connection = linked.properties.get("typeProperties", {}).get("connectionString")
                if connection is not None and "TrainingStorage" not in self.settings:
                    self.secret(
                        connection, f"{linked.source}: typeProperties.connectionString (account key)", "TrainingStorage"
                    )
                ports[port] = (container, blob, None)
            else:
                raise _error(path, "expected a dataset name or {linkedServiceName, filePath}")
        return ports

    def target(self, activity: dict[str, Any], where: str, pipeline: dict[str, Any]) -> dict[str, Any]:
        props = activity.get("typeProperties", {}) or {}
        service = self.linked_service(
            _reference(activity.get("linkedServiceName")), f"{where}.linkedServiceName", ("AzureML",)
        )
        model_name = props.get("trainedModelName")
        if not isinstance(model_name, str) or not model_name:
            raise _error(f"{where}.typeProperties.trainedModelName", "is required")
        if "trainedModelDatasetName" in props:
            dataset = self.dataset(props["trainedModelDatasetName"], f"{where}.typeProperties.trainedModelDatasetName")
            if dataset.name not in [_reference(i.get("name")) for i in activity.get("inputs", []) or []]:
                self.report.append(
                    f"note: {where}: {dataset.name} is not listed in the activity's inputs (ADF v1 requires it)"
                )
        for output in activity.get("outputs", []) or []:
            self.report.append(
                f"ignored: output dataset {output.get('name')} of {activity.get('name')}: it only drove ADF's scheduler"
            )
        type_props = service.properties.get("typeProperties", {})
        prefix = _setting_name(service.name)
        endpoint = type_props.get("updateResourceEndpoint")
        if not isinstance(endpoint, str):
            raise _error(
                f"{service.source}: typeProperties.updateResourceEndpoint", "is required for AzureMLUpdateResource"
            )
        parts = urlsplit(endpoint)
        is_arm = (
            parts.netloc.lower().startswith("management.azure.com")
            or "/providers/microsoft.machinelearning/webservices/" in parts.path.lower()
        )
        target: dict[str, Any] = {
            "name": re.sub(r"[^A-Za-z0-9-]+", "-", service.name)[:40],
            "kind": "arm" if is_arm else "classic",
            "updateResourceEndpoint": self.setting(
                endpoint,
                f"{service.source}: typeProperties.updateResourceEndpoint",
                f"{prefix}_UPDATE_RESOURCE_ENDPOINT",
            ),
            "trainedModelName": model_name,
            "policy": self.policy(activity.get("policy", {}) or {}, f"{where}.policy", concurrency=False),
        }
        if is_arm:
            target["tenant"] = self.setting(
                type_props.get("tenant"), f"{service.source}: typeProperties.tenant", f"{prefix}_TENANT"
            )
            target["servicePrincipalId"] = self.setting(
                type_props.get("servicePrincipalId"),
                f"{service.source}: typeProperties.servicePrincipalId",
                f"{prefix}_SERVICE_PRINCIPAL_ID",
            )
            target["servicePrincipalKeySetting"] = self.secret(
                type_props.get("servicePrincipalKey"),
                f"{service.source}: typeProperties.servicePrincipalKey",
                f"{prefix}_SERVICE_PRINCIPAL_KEY",
            )
            self.settings.setdefault("AZURE_AUTHORITY_HOST", DEFAULT_AUTHORITY)
            target["authorityHost"] = "%AZURE_AUTHORITY_HOST%"
            self.report.append(f"mapped: {service.name} -> ARM web service target, updated with a service principal")
        else:
            target["apiKeySetting"] = self.secret(
                type_props.get("apiKey"), f"{service.source}: typeProperties.apiKey", f"{prefix}_API_KEY"
            )
            self.report.append(f"mapped: {service.name} -> classic endpoint target (Update Resource PATCH)")
        return target

    def policy(self, raw: dict[str, Any], where: str, *, concurrency: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if "timeout" in raw:
            result["timeout"] = self.timespan(raw["timeout"], f"{where}.timeout")
        if "retry" in raw:
            result["retry"] = raw["retry"]
        if "retryIntervalInSeconds" in raw:
            result["retryIntervalInSeconds"] = raw["retryIntervalInSeconds"]
        if concurrency:
            for key in ("concurrency", "executionPriorityOrder"):
                if key in raw:
                    result[key] = raw[key]
        elif raw.get("concurrency") not in (None, 1):
            self.report.append(
                f"note: {where}.concurrency {raw['concurrency']} ignored: one run per pipeline at a time"
            )
        return result

    def timespan(self, value: Any, where: str) -> str:
        try:
            return format_timespan(parse_timespan(value))
        except ValueError as exc:
            raise _error(where, str(exc)) from None

    def schedule(self, document: Document, where: str) -> dict[str, Any]:
        schedule: dict[str, Any] = {"enabled": not document.properties.get("isPaused", False)}
        for key in ("start", "end"):
            value = document.properties.get(key)
            if value is not None:
                try:
                    datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                except ValueError:
                    raise _error(f"{where}.{key}", f"{value!r} is not an ISO 8601 date-time") from None
                schedule[key] = value
        availability = self.availability(document)
        if availability:
            frequency, interval = availability
            cron = _cron(frequency, interval, schedule.get("start"))
            previous = self.settings.get("RETRAIN_SCHEDULE")
            if previous and previous != cron:
                self.report.append(f"note: pipelines have different schedules; RETRAIN_SCHEDULE keeps {previous}")
            else:
                self.settings["RETRAIN_SCHEDULE"] = cron
                self.report.append(f"mapped: availability {frequency}/{interval} -> RETRAIN_SCHEDULE {cron!r}")
        end = schedule.get("end")
        if end and datetime.fromisoformat(str(end).replace("Z", "+00:00")).timestamp() < datetime.now().timestamp():
            self.report.append(
                f"note: the pipeline's active period ended at {end}; the timer will not start it until schedule.end is moved"
            )
        return schedule

    def availability(self, document: Document) -> tuple[str, int] | None:
        names = [
            _reference(o.get("name")) for a in document.properties["activities"] for o in a.get("outputs", []) or []
        ]
        for name in names:
            dataset = self.datasets.get(name or "")
            availability = dataset.properties.get("availability") if dataset else None
            if isinstance(availability, dict) and "frequency" in availability:
                return str(availability["frequency"]), int(availability.get("interval", 1))
        return None


def _cron(frequency: str, interval: int, start: str | None) -> str:
    moment = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else datetime(2000, 1, 2)
    every = f"*/{interval}" if interval > 1 else "*"
    crons = {
        "Minute": f"0 {every} * * * *",
        "Hour": f"0 {moment.minute} {every} * * *",
        "Day": f"0 {moment.minute} {moment.hour} {every} * *",
        "Week": f"0 {moment.minute} {moment.hour} * * {(moment.weekday() + 1) % 7}",
        "Month": f"0 {moment.minute} {moment.hour} {moment.day} {every} *",
    }
    if frequency not in crons:
        raise ConfigError(f"availability frequency {frequency!r} is not one of {', '.join(crons)}")
    return crons[frequency]


def import_adf(paths: Iterable[Path]) -> ImportResult:
    """Import ADF documents; the result's definition is validated against our own loader."""
    importer = _Importer(read_documents(paths))
    definition = importer.run()
    parse_definitions(definition, importer.settings, source="imported definition")
    return ImportResult(definition, importer.settings, importer.report)
