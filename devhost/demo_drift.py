"""The demo's drift part: a pipeline that retrains only when the data says so.

`drift-demo` is weekly-retrain with `retrainWhen` (drift PSI 0.2, label shift 0.1, a quarter more rows), no targets
and no gate, started over HTTP. Its first run has no champion and trains (keeping its data's profile); a run on the
same data is skipped, with its scores and thresholds; a run on data whose two features moved trains, naming them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import requests

from .datasets import breast_cancer
from .progress import Follower
from .stack import LocalStack

PIPELINE = "drift-demo"
CONTAINER = "labeledexamples"
RETRAIN_WHEN = {"drift": {"psi": 0.2}, "labelShift": 0.1, "newRows": 0.25}
SHIFTED = {"mean_radius": 1.6, "mean_texture": 1.4}  # feature -> factor


def drift_pipeline(definitions: dict[str, Any]) -> dict[str, Any]:
    """`drift-demo`, from the definitions' weekly-retrain."""
    base = next(p for p in definitions["pipelines"] if p["name"] == "weekly-retrain")
    pipeline = copy.deepcopy(base) | {"name": PIPELINE, "targets": [], "gate": {}, "schedule": {"enabled": False}}
    pipeline["retrainWhen"] = RETRAIN_WHEN
    pipeline["data"] = pipeline["data"] | {"blob": f"{PIPELINE}/week-48.arff", "watch": "never/*"}
    return pipeline


def _shifted() -> bytes:
    table = breast_cancer()
    at = {table.names.index(name): factor for name, factor in SHIFTED.items()}
    rows = tuple(
        tuple(round(float(str(v)) * at[i], 5) if i in at else v for i, v in enumerate(row)) for row in table.rows
    )
    return type(table)(table.names, rows, table.classes).to_arff()


def run_drift_demo(stack: LocalStack, say: Callable[[str], None]) -> list[tuple[str, bool]]:
    assert stack.host is not None
    key, base_url = stack.host.function_key, stack.host.base_url
    blobs = stack.blob_service
    blobs.get_blob_client(CONTAINER, f"{PIPELINE}/week-48.arff").upload_blob(breast_cancer().to_arff(), overwrite=True)
    blobs.get_blob_client(CONTAINER, f"{PIPELINE}/week-49.arff").upload_blob(_shifted(), overwrite=True)

    def run(title: str, body: dict[str, Any]) -> dict[str, Any]:
        say(f"\n== {title}")
        response = requests.post(
            f"{base_url}/api/pipelines/{PIPELINE}/runs",
            json=body,
            headers={"x-functions-key": key},
            timeout=60,
        )
        follower = Follower(response.json()["statusUri"], key)
        record = follower.record(follower.follow(timeout_s=120)) or {}
        drift = record.get("drift") or {}
        say(f"   {record.get('status')}: {'; '.join(drift.get('reasons') or [record.get('reason') or ''])}")
        for condition in drift.get("conditions") or []:
            score, threshold = condition["score"], condition["threshold"]
            shown = "n/a" if score is None else f"{score:.4f}"
            limit = "reported only" if threshold is None else f"threshold {threshold:g}"
            say(f"     {condition['name']:<11} {shown:>8}  {limit}{'  HELD' if condition['held'] else ''}")
        top = ", ".join(f"{f['name']} (PSI {f['psi']:.3f})" for f in (drift.get("features") or [])[:3])
        if top:
            say(f"     most drifting: {top}")
        if drift.get("drifting"):
            say(f"     drifting (reached the threshold): {', '.join(drift['drifting'])}")
        return record

    say(f"\n== Drift-aware retraining: pipeline {PIPELINE}, retrainWhen {RETRAIN_WHEN}")
    first = run("Drift 1: no champion yet (trains, keeps the profile of its data)", {})
    same = run("Drift 2: the same data again", {})
    moved = run(
        "Drift 3: mean_radius and mean_texture moved (x1.6, x1.4)",
        {"trainingBlob": f"{CONTAINER}/{PIPELINE}/week-49.arff"},
    )
    drift = moved.get("drift") or {}
    return [
        ("drift 1 (no champion) trained and kept its data's profile", first.get("status") == "Succeeded"),
        (
            "drift 2 (unchanged data) was skipped with its scores, no job submitted",
            same.get("status") == "Skipped"
            and not same.get("job_id")
            and bool((same.get("drift") or {}).get("conditions")),
        ),
        (
            "drift 3 (shifted data) trained, naming the drifting features",
            moved.get("status") == "Succeeded" and set(drift.get("drifting") or []) == set(SHIFTED),
        ),
    ]
