"""The Azure ML (v2) pipeline end to end: devhost runs function_app.py against the emulator's workspace and Azurite.

Each test drives a run over HTTP as a user would and checks what the workspace shows afterwards:
the job, the registered version and its tags, the endpoint's traffic, which deployment answers,
and the run record. The endpoint's state carries over from test to test, as it would in use, so
every test reads where things stand before it starts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from devhost.stack import LocalStack
from tests.emulator.aml import Aml

from .aml_workspace import (
    MODEL,
    ONLINE,
    PIPELINE,
    champion,
    deployments,
    endpoint,
    target,
    versions,
)
from .helpers import (
    record_of,
    run_to_end,
    start_run,
    wait_for_request,
)


def model_id(aml: Aml, version: str) -> str:
    return f"{aml.ws['resourceId']}/models/{MODEL}/versions/{version}"


class Prober:
    """Scores the endpoint without a deployment header all along a rollout, counting answers per deployment."""

    def __init__(self, aml: Aml) -> None:
        self.aml = aml
        self.key = aml.keys(ONLINE)["primaryKey"]
        self.answers: Counter[tuple[str, int]] = Counter()  # (deployment, status)
        self.unattributed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            response = self.aml.score(ONLINE, rows=1, key=self.key)
            served = response.headers.get("azureml-model-deployment")
            if served:
                self.answers[(served, response.status_code)] += 1
            else:
                self.unattributed += 1
            time.sleep(0.01)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def failures(self, deployment: str | None = None) -> int:
        return sum(
            n
            for (name, status), n in self.answers.items()
            if status != 200 and (deployment is None or name == deployment)
        )

    def served(self, deployment: str) -> int:
        return sum(n for (name, _), n in self.answers.items() if name == deployment)


def test_a_retrain_registers_a_version_and_rolls_it_out_in_canary_steps(stack: LocalStack, aml: Aml) -> None:
    before = set(versions(aml))
    with Prober(aml) as probes:
        record = run_to_end(stack, PIPELINE)
    assert record["status"] == "Succeeded", record
    version = record["model"]["version"]
    assert version not in before and version in versions(aml)

    registered = versions(aml)[version]
    job = record["job_id"]
    assert job == f"{PIPELINE}-{record['run_id']}" and registered["jobName"] == job
    assert registered["modelUri"] == record["model"]["location"]
    assert registered["tags"]["retrain.run_id"] == record["run_id"]
    assert registered["tags"]["retrain.sha256"] == record["model"]["sha256"]
    assert registered["tags"]["retrain.data"] == "mldata/breast-cancer.csv" and registered["tags"]["retrain.data_etag"]
    assert registered["tags"]["retrain.trigger"].startswith("http:")
    assert float(registered["tags"]["metric.AUC"]) == pytest.approx(record["model"]["metrics"]["AUC"], rel=1e-5)
    assert champion(aml) == version

    online = target(record, "online")
    new = online["progress"]["deployment"]
    assert online["state"] == "updated"
    assert online["steps"] == [
        "deploy",
        "provisioned",
        "smoke",
        "traffic_10",
        "check_10",
        "traffic_50",
        "check_50",
        "traffic_100",
        "check_100",
        "cleanup",
    ]
    assert endpoint(aml)["traffic"] == {new: 100}
    assert deployments(aml)[new]["model"] == model_id(aml, version)
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == target(record, "batch")["progress"]["deployment"]

    answer = aml.score(ONLINE, rows=3)
    assert answer.status_code == 200 and answer.headers["azureml-model-deployment"] == new
    assert probes.failures() == 0 and probes.unattributed == 0, probes.answers
    assert probes.served(new) > 0, "the new deployment took no live traffic during the rollout"


def test_an_unhealthy_canary_is_rolled_back_and_the_endpoint_keeps_answering(stack: LocalStack, aml: Aml) -> None:
    run_to_end(stack, PIPELINE)  # a known, healthy champion to fall back to
    serving, crowned = endpoint(aml)["traffic"], champion(aml)
    batch_default = endpoint(aml, batch=True)["defaults"]["deploymentName"]
    aml.fault({"kind": "aml_deployment", "endpoint": ONLINE, "error_rate": 0.3})
    with Prober(aml) as probes:
        record = run_to_end(stack, PIPELINE)
    online = target(record, "online")
    canary = online["progress"]["deployment"]
    assert online["state"] == "rolled_back", online
    assert "check_10" in online["error"] and "failed" in online["error"]
    # serving.consistency all: the batch endpoint waits for the canary, so it never takes the failed version
    assert record["status"] == "RolledBack", record
    assert target(record, "batch")["state"] == "failed" and "not rolled out" in target(record, "batch")["error"]
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == batch_default
    assert endpoint(aml)["traffic"] == serving and endpoint(aml)["mirrorTraffic"] == {}
    assert canary not in deployments(aml)
    assert champion(aml) == crowned
    old = next(iter(serving))
    assert probes.failures(old) == 0 and probes.unattributed == 0, probes.answers
    assert probes.failures() == probes.failures(canary)  # every failed probe was the canary's share
    assert probes.served(old) > 0


def test_a_deployment_that_fails_provisioning_changes_nothing(stack: LocalStack, aml: Aml) -> None:
    serving, crowned = endpoint(aml)["traffic"], champion(aml)
    aml.fault(
        {
            "kind": "aml_deployment",
            "endpoint": ONLINE,
            "fail_message": "ImagePullBackOff: the scoring image could not be pulled",
        }
    )
    record = run_to_end(stack, PIPELINE)
    online = target(record, "online")
    assert online["state"] == "rolled_back" and "ImagePullBackOff" in online["error"], online
    assert online["steps"] == ["deploy"]
    assert endpoint(aml)["traffic"] == serving
    assert online["progress"]["deployment"] not in deployments(aml)
    assert champion(aml) == crowned


def test_a_busy_endpoint_is_waited_for_not_failed(stack: LocalStack, aml: Aml) -> None:
    aml.settings(timings={"busy_after_s": 1.5})  # resources stay Updating 1.5 s after their operation succeeded
    response = start_run(stack, "aml-direct")
    assert response.status_code == 202
    touched = aml.set_traffic(
        ONLINE, endpoint(aml)["traffic"]
    )  # someone else's update: the endpoint is busy when the run comes
    assert touched.status_code in (200, 201), touched.text
    record = record_of(stack, wait_for_request(stack, response.json()["statusUri"]))
    assert record["status"] == "Succeeded", record
    online = target(record, "online")
    assert online["progress"].get("conflicts", 0) >= 1, online["progress"]
    assert endpoint(aml)["traffic"] == {online["progress"]["deployment"]: 100}


def test_a_failed_job_fails_the_run_with_the_services_reason(stack: LocalStack, aml: Aml) -> None:
    before = set(versions(aml))
    aml.fault({"kind": "aml_job", "fail_message": "ModuleNotFoundError: No module named 'sklearn'"})
    record = run_to_end(stack, PIPELINE)
    assert record["status"] == "Failed" and "No module named 'sklearn'" in record["reason"], record
    assert set(versions(aml)) == before


def test_a_job_past_its_timeout_is_cancelled(stack: LocalStack, aml: Aml) -> None:
    aml.fault({"kind": "aml_job", "duration_s": 30})
    record = run_to_end(stack, "aml-short-timeout")
    assert record["status"] == "TimedOut" and record["job"]["cancelled"] is True, record
    job = aml.ok("GET", f"/jobs/{record['job_id']}")
    assert job["properties"]["status"] in ("CancelRequested", "Canceled")


def test_a_rejected_candidate_is_not_registered_and_the_champion_stays(stack: LocalStack, aml: Aml) -> None:
    before, crowned, serving = set(versions(aml)), champion(aml), endpoint(aml)["traffic"]
    record = run_to_end(stack, "aml-strict-gate")
    assert record["status"] == "Rejected" and record["model"]["version"] is None
    assert set(versions(aml)) == before and champion(aml) == crowned and endpoint(aml)["traffic"] == serving


def test_a_completion_event_ends_the_wait_and_duplicates_change_nothing(stack: LocalStack, aml: Aml) -> None:
    aml.fault({"kind": "aml_job", "duration_s": 1.0})
    aml.fault({"kind": "aml_events", "action": "duplicate", "event_type": "*Run*", "remaining": None})
    started = time.monotonic()
    record = run_to_end(stack, "aml-events")
    assert record["status"] == "Succeeded" and record["job"]["woken_by_event"] is True, record
    assert record["job"]["polls"] == 2  # the first poll, and the one the event brought forward (polls are 8 s apart)
    assert time.monotonic() - started < 8
    jobs = [j for j in aml.ok("GET", "/jobs")["value"] if j["name"] == record["job_id"]]
    assert len(jobs) == 1


def test_a_lost_event_costs_only_time(stack: LocalStack, aml: Aml) -> None:
    aml.fault({"kind": "aml_events", "action": "drop", "event_type": "*Run*", "remaining": None})
    record = run_to_end(stack, "aml-events")
    assert record["status"] == "Succeeded" and record["job"]["woken_by_event"] is False, record
    assert record["job"]["polls"] >= 2  # found by a later poll (when depends on the pipeline's history of job lengths)


def test_rollback_on_demand_puts_the_previous_champion_back_on_every_target(stack: LocalStack, aml: Aml) -> None:
    first = run_to_end(stack, "aml-direct")
    second = run_to_end(stack, "aml-direct")
    assert first["status"] == second["status"] == "Succeeded"
    kept = target(first, "online")["progress"]["deployment"]
    assert kept in deployments(aml), "keepDeployments 1 keeps the previous deployment for a rollback"
    assert target(second, "online")["steps"][3:7] == ["mirror", "check_mirror", "traffic_100", "check_100"]
    assert endpoint(aml)["mirrorTraffic"] == {}  # the mirror ends when the deployment takes live traffic

    assert stack.host is not None
    response = requests.post(
        f"{stack.host.base_url}/api/pipelines/aml-direct/rollback",
        json={},
        headers={"x-functions-key": stack.host.function_key},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    view = wait_for_request(stack, response.json()["statusUri"])
    assert view["outcome"] == "Succeeded", view
    assert endpoint(aml)["traffic"] == {kept: 100}
    assert endpoint(aml, batch=True)["defaults"]["deploymentName"] == target(first, "batch")["progress"]["deployment"]
    assert champion(aml) == first["model"]["version"]
