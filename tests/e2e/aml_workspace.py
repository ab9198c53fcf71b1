"""The Azure ML workspace as the e2e tests read it: the aml-retrain pipeline's endpoints, models and records."""

from __future__ import annotations

import time
from typing import Any

from devhost.stack import LocalStack
from tests.emulator.aml import Aml

from .helpers import run_records

PIPELINE = "aml-retrain"
MODEL = "breast-cancer"
ONLINE, BATCH = "retrain-online", "retrain-batch"


def versions(aml: Aml) -> dict[str, dict[str, Any]]:
    body = aml.ok("GET", f"/models/{MODEL}/versions")
    return {v["name"]: v["properties"] for v in body["value"]}


def champion(aml: Aml) -> str | None:
    crowned = [name for name, props in versions(aml).items() if props["tags"].get("retrain.champion") == "true"]
    assert len(crowned) <= 1, crowned
    return crowned[0] if crowned else None


def endpoint(aml: Aml, batch: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = aml.ok(
        "GET", f"/{'batchEndpoints' if batch else 'onlineEndpoints'}/{BATCH if batch else ONLINE}"
    )["properties"]
    return props


def _listed(aml: Aml) -> list[dict[str, Any]]:
    """The online endpoint's deployments, whole (name, tags, properties)."""
    listed: list[dict[str, Any]] = aml.ok("GET", f"/onlineEndpoints/{ONLINE}/deployments")["value"]
    return listed


def deployments(aml: Aml) -> dict[str, dict[str, Any]]:
    return {d["name"]: d["properties"] for d in _listed(aml)}


def created_by_the_pipeline(aml: Aml) -> list[str]:
    """The online deployments the pipeline's rollouts made (their tag; the seed's `blue` and other pipelines' are
    not its own, and its clean-up never deletes them)."""
    return [d["name"] for d in _listed(aml) if (d.get("tags") or {}).get("retrain.pipeline") == PIPELINE]


def target(record: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in record["targets"] if t["target"] == name)
    return found


def interrupted_record(stack: LocalStack, run_id: str) -> dict[str, Any]:
    """The cut-off run's record: Interrupted, or (when the run saw its rollout end before it was ended itself) its
    own, with that target's state not known."""
    (record,) = [r for r in run_records(stack, PIPELINE) if r["run_id"] == run_id]
    if record["status"] != "Interrupted":
        assert target(record, "online")["state"] == "unknown", record
    else:
        assert "ended without finishing" in record["reason"], record
    return record


def canary_of(aml: Aml, serving: dict[str, int], timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        canary = next((d for d, share in endpoint(aml)["traffic"].items() if share and d not in serving), None)
        if canary is not None:
            return canary
        assert time.monotonic() < deadline, "the canary never took traffic"
        time.sleep(0.02)
