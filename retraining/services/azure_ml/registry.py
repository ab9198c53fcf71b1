"""The workspace's model registry: each candidate that passed its gate becomes a new version; the champion is a tag.

Registration reads the model's `nextVersion`, PUTs it and requires 201 (created). Two writers can
read the same `nextVersion`: a 400 (another artifact holds that version) means read again and
take the next one. A 200 means the version already held this very artifact, which only an
earlier attempt of the same run can have written. Before all that, a version tagged with the run
id is looked for, so registering a run again gives the same version. Versions are never
overwritten, and a version's tags and properties say where it came from.

The champion tag moves after a successful rollout: first onto the new champion, then off the
others, so some version always carries it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from ...definitions.azure_ml import AmlCommandTraining
from ...errors import ResponseFormatError, ServiceError
from ...models import ModelArtifact
from ..base import Provenance
from .workspace import WorkspaceClient, properties

RUN_TAG = "retrain.run_id"
CHAMPION_TAG = "retrain.champion"
ATTEMPTS = 6
MUTABLE = ("modelUri", "modelType", "description", "jobName", "tags", "properties", "stage", "isArchived", "flavors")
METRIC_TAGS = 20


def versions(client: WorkspaceClient, name: str, tag: str) -> list[dict[str, Any]]:
    """Versions of model `name` carrying `tag` (`key` or `key=value`), newest first."""
    query = f"&tags={quote(tag, safe='=')}&$orderBy={quote('createdtime desc')}"
    url: str | None = client.url("models", name, "versions", query=query)
    found: list[dict[str, Any]] = []
    while url and len(found) < 1000:
        body = client.call("GET", url, ok=(200,)).json()
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise ResponseFormatError(f"model {name}: the version list is not a list")
        found += [v for v in body["value"] if isinstance(v, dict)]
        link = body.get("nextLink")
        url = link if isinstance(link, str) and link.startswith(client.workspace.management_endpoint) else None
    return found


def _body(config: AmlCommandTraining, model: ModelArtifact, provenance: Provenance) -> dict[str, Any]:
    lineage = {
        "retrain.pipeline": provenance.pipeline,
        RUN_TAG: provenance.run_id,
        "retrain.job": provenance.job_id,
        "retrain.data": provenance.data,
        "retrain.data_etag": provenance.data_etag or "",
        "retrain.sha256": model.sha256,
        "retrain.size": str(model.size),
        "retrain.trigger": provenance.trigger[:256],
    }
    metrics = {f"metric.{k}"[:128]: f"{v:.6g}" for k, v in list(model.metrics.items())[:METRIC_TAGS]}
    return {
        "properties": {
            "modelUri": model.location,
            "modelType": "custom_model",
            "jobName": provenance.job_id,
            "description": f"Run {provenance.run_id} of pipeline {provenance.pipeline}, trained on {provenance.data}",
            "tags": lineage | metrics,
            "properties": lineage | {"retrain.metrics": json.dumps(dict(model.metrics), sort_keys=True)[:4000]},
        }
    }


def register(
    client: WorkspaceClient, config: AmlCommandTraining, model: ModelArtifact, provenance: Provenance
) -> ModelArtifact:
    name = config.model_name
    for earlier in versions(client, name, f"{RUN_TAG}={provenance.run_id}"):
        if properties(earlier, f"model {name}").get("modelUri") == model.location:
            return replace(model, version=str(earlier.get("name")))
    body = _body(config, model, provenance)
    for _ in range(ATTEMPTS):
        container = client.get("models", name)
        version = str(properties(container, f"model {name}").get("nextVersion") or "1") if container else "1"
        try:
            status, answer, _ = client.put(("models", name, "versions", version), body)
        except ServiceError as exc:
            if exc.status == 400:
                continue  # another writer took this version: read nextVersion again
            raise
        if status == 201 or properties(answer, f"model {name} version {version}").get("modelUri") == model.location:
            return replace(model, version=version)
    raise ServiceError(
        f"model {name}: no free version after {ATTEMPTS} attempts (other writers keep taking them)",
        status=409,
        code="VersionConflict",
        service="Azure ML",
    )


def _retag(client: WorkspaceClient, name: str, found: dict[str, Any], tags: dict[str, str]) -> None:
    props = properties(found, f"model {name}")
    body = {"properties": {k: props[k] for k in MUTABLE if k in props} | {"tags": tags}}
    client.put(("models", name, "versions", str(found.get("name"))), body)


def crown(client: WorkspaceClient, name: str, model: ModelArtifact) -> None:
    if model.version is None:
        raise ResponseFormatError("only a registered model can be crowned")
    current = client.get("models", name, "versions", model.version)
    if current is None:
        raise ResponseFormatError(f"model {name} version {model.version} is not in the registry")
    tags = properties(current, f"model {name}").get("tags") or {}
    if tags.get(CHAMPION_TAG) != "true":
        _retag(client, name, current, dict(tags) | {CHAMPION_TAG: "true"})
    for other in versions(client, name, CHAMPION_TAG):
        if str(other.get("name")) != model.version:
            other_tags = dict(properties(other, f"model {name}").get("tags") or {})
            other_tags.pop(CHAMPION_TAG, None)
            _retag(client, name, other, other_tags)
