"""The status page of a pipeline with 1,000 runs: how long it takes to load, through devhost, against Azurite.

Seeds one pipeline with 1,000 run records, their monthly index (as `Lineage.write_record` leaves it),
a `serving.json` with 20 earlier champions, and 1,000 finished requests in the run queue (a month
of hourly runs keeps that many: finished requests are kept 30 days). Then loads the pipeline's page
(`GET /api/status/{pipeline}`, HTML with every model plotted) and the runs route the page's script
polls, ten times each, through a devhost running function_app.py. The baseline is what a listing
cost before the index: list the pipeline's records and read the newest 1,000 one by one.

`measure(workdir)` returns the figures; `report(figures)` is one line for `make bench`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.services import start_azurite  # noqa: E402
from devhost.stack import local_definitions  # noqa: E402
from retraining.history import summary_of  # noqa: E402
from retraining.lineage import Lineage  # noqa: E402
from retraining.models import (  # noqa: E402
    BlobPath,
    JobOutcome,
    ModelArtifact,
    RunRequest,
    RunResult,
    RunStatus,
    TargetOutcome,
    Trigger,
    TriggerKind,
)
from retraining.queue import QueuedRequest, RequestState, request_id_of  # noqa: E402
from retraining.settings import Settings  # noqa: E402
from retraining.storage import TrainingStorage  # noqa: E402

PIPELINE = "weekly-retrain"
RUNS = 1000
LOADS = 10
CONTAINER = "runrecords"


def _runs(count: int) -> list[RunResult]:
    start = datetime(2026, 9, 1, tzinfo=UTC)
    results = []
    for i in range(count):
        began = start + timedelta(hours=2 * i)
        run_id = f"{began:%Y%m%dT%H%M%SZ}-{i:08x}"
        status = RunStatus.SUCCEEDED if i % 5 else RunStatus.REJECTED
        model = ModelArtifact(
            f"trainingoutput/{PIPELINE}/{run_id}/model.ilearner",
            2048,
            f"{i:064x}",
            {"AUC": 0.9 + (i % 17) / 200, "Accuracy": 0.88 + (i % 13) / 200, "F1 Score": 0.85 + (i % 7) / 100},
            ("a", "b"),
            "class",
        )
        request = RunRequest(
            PIPELINE, Trigger(TriggerKind.SCHEDULE, f"schedule:{run_id}", f"{began:%Y-%m-%dT%H:%M:%SZ}")
        )
        targets = (
            TargetOutcome(
                "endpoint2", "classic", True, None, 3.0, None, ("apply", "confirm"), {"serving": model.sha256[:12]}
            ),
        )
        results.append(
            RunResult(
                run_id,
                PIPELINE,
                status,
                request,
                f"{began:%Y-%m-%dT%H:%M:%S.%fZ}",
                f"{began + timedelta(minutes=12):%Y-%m-%dT%H:%M:%S.%fZ}",
                None if i % 5 else "AUC below the minimum",
                f"job-{i}",
                JobOutcome("Finished", None, 11, 700.0),
                model,
                None,
                targets if i % 5 else (),
                None,
                {"polling": 700.0, "updating": 3.0},
            )
        )
    return results


def seed(storage: TrainingStorage) -> None:
    """Records and their index, 21 champions in serving.json, and a finished request per run."""
    lineage = Lineage(storage, CONTAINER)
    results = _runs(RUNS)
    by_month: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        path = lineage.record_path(PIPELINE, result.run_id)
        storage.write_json(path, result.to_dict())
        by_month.setdefault(result.run_id[:6], []).append(summary_of(result) | {"record": str(path)})
    for summaries in by_month.values():  # what write_record appends one at a time
        lineage.index.add(summaries, PIPELINE)
    for result in [r for r in results if r.status is RunStatus.SUCCEEDED][-21:]:
        assert result.model is not None
        lineage.record_serving(
            PIPELINE,
            result.run_id,
            result.model,
            ["endpoint2", "scoring2"],
            champion=True,
            now=datetime.fromisoformat(result.finished_at.replace("Z", "+00:00")),
        )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for result in results:
        entry = QueuedRequest(
            request_id_of(result.request.trigger.key),
            result.request,
            RequestState.DONE,
            now,
            now,
            result.run_id,
            result.status.value,
        )
        storage.write_json(
            BlobPath(CONTAINER, f"{PIPELINE}/requests/{entry.request_id}.json"),
            entry.to_dict(),
            metadata={"state": entry.state.value},
        )


def definitions() -> dict[str, Any]:
    """The local pipeline with literal endpoints the page never calls, and two classic targets."""
    pipeline = local_definitions()["pipelines"][0]
    pipeline["training"]["mlEndpoint"] = "https://training.invalid/jobs"
    target = pipeline["targets"][0] | {"updateResourceEndpoint": "https://scoring.invalid/endpoint2"}
    pipeline["targets"] = [target, target | {"name": "scoring2"}]
    return {"pipelines": [pipeline]}


def _timed(call: Any, times: int) -> list[float]:
    found = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        found.append(time.perf_counter() - began)
    return found


def measure(workdir: Path) -> dict[str, Any]:
    from devhost.host import DevHost

    workdir.mkdir(parents=True, exist_ok=True)
    azurite = start_azurite(workdir / "azurite")
    host = None
    try:
        settings = {
            "TrainingStorage": azurite.connection_string,
            "AzureWebJobsStorage": azurite.connection_string,
            "TASK_HUB_NAME": "benchpage",
            "RETRAIN_SCHEDULE": "0 0 3 * * 0",
            "DEVHOST_WATCH_BLOBS": "false",
        }
        (workdir / "pipelines.json").write_text(json.dumps(definitions()))
        settings["RETRAIN_PIPELINES_FILE"] = str((workdir / "pipelines.json").resolve())
        storage = TrainingStorage.from_settings(Settings.from_env(settings))
        began = time.perf_counter()
        seed(storage)
        seeded_s = time.perf_counter() - began
        lineage = Lineage(storage, CONTAINER)
        baseline = _timed(lambda: lineage.recent(PIPELINE, RUNS), 1)
        index = _timed(lambda: lineage.index.recent(PIPELINE, RUNS), LOADS)
        host = DevHost(settings=settings)
        host.start()
        url, key = f"{host.base_url}/api/status/{PIPELINE}", host.function_key

        def load_page() -> None:
            answer = requests.get(url, params={"code": key}, timeout=60)
            assert answer.status_code == 200 and answer.text.count('<circle class="point') == RUNS * 3, (
                answer.status_code
            )

        def load_runs() -> None:
            answer = requests.get(
                f"{host.base_url}/api/pipelines/{PIPELINE}/runs", params={"limit": 50, "code": key}, timeout=60
            )
            assert answer.status_code == 200 and len(answer.json()["runs"]) == 50

        load_page()  # warm: definitions, storage client, connection pool
        page, runs = _timed(load_page, LOADS), _timed(load_runs, LOADS)
        size = len(requests.get(url, params={"code": key}, timeout=60).content)
    finally:
        if host is not None:
            host.stop()
        azurite.stop()
    return {
        "runs": RUNS,
        "loads": LOADS,
        "page_median_s": round(statistics.median(page), 3),
        "page_max_s": round(max(page), 3),
        "page_kb": round(size / 1024),
        "runs_route_median_s": round(statistics.median(runs), 3),
        "index_read_median_s": round(statistics.median(index), 3),
        "baseline_record_by_record_s": round(baseline[0], 3),
        "seed_s": round(seeded_s, 1),
    }


def report(figures: dict[str, Any]) -> str:
    return (
        f"6. status page, pipeline with {figures['runs']} runs (median of {figures['loads']} loads through devhost): "
        f"page {figures['page_median_s']} s (max {figures['page_max_s']} s, {figures['page_kb']} KB, every model plotted; target < 1 s); "
        f"runs route {figures['runs_route_median_s']} s; reading the run index {figures['index_read_median_s']} s "
        f"vs {figures['baseline_record_by_record_s']} s record by record"
    )


if __name__ == "__main__":
    print(report(measure(ROOT / "bench" / ".work" / "page")))
