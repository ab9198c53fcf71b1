"""The holes found when the system was attacked, each reproduced and shown closed.

An unfriendly caller with a function key, anyone on the machine without one, hostile data, and a
careless operator killing processes: none can wedge a pipeline, drive the engine, push a model the
gate refused, put a model on data of another shape, or leave processes and state behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.files import write_private
from devhost.services import FolderLock, ServiceStartError, start_azurite
from devhost.stack import LocalStack

from ..helpers import DATA_CONTAINER, record_of, served_versions, settle, start_run, wait_for_request
from .ledger import Ledger

pytestmark = pytest.mark.e2e


def test_a_lone_surrogate_cannot_wedge_a_pipeline(stack: LocalStack, ledger: Ledger, seeded: str) -> None:
    ledger.scenarios.append("surrogate wedge")
    assert stack.host is not None
    poisoned = requests.post(
        f"{stack.host.base_url}/api/pipelines/weekly-retrain/runs",
        data=b'{"dryRun": true, "trainingBlob": "labeledexamples/\\ud800.arff"}',
        headers={"x-functions-key": stack.host.function_key, "Content-Type": "application/json"},
        timeout=30,
    )
    assert poisoned.status_code == 400 and poisoned.json()["error"]["field"] == "body"
    ledger.bad_inputs += 1
    # Even an instance holding a surrogate (started with the system key) cannot break the status API ...
    # (the key goes in a header: in a query string, this process's own urllib3 log would hold it)
    hub = f"{stack.host.base_url}/runtime/webhooks/durabletask"
    system = {"x-functions-key": stack.host.system_key}
    started = requests.post(
        f"{hub}/orchestrators/monitor_training_job/poisoned-instance",
        data=b'"\\ud800"',
        headers=system | {"Content-Type": "application/json"},
        timeout=30,
    )
    assert started.status_code == 202
    for url in (f"{hub}/instances/poisoned-instance?showInput=true", f"{hub}/instances"):
        answer = requests.get(url, headers=system, timeout=30)
        assert answer.status_code in (200, 202) and answer.json() is not None
    # ... and the pipeline still starts, whatever the trigger.
    record = record_of(
        stack, wait_for_request(stack, ledger.accept(start_run(stack, "weekly-retrain", {"dryRun": True}))["statusUri"])
    )
    assert record["status"] == "DryRun"


def test_a_queue_instance_that_cannot_be_read_is_replaced(
    stack: LocalStack, ledger: Ledger, seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.scenarios.append("unreadable queue instance")
    import azure.durable_functions as df

    original = df.DurableOrchestrationClient.get_status
    calls = {"n": 0}

    async def unreadable(self: Any, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        if instance_id == "retrain-weekly-retrain" and calls["n"] == 0:
            calls["n"] += 1
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "injected: the instance's state cannot be encoded")
        return await original(self, instance_id, *args, **kwargs)

    settle(stack)
    monkeypatch.setattr(df.DurableOrchestrationClient, "get_status", unreadable)
    accepted = ledger.accept(start_run(stack, "weekly-retrain", {"dryRun": True}))
    ledger.extra_faults += 1
    assert calls["n"] == 1
    assert record_of(stack, wait_for_request(stack, accepted["statusUri"]))["status"] == "DryRun"


def test_nobody_without_a_key_reaches_the_engine(stack: LocalStack, ledger: Ledger) -> None:
    """Each of the attacks found: starting any orchestrator, raising events, terminating, purging, reading host status."""
    ledger.scenarios.append("engine surface")
    assert stack.host is not None
    base, host = stack.host.base_url, stack.host
    rollout = {"pipeline": "weekly-retrain", "run_id": "20261122T030000Z-00000000", "target": {}, "model": {}}
    for key in ("", host.function_key, "wrong"):
        headers = {"x-functions-key": key} if key else {}  # not `?code=`: this process's urllib3 log would hold it
        attacks = [
            ("POST", "/runtime/webhooks/durabletask/orchestrators/roll_out_target", rollout),
            (
                "POST",
                "/runtime/webhooks/durabletask/orchestrators/retrain_pipeline/retrain-weekly-retrain-2",
                {},
            ),
            ("POST", "/runtime/webhooks/durabletask/instances/retrain-weekly-retrain/raiseEvent/wake", {}),
            ("POST", "/runtime/webhooks/durabletask/instances/retrain-weekly-retrain/terminate", None),
            ("DELETE", "/runtime/webhooks/durabletask/instances/retrain-weekly-retrain", None),
            ("GET", "/runtime/webhooks/durabletask/instances", None),
            ("GET", "/admin/host/status", None),
        ]
        for method, path, body in attacks:
            answer = requests.request(method, base + path, json=body, headers=headers, timeout=30)
            assert answer.status_code in (401, 403), (method, path, answer.status_code)
            ledger.bad_inputs += 1
    # The engine's RPC surface: not at the old open path, nor under a guessed secret.
    for prefix in ("/durabletask", "/durabletask/guess"):
        for method, path in (
            ("POST", "/orchestrators/roll_out_target"),
            ("POST", "/instances/retrain-weekly-retrain/terminate"),
            ("GET", "/instances/retrain-weekly-retrain"),
        ):
            answer = requests.request(method, base + prefix + path, json=rollout, timeout=30)
            assert answer.status_code in (401, 403, 404), (method, prefix + path, answer.status_code)
            ledger.bad_inputs += 1
    assert (
        requests.get(f"{base}/admin/host/status", headers={"x-functions-key": host.master_key}, timeout=30).status_code
        == 200
    )


def test_a_rejected_model_is_not_promoted_unless_forced(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("promote a rejected model")
    assert stack.host is not None
    rejected = record_of(stack, wait_for_request(stack, ledger.accept(start_run(stack, "strict-gate"))["statusUri"]))
    assert rejected["status"] == "Rejected"
    promote = f"{stack.host.base_url}/api/pipelines/strict-gate/targets/endpoint2/promote"
    headers = {"x-functions-key": stack.host.function_key}
    refused = record_of(
        stack,
        wait_for_request(
            stack,
            ledger.accept(requests.post(promote, json={"runId": rejected["run_id"]}, headers=headers, timeout=30))[
                "statusUri"
            ],
        ),
    )
    assert refused["status"] == "Rejected" and "did not pass its gate" in refused["reason"]
    assert served_versions(emulator_url)["endpoint2"] == seeded
    forced = record_of(
        stack,
        wait_for_request(
            stack,
            ledger.accept(
                requests.post(promote, json={"runId": rejected["run_id"], "force": True}, headers=headers, timeout=30)
            )["statusUri"],
        ),
    )
    assert forced["status"] == "Succeeded" and any("forced" in note for note in forced["notes"])
    assert served_versions(emulator_url)["endpoint2"] == rejected["model"]["sha256"][:12]
    stack.load_sample_data(DATA_CONTAINER)  # put the initial model back for the scenarios after this one


def test_a_model_trained_on_other_columns_is_rejected_before_training(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("schema change")
    first = record_of(stack, wait_for_request(stack, ledger.accept(start_run(stack, "weekly-retrain"))["statusUri"]))
    assert first["status"] == "Succeeded"  # the champion now has the breast-cancer columns
    table = breast_cancer().head(120)
    renamed = table.to_csv().replace(b"mean_radius,mean_texture", b"totally,different", 1)
    stack.blob_service.get_blob_client(DATA_CONTAINER, "other/renamed.csv").upload_blob(renamed, overwrite=True)
    jobs_before = len(requests.get(f"{emulator_url}/_emulator/state", timeout=10).json()["jobs"])
    result = record_of(
        stack,
        wait_for_request(
            stack,
            ledger.accept(start_run(stack, "weekly-retrain", {"trainingBlob": f"{DATA_CONTAINER}/other/renamed.csv"}))[
                "statusUri"
            ],
        ),
    )
    assert result["status"] == "Rejected"
    assert (
        "missing feature columns ['mean_radius', 'mean_texture']" in result["reason"]
        and "new feature columns ['totally', 'different']" in result["reason"]
    )
    assert (
        len(requests.get(f"{emulator_url}/_emulator/state", timeout=10).json()["jobs"]) == jobs_before
    )  # no job was even started
    assert served_versions(emulator_url)["endpoint2"] == first["model"]["sha256"][:12]


def test_unreadable_data_gets_a_reason_a_user_can_act_on(stack: LocalStack, ledger: Ledger, seeded: str) -> None:
    ledger.scenarios.append("unreadable data")
    stack.blob_service.get_blob_client(DATA_CONTAINER, "other/utf16.csv").upload_blob(
        breast_cancer().head(50).to_csv().decode().encode("utf-16"), overwrite=True
    )
    result = record_of(
        stack,
        wait_for_request(
            stack,
            ledger.accept(start_run(stack, "weekly-retrain", {"trainingBlob": f"{DATA_CONTAINER}/other/utf16.csv"}))[
                "statusUri"
            ],
        ),
    )
    assert (
        result["status"] == "Failed"
        and "not UTF-8 text (byte 0xff at offset 0); save the data as UTF-8 CSV or ARFF" in result["reason"]
    )
    ledger.bad_inputs += 1


def test_errors_never_show_server_paths_and_secret_files_are_private(stack: LocalStack, ledger: Ledger) -> None:
    ledger.scenarios.append("paths and file modes")
    missing = start_run(stack, "no-such-pipeline")
    assert missing.status_code == 404 and "/" not in missing.json()["error"]["message"]
    ledger.bad_inputs += 1
    settings_file = stack.workdir / "local.settings.json"
    assert oct(settings_file.stat().st_mode & 0o777) == "0o600"
    assert stack.settings["ARM_SERVICE_PRINCIPAL_KEY"] in settings_file.read_text()  # the file that holds a secret
    for child in (stack.azurite, stack.emulator):  # the children's logs
        assert child is not None and oct(child.log_path.stat().st_mode & 0o777) == "0o600", child.log_path


def test_children_die_with_their_parent_and_a_data_folder_is_used_by_one_azurite(
    tmp_path: Path, ledger: Ledger
) -> None:
    ledger.scenarios.append("processes")
    azurite = start_azurite(tmp_path / "data")
    try:
        with pytest.raises(ServiceStartError, match="is in use by process"):
            start_azurite(tmp_path / "data")  # a second Azurite on the same folder would split the state
    finally:
        azurite.stop()
    FolderLock(tmp_path / "data", "a test").release()  # free again once stopped
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess,sys,time; from devhost.services import spawn; "
                "child = spawn(['sleep', '300']); print(child.pid, flush=True); time.sleep(300)"
            ),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived its SIGKILLed parent"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its reaper is dead
        return stat.read().split()[2] != "Z"


def test_serve_stops_on_sigterm_and_a_second_serve_refuses(tmp_path: Path, stack: LocalStack, ledger: Ledger) -> None:
    ledger.scenarios.append("serve lifecycle")
    # A devhost of its own, on a pipeline of its own, so it never touches the suite's queues.
    definitions = json.loads(Path(stack.settings["RETRAIN_PIPELINES_FILE"]).read_text())
    definitions["pipelines"] = [definitions["pipelines"][0] | {"name": "serve-check", "schedule": {"enabled": False}}]
    (tmp_path / "pipelines.json").write_text(json.dumps(definitions))
    settings = tmp_path / "local.settings.json"
    write_private(
        settings,
        json.dumps(
            {
                "Values": stack.settings
                | {
                    "DEVHOST_WATCH_BLOBS": "false",
                    "TASK_HUB_NAME": "servecheck",
                    "RETRAIN_PIPELINES_FILE": str(tmp_path / "pipelines.json"),
                }
            }
        ),
    )
    root = Path(__file__).resolve().parents[3]
    command = [sys.executable, "-m", "devhost.cli", "serve", "--settings", str(settings)]
    workdir = tmp_path / "w"
    workdir.mkdir()
    env = os.environ | {"PYTHONPATH": str(root)}
    first = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert first.stdout is not None
    deadline = time.monotonic() + 60
    while "function key" not in first.stdout.readline():
        assert time.monotonic() < deadline and first.poll() is None, "serve did not start"
    second = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "is in use by process" in second.stderr
    assert oct((workdir / ".devhost" / "serve.json").stat().st_mode & 0o777) == "0o600"
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
