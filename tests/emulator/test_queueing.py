"""Per-endpoint concurrency: FIFO queueing past the running limit, 503 RequestThrottled past the queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite, Emulator, start_emulator
from emulator.config import default_config

from .helpers import auth, blob_ref, submit, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    base = default_config()
    training = replace(base.web_services[0], job_seconds=1.0)
    config = replace(
        base,
        web_services=(training, *base.web_services[1:]),
        max_running_jobs_per_endpoint=1,
        max_queued_jobs_per_endpoint=1,
    )
    path = tmp_path_factory.mktemp("small") / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    server = start_emulator(path.parent, config=path)
    yield server
    server.stop()


def test_jobs_queue_fifo_then_throttle(
    small_emulator: Emulator, azurite: Azurite, blob_service: BlobServiceClient, container: str
) -> None:
    service = small_emulator.services()["webServices"][0]
    url, key, cs = service["mlEndpoint"], service["apiKey"], azurite.connection_string
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    jobs = []
    for i in range(3):
        body = {
            "Inputs": {"input1": blob_ref(cs, container, "d.csv")},
            "Outputs": {
                "output1": blob_ref(cs, container, f"m{i}.ilearner"),
                "output2": blob_ref(cs, container, f"e{i}.csv"),
            },
        }
        jobs.append(submit(url, key, body).json())
    start = [requests.post(f"{url}/{j}/start?api-version=2.0", headers=auth(key), timeout=10) for j in jobs]
    assert [r.status_code for r in start] == [200, 200, 503]
    assert start[2].json()["error"]["details"][0]["code"] == "RequestThrottled"
    second = requests.get(f"{url}/{jobs[1]}?api-version=2.0", headers=auth(key), timeout=10).json()
    assert second["StatusCode"] == "NotStarted"  # queued behind the first
    assert wait_job(url, key, jobs[1])["StatusCode"] == "Finished"
    state = requests.get(f"{small_emulator.http_base}/_emulator/state", timeout=10).json()
    by_id = {j["id"]: j for j in state["jobs"]}
    assert by_id[jobs[1]]["started_at"] >= by_id[jobs[0]]["finished_at"] - 0.05
