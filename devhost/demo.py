"""`retrain demo`: the whole system on this machine, start to finish, with proof at the end.

1. start Azurite, the Studio emulator and devhost (running function_app.py) on free ports;
2. upload a real labelled dataset (scikit-learn's breast-cancer set, as ARFF like the seed's);
3. publish an initial model trained on 40 rows, and show the scoring endpoint's predictions;
4. retrain through the manual HTTP start, then through a new blob arriving, showing each phase;
5. summarise: jobs, polls, durations, metrics, which model each endpoint serves, and whether the
   predictions now come from the new model;
5b. drift-aware retraining (`demo_drift`): a run on unchanged data is skipped with its scores, one on
   shifted data trains, naming the features that moved;
6. the same on Azure ML (v2) (`demo_aml`): a command job, a registered version, a canary rollout
   with its traffic shares, then an unhealthy deployment rolled back while the endpoint answers.
Exit 0 only if every check held.

The status page's address is printed when devhost is up and again at the end, with a copy of the
pipeline's page as it was when the demo ended (the stack stops with the demo; `retrain serve`
keeps one up).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import requests

from retraining.queue import request_id_of

from .datasets import breast_cancer
from .demo_aml import run_aml_demo
from .demo_drift import drift_pipeline, run_drift_demo
from .progress import Follower
from .stack import LocalStack, local_definitions

DATA_CONTAINER = "labeledexamples"
SAMPLE_ROWS = 8


def _print(text: str = "") -> None:
    print(text, flush=True)


def _rrs(stack: LocalStack, endpoint_name: str) -> tuple[str, list[list[Any]]]:
    endpoint = next(e for e in stack.services["webServices"][1]["endpoints"] if e["name"] == endpoint_name)
    names, values = breast_cancer().features(len(breast_cancer().rows))
    response = requests.post(
        endpoint["rrsEndpoint"],
        json={"Inputs": {"input1": {"ColumnNames": names, "Values": values}}},
        headers={"Authorization": f"Bearer {endpoint['apiKey']}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.headers["x-ms-emulator-model-version"], response.json()["Results"]["output1"]["value"]["Values"]


def _accuracy(rows: list[list[Any]]) -> float:
    labels = [row[-1] for row in breast_cancer().rows]
    return sum(r[-2] == label for r, label in zip(rows, labels, strict=True)) / len(labels)


def _show_predictions(title: str, version: str, rows: list[list[Any]]) -> None:
    labels = [row[-1] for row in breast_cancer().rows]
    _print(f"{title} (model {version}, accuracy on all {len(rows)} rows: {_accuracy(rows):.1%})")
    _print("    row  actual      predicted   P(malignant)")
    for i in range(SAMPLE_ROWS):
        _print(f"    {i:>3}  {labels[i]:<10}  {rows[i][-2]:<10}  {float(rows[i][-1]):.3f}")


def _served(stack: LocalStack) -> dict[str, str | None]:
    assert stack.emulator is not None
    state = requests.get(f"{stack.emulator.http_base}/_emulator/state", timeout=10).json()
    served = {e["endpoint"]: e["model_version"] for e in state["endpoints"]}
    served.update({a["name"]: a["model_version"] for a in state["arm_web_services"]})
    return served


def run_demo(workdir: Path | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    checks: list[tuple[str, bool]] = []
    began = time.monotonic()
    workdir = workdir or Path(".devhost") / f"demo-{int(time.time())}"
    workdir.mkdir(parents=True, exist_ok=True)
    definitions = workdir / "pipelines.json"
    local = local_definitions()
    local["pipelines"].append(drift_pipeline(local))
    definitions.write_text(json.dumps(local, indent=2))
    _print("== Starting Azurite, the emulator (Studio classic and Azure ML) and devhost (function_app.py) ...")
    with LocalStack(workdir, pipelines_file=definitions, blob_poll_s=0.3) as stack:
        assert stack.host is not None and stack.emulator is not None and stack.azurite is not None
        _print(f"   Azurite   {stack.azurite.blob_endpoint}")
        _print(f"   emulator  {stack.emulator.http_base} (TLS {stack.emulator.https_base})")
        _print(f"   devhost   {stack.host.base_url}  ({len(stack.host.app.all)} functions from function_app.py)")
        page_url = f"{stack.host.base_url}/api/status/weekly-retrain?code={stack.host.function_key}"
        _print(f"   status page  {page_url}")

        table = breast_cancer()
        blobs = stack.blob_service
        seeded = stack.load_sample_data(DATA_CONTAINER)
        _print(
            f"\n== Uploaded {DATA_CONTAINER}/labeledexamples.arff: {len(table.rows)} labelled rows, {len(table.names) - 1} features;"
            f" published an initial model trained on 40 rows"
        )
        version_before, rows_before = _rrs(stack, "endpoint2")
        _print()
        _show_predictions("== Scoring endpoint2 with the initial model", version_before, rows_before)

        key = stack.host.function_key
        runs: list[dict[str, Any]] = []
        _print("\n== Retrain 1: manual HTTP start  (POST /api/pipelines/weekly-retrain/runs)")
        response = requests.post(
            f"{stack.host.base_url}/api/pipelines/weekly-retrain/runs",
            json={},
            headers={"x-functions-key": key},
            timeout=60,
        )
        checks.append(("HTTP start answered 202", response.status_code == 202))
        follower = Follower(response.json()["statusUri"], key)
        first = follower.record(follower.follow(timeout_s=300)) or {}
        runs.append(first)

        _print("\n== Retrain 2: new training data arrives  (blob labeledexamples/incoming/week-48.arff)")
        uploaded = blobs.get_blob_client(DATA_CONTAINER, "incoming/week-48.arff").upload_blob(table.to_arff())
        blob_key = f"blob:{DATA_CONTAINER}/incoming/week-48.arff:{uploaded['etag'].strip(chr(34))}"
        follower = Follower(
            f"{stack.host.base_url}/api/pipelines/weekly-retrain/requests/{request_id_of(blob_key)}", key
        )
        second = follower.record(follower.follow(timeout_s=300, appear_within_s=30)) or {}
        runs.append(second)

        version_after, rows_after = _rrs(stack, "endpoint2")
        served = _served(stack)
        _print()
        _show_predictions("== Scoring endpoint2 after retraining", version_after, rows_after)

        _print("\n== Summary")
        _print(
            "   trigger  outcome     job                               polls  job time  run time  AUC     Accuracy  model"
        )
        for run in runs:
            job = run.get("job") or {}
            metrics = (run.get("model") or {}).get("metrics", {})
            run_time = sum(run.get("phases", {}).values())
            _print(
                f"   {run['request']['trigger']['kind']:<7}  {run['status']:<10}  {run.get('job_id') or '-':<32}  "
                f"{job.get('polls', 0):>5}  {job.get('elapsed_s', 0):>7.1f}s  {run_time:>7.1f}s  "
                f"{metrics.get('AUC', 0):.4f}  {metrics.get('Accuracy', 0):.4f}    {(run.get('model') or {}).get('sha256', '-')[:12]}"
            )
        newest = (second.get("model") or {}).get("sha256", "")[:12]
        _print("\n   endpoint                 serves model   (initial model was " + seeded + ")")
        for name, version in served.items():
            note = "newest retrained model" if version == newest else ("initial model" if version == seeded else "")
            _print(f"   {name:<24} {version or '-':<13}  {note}")

        checks += [
            (
                "retrain 1 (HTTP) succeeded and updated every target",
                first["status"] == "Succeeded" and all(t["updated"] for t in first["targets"]),
            ),
            (
                "retrain 2 (blob arrival) trained on the new blob",
                second["request"]["trigger"]["kind"] == "blob"
                and second["request"]["training_blob"] == f"{DATA_CONTAINER}/incoming/week-48.arff",
            ),
            (
                "retrain 2 succeeded and updated every target",
                second["status"] == "Succeeded" and all(t["updated"] for t in second["targets"]),
            ),
            (
                "endpoint2 and myWebService serve the newest model",
                served.get("endpoint2") == newest == served.get("myWebService"),
            ),
            ("RRS answers come from the newest model", version_after == newest != version_before),
            ("the predictions changed", [r[-2:] for r in rows_after] != [r[-2:] for r in rows_before]),
            ("the default endpoint was left alone", served.get("default") == seeded),
        ]
        checks += run_drift_demo(stack, _print)
        checks += run_aml_demo(stack, _print)
        snapshot = _save_page(stack, page_url, workdir / "status-weekly-retrain.html")
        checks.append(
            (
                "the status page shows both runs",
                all(f'id="run-{r.get("run_id")}"' in snapshot.read_text() for r in runs),
            )
        )
    _print("\n== Checks")
    for name, ok in checks:
        _print(f"   [{'ok' if ok else 'FAILED'}] {name}")
    passed = all(ok for _, ok in checks)
    _print(
        f"\ndemo {'passed' if passed else 'FAILED'} in {time.monotonic() - began:.1f}s; everything it started is stopped."
    )
    _print(f"\nStatus page (served while the demo ran): {page_url}")
    _print(f"  as it was at the end: {snapshot}")
    _print("  live: `.venv/bin/retrain serve`, then open the status page address it prints")
    return 0 if passed else 1


def _save_page(stack: LocalStack, url: str, path: Path) -> Path:
    """The pipeline's page as the demo left it, without its script (it would ask a devhost that has stopped)."""
    html = requests.get(url, timeout=30).text
    path.write_text(re.sub(r"<script>.*?</script>", "", html, flags=re.S))
    return path


if __name__ == "__main__":
    sys.exit(run_demo())
