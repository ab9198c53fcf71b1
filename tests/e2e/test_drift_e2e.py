"""Drift-aware retraining end to end: devhost runs function_app.py against Azurite and the emulator.

For a Studio (classic) pipeline (`drift-studio`, ARFF) and an Azure ML pipeline (`drift-aml`, CSV), both with
`retrainWhen: {"drift": {"psi": 0.2}, "labelShift": 0.1, "newRows": 0.25}` (tests/e2e/helpers.py), one run after
the other: no champion profile yet (train, and keep the profile); unchanged data skipped with its scores; shifted
features retrained, naming them; a shifted label retrained; new rows retrained; a column whose kind changed fails
the run naming it; and, on `{prefix}-age` (`maxAge` one second), an old champion forcing a retrain of the same data.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.operate import runs_table
from devhost.stack import LocalStack
from emulator.ilearner import write_arff

from .helpers import api, run_to_end
from .receiver import Receiver

pytestmark = pytest.mark.e2e

BACKENDS = {"drift-studio": ("labeledexamples", "arff"), "drift-aml": ("mldata", "csv")}
SHIFTED = {"mean_radius": lambda v: v * 1.6, "mean_texture": lambda v: v + 8.0}

Rows = list[tuple[Any, ...]]


def encoded(rows: Rows, ext: str, names: tuple[str, ...] | None = None) -> bytes:
    table = breast_cancer()
    names = names or table.names
    if ext == "arff":
        return write_arff("breast_cancer", names, rows, table.classes).encode()
    return ("\n".join([",".join(names)] + [",".join(str(v) for v in row) for row in rows]) + "\n").encode()


def upload(stack: LocalStack, container: str, name: str, data: bytes) -> str:
    blobs = stack.blob_service
    if not blobs.get_container_client(container).exists():
        blobs.create_container(container)
    blobs.get_blob_client(container, name).upload_blob(data, overwrite=True)
    return f"{container}/{name}"


def shifted(rows: Rows) -> Rows:
    index = {n: i for i, n in enumerate(breast_cancer().names)}
    out = []
    for row in rows:
        values = list(row)
        for name, change in SHIFTED.items():
            values[index[name]] = round(change(float(values[index[name]])), 5)
        out.append(tuple(values))
    return out


def flipped(rows: Rows) -> Rows:
    """A quarter of the benign rows labelled malignant: the label moves (TVD about 0.16), the features do not."""
    benign = 0
    out = []
    for row in rows:
        if row[-1] == "benign":
            benign += 1
            if benign % 4 == 0:
                row = (*row[:-1], "malignant")
        out.append(row)
    return out


def conditions(record: dict[str, Any]) -> dict[str, tuple[float | None, float | None, bool]]:
    return {c["name"]: (c["score"], c["threshold"], c["held"]) for c in record["drift"]["conditions"]}


def profile_kept(stack: LocalStack, pipeline: str, run_id: str) -> dict[str, Any]:
    blob = stack.blob_service.get_blob_client("runrecords", f"{pipeline}/profiles/{run_id}.json")
    profile: dict[str, Any] = json.loads(blob.download_blob().readall())
    return profile


def jobs(emulator_url: str) -> int:
    state = requests.get(f"{emulator_url}/_emulator/state", timeout=10).json()
    return len(state.get("jobs") or []) + len(state.get("azureMl", {}).get("jobs") or [])


@pytest.mark.parametrize("pipeline", list(BACKENDS))
def test_the_data_decides_whether_a_run_trains(
    stack: LocalStack, emulator_url: str, webhook: Receiver, pipeline: str
) -> None:
    container, ext = BACKENDS[pipeline]
    base = list(breast_cancer().rows)
    blob = upload(stack, container, f"{pipeline}/data.{ext}", encoded(base, ext))

    # no champion, so no profile yet: train, and keep the profile of the data
    first = run_to_end(stack, pipeline)
    assert first["status"] == "Succeeded", first["reason"]
    assert first["drift"]["train"] and first["drift"]["reasons"] == ["no champion yet: train"]
    assert first["drift"]["profile"] == f"runrecords/{pipeline}/profiles/{first['run_id']}.json"
    profile = profile_kept(stack, pipeline, first["run_id"])
    assert profile["rows"] == len(base) == first["drift"]["rows"] and profile["label"]["name"] == "class"

    # the same data again: skipped, with every score and the threshold it was held to; no job, no target
    before = jobs(emulator_url)
    same = run_to_end(stack, pipeline)
    assert same["status"] == "Skipped" and same["job_id"] is None and same["targets"] == []
    assert same["reason"].startswith("no condition held: PSI")
    scores = conditions(same)
    assert {k: scores[k] for k in ("drift.psi", "labelShift", "newRows")} == {
        "drift.psi": (0.0, 0.2, False),
        "labelShift": (0.0, 0.1, False),
        "newRows": (0.0, 0.25, False),
    }
    assert scores["drift.ks"][0] < 0.001 and scores["drift.ks"][1] is None  # no ks threshold: reported only
    assert scores["maxAge"][1] is None and scores["maxAge"][0] < 1  # the champion's age in days, reported only
    assert same["drift"]["reference_run"] == first["run_id"] and same["drift"]["profile"] is None
    assert jobs(emulator_url) == before

    # two features shifted: trained, naming exactly those two
    moved = shifted(base)
    result = run_to_end(
        stack, pipeline, {"trainingBlob": upload(stack, container, f"{pipeline}/shifted.{ext}", encoded(moved, ext))}
    )
    assert result["status"] == "Succeeded", result["reason"]
    assert set(result["drift"]["drifting"]) == set(SHIFTED)
    assert [f["name"] for f in result["drift"]["features"][:2]] == sorted(
        SHIFTED, key=lambda n: -next(f["psi"] for f in result["drift"]["features"] if f["name"] == n)
    )
    held = conditions(result)
    assert held["drift.psi"][2] and held["drift.psi"][0] >= 0.2 and not held["labelShift"][2]
    assert any("PSI on 'mean_" in r for r in result["drift"]["reasons"])
    if pipeline == "drift-studio":  # its webhook wants drift_detected: sent before the job, naming the features
        (sent,) = [d for d in webhook.delivered(pipeline, "drift_detected", result["run_id"]) if d.answered == 200]
        body = json.loads(sent.body)
        assert body["status"] == "Training" and all(name in body["reason"] for name in SHIFTED)

    # the label shifted (against the new champion, trained on the shifted data): trained for the label alone
    relabelled = flipped(moved)
    result = run_to_end(
        stack, pipeline, {"trainingBlob": upload(stack, container, f"{pipeline}/label.{ext}", encoded(relabelled, ext))}
    )
    assert result["status"] == "Succeeded", result["reason"]
    held = conditions(result)
    assert held["labelShift"][2] and held["labelShift"][0] > 0.1 and not held["drift.psi"][2]
    assert result["drift"]["drifting"] == [] and result["drift"]["reasons"][0].startswith("label shift (TVD)")

    # half as many rows again (every other row once more): trained for the growth
    grown = relabelled + relabelled[::2]
    result = run_to_end(
        stack, pipeline, {"trainingBlob": upload(stack, container, f"{pipeline}/grown.{ext}", encoded(grown, ext))}
    )
    assert result["status"] == "Succeeded", result["reason"]
    held = conditions(result)
    assert held["newRows"][2] and abs(held["newRows"][0] - 0.5) < 0.01 and not held["drift.psi"][2]

    # a numeric column turned into categories: the run fails, naming it; nothing trains
    names = breast_cancer().names
    at = names.index("mean_radius")
    retyped = [(*r[:at], "big" if float(r[at]) > 14 else "small", *r[at + 1 :]) for r in grown]
    before = jobs(emulator_url)
    failed = run_to_end(
        stack, pipeline, {"trainingBlob": upload(stack, container, f"{pipeline}/retyped.csv", encoded(retyped, "csv"))}
    )
    assert failed["status"] == "Failed" and failed["job_id"] is None
    assert "column 'mean_radius' changed kind: numeric -> categorical" in failed["reason"]
    assert jobs(emulator_url) == before

    # the champion's profile lost (a champion older than the drift check): train, and keep this run's profile
    champion = stack.blob_service.get_blob_client("runrecords", f"{pipeline}/serving.json").download_blob().readall()
    champion_run = json.loads(champion)["champion"]["run_id"]
    stack.blob_service.get_blob_client("runrecords", f"{pipeline}/profiles/{champion_run}.json").delete_blob()
    result = run_to_end(stack, pipeline, {"trainingBlob": f"{container}/{pipeline}/grown.{ext}"})
    assert result["status"] == "Succeeded", result["reason"]
    assert result["drift"]["reasons"] == ["no profile of the champion's data to compare with: train"]
    assert profile_kept(stack, pipeline, result["run_id"])["rows"] == len(grown)
    assert blob.endswith(f"/data.{ext}")

    # the page shows why each run trained or was skipped, and plots the drift with its threshold; so does the CLI
    assert stack.host is not None
    html = requests.get(
        f"{stack.host.base_url}/api/status/{pipeline}", params={"code": stack.host.function_key}, timeout=30
    ).text
    assert f'data-run="{same["run_id"]}" data-status="Skipped"' in html and "skipped: no condition held" in html
    assert "trained: PSI on &#39;mean_" in html and "drifting: mean_" in html
    assert 'data-metric="PSI mean_radius"' in html and "threshold 0.2" in html
    listing = runs_table(api(stack, f"pipelines/{pipeline}/runs").json())
    assert "skipped: no condition held" in listing and "trained: label shift (TVD)" in listing


@pytest.mark.parametrize("pipeline", list(BACKENDS))
def test_an_old_champion_forces_a_retrain_of_the_same_data(stack: LocalStack, pipeline: str) -> None:
    container, ext = BACKENDS[pipeline]
    aged = f"{pipeline}-age"
    upload(stack, container, f"{aged}/data.{ext}", encoded(list(breast_cancer().rows), ext))
    first = run_to_end(stack, aged)
    assert first["status"] == "Succeeded", first["reason"]
    time.sleep(1.0)
    again = run_to_end(stack, aged)
    assert again["status"] == "Succeeded", again["reason"]
    held = conditions(again)
    assert held["maxAge"][2] and not held["drift.psi"][2] and held["drift.psi"][0] == 0.0
    assert again["drift"]["reasons"][0].startswith("champion's age in days")
