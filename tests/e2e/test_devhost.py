"""devhost itself: the real DurableOrchestrationClient against its HTTP API, keys, failures, schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import islice

import azure.durable_functions as df
import pytest
import requests
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from devhost.host import fire_times
from devhost.stack import LocalStack

pytestmark = pytest.mark.e2e
TERMINAL = {"Completed", "Failed", "Terminated"}


def wait_for_instance(status_url: str, timeout_s: float = 60) -> dict[str, object]:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, object] = requests.get(status_url, timeout=10).json()
        if body["runtimeStatus"] in TERMINAL:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{status_url} did not finish within {timeout_s}s")


def client_for(stack: LocalStack) -> df.DurableOrchestrationClient:
    assert stack.host is not None
    return df.DurableOrchestrationClient(stack.host.management.client_binding())


def test_real_durable_client_starts_queries_and_purges(stack: LocalStack) -> None:
    assert stack.host is not None
    host, client = stack.host, client_for(stack)
    bad_input = {"run_id": "20261122T030000Z-00000000"}  # no request: the orchestrator raises on its input

    async def scenario() -> tuple[str, object, object, object]:
        instance_id = await client.start_new("retrain_pipeline", "devhost-client-test", bad_input)
        return instance_id, None, None, None

    instance_id = host.run_coroutine(scenario())[0]
    assert instance_id == "devhost-client-test"
    status_url = host.management.management_urls(instance_id)["statusQueryGetUri"]
    body = wait_for_instance(status_url)
    # An orchestration that raises surfaces as Failed with its error, not as a hang.
    assert body["runtimeStatus"] == "Failed"
    assert "missing field 'request_id'" in str(body["output"])

    async def query() -> tuple[object, object, object]:
        status = await client.get_status(instance_id, show_history=True, show_history_output=True, show_input=True)
        unknown = await client.get_status("no-such-instance")
        failed = await client.get_status_by(runtime_status=[OrchestrationRuntimeStatus.Failed])
        return status, unknown, failed

    status, unknown, failed = host.run_coroutine(query())
    assert status.runtime_status == OrchestrationRuntimeStatus.Failed
    assert status.historyEvents[0]["EventType"] == "ExecutionStarted"
    assert status.historyEvents[0]["FunctionName"] == "retrain_pipeline"
    assert json.loads(status.input_) == bad_input
    assert unknown.runtime_status is None
    assert instance_id in [s.instance_id for s in failed]

    async def purge() -> object:
        return await client.purge_instance_history(instance_id)

    assert host.run_coroutine(purge()).instances_deleted == 1
    assert requests.get(status_url, timeout=10).status_code == 404


def test_raise_event_and_terminate_through_the_api(stack: LocalStack) -> None:
    assert stack.host is not None
    host, client = stack.host, client_for(stack)
    monitor_input = {
        "job": {
            "pipeline": "weekly-retrain",
            "run_id": "20261122T030000Z-00000000",
            "job_id": "does-not-exist",
            "outputs": {"model": "trainingoutput/x/model.ilearner"},
        },
        "deadline": "2099-01-01T00:00:00Z",
        "poll_first_s": 30.0,
        "poll_max_s": 60.0,
        "poll_fraction": 0.05,
    }

    async def run() -> str:
        return await client.start_new("monitor_training_job", "devhost-terminate-test", monitor_input)

    instance_id = host.run_coroutine(run())

    async def stop() -> None:
        await client.terminate(instance_id, "test over")

    urls = host.management.management_urls(instance_id)
    response = requests.get(urls["statusQueryGetUri"], timeout=10)
    if response.json()["runtimeStatus"] in ("Running", "Pending"):
        assert response.status_code == 202
        assert response.headers["Location"] and response.headers["Retry-After"] == "10"
        host.run_coroutine(stop())
    final = wait_for_instance(urls["statusQueryGetUri"])
    assert final["runtimeStatus"] in ("Terminated", "Failed")


def test_function_keys_are_enforced(stack: LocalStack) -> None:
    assert stack.host is not None
    url = f"{stack.host.base_url}/api/pipelines/weekly-retrain/runs"
    assert requests.post(url, json={}, timeout=10).status_code == 401
    assert requests.post(url, json={}, headers={"x-functions-key": "wrong"}, timeout=10).status_code == 401
    assert requests.post(url + "?code=wrong", json={}, timeout=10).status_code == 401
    status_api = f"{stack.host.base_url}/runtime/webhooks/durabletask/instances/anything"
    assert requests.get(status_api, timeout=10).status_code == 401
    assert (
        requests.get(status_api + f"?code={stack.host.function_key}", timeout=10).status_code == 401
    )  # needs the system key
    assert requests.get(f"{stack.host.base_url}/api/no-such-route", timeout=10).status_code == 404


def test_ncrontab_schedules_have_six_fields_seconds_first() -> None:
    start = datetime(2026, 11, 21, 2, 59, 58, tzinfo=UTC)  # a Saturday
    assert list(islice(fire_times("*/5 * * * * *", start), 2)) == [
        datetime(2026, 11, 21, 3, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 21, 3, 0, 5, tzinfo=UTC),
    ]
    assert next(fire_times("0 0 3 * * 0", start)) == datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)  # next Sunday 03:00
    with pytest.raises(ValueError, match="six fields"):
        next(fire_times("0 3 * * 0", start))


def test_blob_receipts_survive_a_restarted_watcher(stack: LocalStack) -> None:
    """A new watcher (as after a devhost restart) reads the receipts in storage and fires for nothing old."""
    assert stack.host is not None
    from devhost.host import RECEIPTS_CONTAINER

    blobs = stack.blob_service
    blobs.get_blob_client("labeledexamples", "incoming/receipt-check.txt").upload_blob(
        b"not training data", overwrite=True
    )
    receipts = blobs.get_container_client(RECEIPTS_CONTAINER)
    baseline = stack.host._baseline(blobs)
    import time

    deadline = time.monotonic() + 20
    while stack.host.scan_blobs_once(blobs, receipts, baseline) != 0:  # the running watcher may still be handling it
        assert time.monotonic() < deadline
        time.sleep(0.3)
    fresh_service = type(blobs).from_connection_string(stack.settings["TrainingStorage"])
    fired_by_fresh = stack.host.scan_blobs_once(
        fresh_service, fresh_service.get_container_client(RECEIPTS_CONTAINER), stack.host._baseline(fresh_service)
    )
    assert fired_by_fresh == 0


def test_sub_orchestrations_longer_than_the_backend_watch_chunk_still_complete() -> None:
    """Regression: durabletask 1.12 stopped watching a sub-orchestration after 30 s and lost its result."""
    from durabletask import task as dt
    from durabletask.client import OrchestrationStatus, TaskHubGrpcClient
    from durabletask.worker import TaskHubGrpcWorker

    from devhost.engine import Backend
    from devhost.services import free_port

    class QuickBackend(Backend):
        watch_chunk_s = 0.2  # stands for the 30 s of the real chunk

    def child(ctx: dt.OrchestrationContext, _: object) -> object:
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1.0))
        return "child done"

    def parent(ctx: dt.OrchestrationContext, _: object) -> object:
        return (yield ctx.call_sub_orchestrator(child))

    port = free_port()
    backend = QuickBackend(port=port)
    backend.start()
    worker = TaskHubGrpcWorker(host_address=f"localhost:{port}")
    worker.add_orchestrator(child)
    worker.add_orchestrator(parent)
    worker.start()
    try:
        client = TaskHubGrpcClient(host_address=f"localhost:{port}")
        instance = client.schedule_new_orchestration(parent)
        state = client.wait_for_orchestration_completion(instance, timeout=20)
        assert state is not None and state.runtime_status == OrchestrationStatus.COMPLETED
        assert state.serialized_output == '"child done"'
    finally:
        worker.stop()
        backend.stop()


def test_cli_start_wait_and_status(stack: LocalStack, seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    from devhost.cli import main

    assert stack.host is not None
    url, key = stack.host.base_url, stack.host.function_key
    assert main(["start", "weekly-retrain", "--wait", "--dry-run", "--url", url, "--key", key]) == 0
    printed = capsys.readouterr().out
    assert "polling" in printed and '"status": "DryRun"' in printed  # progress lines, then the record
    request_id = printed.split("request ", 1)[1].split()[0]
    assert main(["status", "weekly-retrain", request_id, "--url", url, "--key", key]) == 0
    shown = capsys.readouterr().out
    assert "-> DryRun" in shown and '"state": "done"' in shown
    assert main(["status", "weekly-retrain", request_id, "--url", url, "--key", "wrong"]) == 2
    assert main(["status", "weekly-retrain", "0" * 32, "--url", url, "--key", key]) == 1
    assert main(["start", "weekly-retrain", "--url", url, "--key", "wrong"]) == 2
    assert system_key_never_leaves_the_host(printed + shown, stack)


def system_key_never_leaves_the_host(text: str, stack: LocalStack) -> bool:
    assert stack.host is not None
    return stack.host.system_key not in text and "runtime/webhooks/durabletask" not in text


def test_the_event_grid_webhook_checks_its_key_and_answers_the_handshake(stack: LocalStack) -> None:
    assert stack.host is not None
    url = stack.host.eventgrid_url("aml_job_event")
    validation = [
        {
            "id": "1",
            "topic": "t",
            "subject": "s",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-11-22T00:00:00Z",
            "dataVersion": "1",
            "data": {"validationCode": "abc-123"},
        }
    ]
    answer = requests.post(url, json=validation, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"validationResponse": "abc-123"}
    assert requests.post(url.replace("code=", "code=x"), json=validation, timeout=10).status_code == 401
    assert requests.post(url.replace("aml_job_event", "nope"), json=validation, timeout=10).status_code == 404
    assert requests.post(url, data=b"{not json", timeout=10).status_code == 400
    stranger = [
        {
            "id": "2",
            "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/other",
            "subject": "experiments/e/runs/r",
            "eventType": "Microsoft.MachineLearningServices.RunCompleted",
            "eventTime": "2026-11-22T00:00:00Z",
            "dataVersion": "",
            "data": {"runId": "aml-retrain-20261122T030000Z-0a1b2c3d"},
        }
    ]
    assert requests.post(url, json=stranger, timeout=10).status_code == 200  # taken, and ignored: not our workspace
