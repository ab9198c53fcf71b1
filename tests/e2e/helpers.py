"""What the e2e tests share besides fixtures (conftest.py): the session stack's pipeline definitions, starting runs and
waiting for them, reading records and the emulator's state, and the secrets no output may hold."""

from __future__ import annotations

import copy
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import azure.durable_functions as df
import requests

from devhost.stack import LocalStack, local_definitions
from retraining.queue import request_id_of

DATA_CONTAINER = "labeledexamples"
WEBHOOK_SECRET = "whsec-" + secrets.token_hex(12)
NOTIFIED = {"webhook": "%TEST_WEBHOOK_URL%", "secretSetting": "TEST_WEBHOOK_SECRET"}
# the drift pipelines' conditions (tests/e2e/test_drift_e2e.py): drift, a label shift or a quarter more rows
RETRAIN_WHEN = {"drift": {"psi": 0.2}, "labelShift": 0.1, "newRows": 0.25}
AGED = {"drift": {"psi": 0.2}, "maxAge": "00:00:01"}  # a champion a second old is too old


def drift_variants(
    base: dict[str, Any], prefix: str, blob: str, notifications: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """`{prefix}` and `{prefix}-age`: `base` with retrainWhen, no targets and no gate, its own data blob, started
    only over HTTP; `{prefix}` sends `notifications` if given."""
    variants = []
    for name, when in ((prefix, RETRAIN_WHEN), (f"{prefix}-age", AGED)):
        variant = copy.deepcopy(base) | {"name": name, "targets": [], "gate": {}, "schedule": {"enabled": False}}
        variant["retrainWhen"] = when
        variant["data"] = variant["data"] | {"blob": f"{name}/{blob}", "watch": "never/*"}
        if notifications and name == prefix:
            variant["notifications"] = notifications
        variants.append(variant)
    return variants


def e2e_definitions() -> dict[str, Any]:
    """The local-speed pipeline, plus one whose gate no model passes, one with 3 s job and 5 s target timeouts, and one
    with no targets that new blobs under `storm/` start (for trigger storms)."""
    definitions = local_definitions()
    base = definitions["pipelines"][0]
    # The Studio tests check each target's own outcome; `serving.consistency: all` (the default) is tested on
    # the Azure ML pipeline, whose canary goes first.
    base["serving"] = {"consistency": "independent"}
    strict = copy.deepcopy(base) | {"name": "strict-gate", "gate": {"minimums": {"AUC": 1.01}}}
    strict["data"]["watch"] = "never/*"
    short = copy.deepcopy(base) | {"name": "short-timeout"}
    short["policy"] = short["policy"] | {"timeout": "00:00:03"}
    short["data"]["watch"] = "never/*"
    short["schedule"] = {"enabled": False}  # shares targets with weekly-retrain: never run both from the timer
    for target in short["targets"]:
        target["policy"] = target["policy"] | {"timeout": "00:00:05"}
    storm = copy.deepcopy(base) | {"name": "storm", "targets": [], "gate": {}, "schedule": {"enabled": False}}
    storm["data"]["watch"] = "storm/*.arff"
    storm["policy"] = storm["policy"] | {"timeout": "00:03:00"}  # room for a 90 s status outage mid-job
    approval = copy.deepcopy(base) | {"name": "approval", "schedule": {"enabled": False}, "notifications": NOTIFIED}
    approval["gate"] = approval["gate"] | {"approval": {"required": True, "timeout": "00:02:00"}}
    approval["data"]["watch"] = "never/*"
    expiring = copy.deepcopy(approval) | {"name": "approval-expiring"}
    expiring["gate"] = expiring["gate"] | {"approval": {"required": True, "timeout": "00:00:02"}}
    notified = copy.deepcopy(strict) | {"name": "notified", "schedule": {"enabled": False}, "notifications": NOTIFIED}
    # a receiver that takes 40 s to answer, at a URL with credentials in it
    slow = copy.deepcopy(notified) | {"name": "notified-slow"}
    slow["notifications"] = NOTIFIED | {"webhook": "%TEST_SLOW_WEBHOOK_URL%"}
    definitions["pipelines"] = [
        base,
        strict,
        short,
        storm,
        approval,
        expiring,
        notified,
        slow,
        *drift_variants(base, "drift-studio", "data.arff", NOTIFIED | {"events": ["drift_detected"]}),
        *aml_definitions(definitions),
    ]
    return definitions


def stack_secrets(stack: LocalStack) -> dict[str, str]:
    """Every key and secret of the session's stack, by name: what no log, record, task hub or answer may hold.

    The stack's secrets are fresh for the session, so a hit can only be a leak. This checks that no source
    file holds one: hypothesis draws strings from local sources' literals, and a fuzzed input that equals
    a secret would be echoed as the caller's own input.
    """
    assert stack.host is not None and stack.azurite is not None
    host = stack.host
    found = {
        name: stack.settings[name]
        for name in (
            "TRAINING_API_KEY",
            "SCORING_API_KEY",
            "ARM_SERVICE_PRINCIPAL_KEY",
            "AML_CLIENT_SECRET",
            "TEST_WEBHOOK_SECRET",
        )
    }
    for setting in ("TEST_WEBHOOK_URL", "TEST_SLOW_WEBHOOK_URL"):  # credentials and tokens in a webhook's URL
        parts = urlsplit(stack.settings.get(setting, ""))
        if parts.password:
            found[f"{setting} password"] = parts.password
        if parts.query:
            found[f"{setting} token"] = parts.query.partition("=")[2]
    found |= {
        "storage account key": stack.azurite.key,
        "system key": host.system_key,
        "master key": host.master_key,
        "Event Grid extension key": host.eventgrid_key,
        "engine secret": host.rpc_secret,
        "function key": host.function_key,
    }
    root = Path(__file__).resolve().parents[2]
    for folder in ("retraining", "activities", "orchestrators", "triggers", "devhost", "emulator", "tests"):
        for source in (root / folder).rglob("*.py"):
            text = source.read_text(errors="replace")
            assert not [name for name, value in found.items() if value in text], f"{source} holds a secret of the stack"
    return found


def aml_definitions(definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """The Azure ML pipeline with half-second canary bakes, and variants: a gate no model passes, a 3 s job
    timeout, one that polls only every 8 s (so a completion event visibly ends the wait), and one that mirrors
    20% of live traffic to the new deployment, then moves all traffic in one step; and two whose canary bakes 3 s,
    one yielding to another writer's change (the default) and one reverting it."""
    aml = next(p for p in definitions["pipelines"] if p["name"] == "aml-retrain")
    for target in aml["targets"]:
        if target["kind"] == "aml-online":
            target["rollout"] = target["rollout"] | {"bake": "00:00:00.5"}
            target["health"] = target["health"] | {"probes": 8}
    quiet = {"schedule": {"enabled": False}}
    strict = copy.deepcopy(aml) | {"name": "aml-strict-gate", "gate": {"minimums": {"AUC": 1.01}}} | quiet
    short = copy.deepcopy(aml) | {"name": "aml-short-timeout", "targets": []} | quiet
    short["policy"] = short["policy"] | {"timeout": "00:00:03"}
    slow_polls = copy.deepcopy(aml) | {"name": "aml-events", "targets": [], "gate": {}} | quiet
    slow_polls["polling"] = {"firstInterval": "00:00:08", "maxInterval": "00:00:08", "fraction": 0.05}
    direct = copy.deepcopy(aml) | {"name": "aml-direct"} | quiet  # a mirror, then all traffic at once
    for target in direct["targets"]:
        if target["kind"] == "aml-online":
            target["rollout"] = target["rollout"] | {
                "trafficSteps": [100],
                "mirror": {"percent": 20, "bake": "00:00:00.5"},
            }
    # the online target alone, with bakes long enough for a test to change the endpoint mid-rollout
    contested = [copy.deepcopy(t) for t in aml["targets"] if t["kind"] == "aml-online"]
    for target in contested:
        target["rollout"] = target["rollout"] | {"bake": "00:00:03"}
    yielding = copy.deepcopy(aml) | {"name": "aml-yield", "targets": contested} | quiet
    reverting = copy.deepcopy(yielding) | {"name": "aml-revert", "serving": {"otherWriters": "revert"}}
    batch_only = [copy.deepcopy(t) for t in aml["targets"] if t["kind"] == "aml-batch"]
    batch_yield = copy.deepcopy(aml) | {"name": "aml-batch-yield", "targets": batch_only} | quiet
    for variant in (strict, short, slow_polls, direct, yielding, reverting, batch_yield):
        variant["data"]["watch"] = "never/*"
    drift = drift_variants(aml, "drift-aml", "data.csv")
    return [aml, strict, short, slow_polls, direct, yielding, reverting, batch_yield, *drift]


class LogLines(logging.Handler):
    """Keeps every formatted log line, for scanning."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class Host(Protocol):
    """A devhost in this process (`DevHost`) or in its own (`HostProcess`)."""

    base_url: str
    function_key: str


def host_of(stack: LocalStack, host: Host | None = None) -> Host:
    """`host`, or else the stack's devhost."""
    if host is not None:
        return host
    assert stack.host is not None, "devhost is not running"
    return stack.host


def start_run(
    stack: LocalStack,
    pipeline: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    *,
    host: Host | None = None,
) -> requests.Response:
    to = host_of(stack, host)
    return requests.post(
        f"{to.base_url}/api/pipelines/{pipeline}/runs",
        json=body or {},
        headers={"x-functions-key": to.function_key} | (headers or {}),
        timeout=30,
    )


def request_url(stack: LocalStack, pipeline: str, request_id: str) -> str:
    assert stack.host is not None
    return f"{stack.host.base_url}/api/pipelines/{pipeline}/requests/{request_id}"


def wait_for_request(
    stack: LocalStack, url: str, timeout_s: float = 120, appear_within_s: float = 0.0
) -> dict[str, Any]:
    """Poll a request's status route until it is finished; return its view."""
    assert stack.host is not None
    deadline = time.monotonic() + timeout_s
    appear_by = time.monotonic() + appear_within_s
    while time.monotonic() < deadline:
        response = requests.get(url, headers={"x-functions-key": stack.host.function_key}, timeout=30)
        if response.status_code == 404 and time.monotonic() < appear_by:
            time.sleep(0.2)
            continue
        assert response.status_code in (200, 202), response.text
        if response.status_code == 200:
            view: dict[str, Any] = response.json()
            return view
        time.sleep(0.2)
    raise AssertionError(f"{url} did not finish within {timeout_s}s")


def record_of(stack: LocalStack, view: dict[str, Any]) -> dict[str, Any]:
    """The run record of a finished request."""
    assert view["state"] == "done", view
    records = {r["run_id"]: r for r in run_records(stack, view["pipeline"])}
    return records[view["run_id"]]


def run_to_end(stack: LocalStack, pipeline: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start a run over HTTP and return its record once it ended."""
    response = start_run(stack, pipeline, body)
    assert response.status_code == 202, response.text
    assert response.json()["action"] == "queued"
    return record_of(stack, wait_for_request(stack, response.json()["statusUri"]))


def blob_request_url(stack: LocalStack, pipeline: str, container: str, name: str, etag: str) -> str:
    return request_url(stack, pipeline, request_id_of(f"blob:{container}/{name}:{etag.strip(chr(34))}"))


def settle(stack: LocalStack, pipeline: str = "weekly-retrain", timeout_s: float = 180) -> None:
    """Wait until the pipeline's queue has nothing pending or running."""
    from retraining.queue import RequestState, RunQueue
    from retraining.settings import Settings
    from retraining.storage import TrainingStorage

    queue = RunQueue(TrainingStorage.from_settings(Settings.from_env(stack.settings)), "runrecords")
    deadline = time.monotonic() + timeout_s
    while queue.entries(pipeline, [RequestState.PENDING, RequestState.RUNNING]):
        assert time.monotonic() < deadline, f"pipeline {pipeline} did not settle within {timeout_s}s"
        time.sleep(0.2)


def emulator_state(emulator_url: str) -> dict[str, Any]:
    state: dict[str, Any] = requests.get(f"{emulator_url}/_emulator/state", timeout=10).json()
    return state


def served_versions(emulator_url: str) -> dict[str, str | None]:
    state = emulator_state(emulator_url)
    versions = {e["endpoint"]: e["model_version"] for e in state["endpoints"]}
    versions.update({a["name"]: a["model_version"] for a in state["arm_web_services"]})
    return versions


def run_records(stack: LocalStack, pipeline: str) -> list[dict[str, Any]]:
    """The pipeline's run records, oldest first."""
    container = stack.blob_service.get_container_client("runrecords")
    if not container.exists():
        return []
    return [
        json.loads(container.download_blob(b.name).readall())
        for b in container.list_blobs(name_starts_with=f"{pipeline}/runs/")
    ]


def api(stack: LocalStack, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> requests.Response:
    assert stack.host is not None
    return requests.request(
        method,
        f"{stack.host.base_url}/api/{path}",
        json=body,
        timeout=30,
        headers={"x-functions-key": stack.host.function_key},
    )


def recorded_deliveries(stack: LocalStack, pipeline: str, run_id: str, timeout_s: float = 30) -> list[dict[str, Any]]:
    """The run's notification deliveries as its run route lists them, once there are any: a delivery's outcome is
    appended to the record after the webhook answered, by the delivery's own orchestration."""
    deadline = time.monotonic() + timeout_s
    while True:
        deliveries: list[dict[str, Any]] = (
            api(stack, f"pipelines/{pipeline}/runs/{run_id}").json().get("deliveries", [])
        )
        if deliveries or time.monotonic() > deadline:
            return deliveries
        time.sleep(0.2)


def wait_for_phase(
    stack: LocalStack, status_uri: str, phase: str, timeout_s: float = 60, *, host: Host | None = None
) -> dict[str, Any]:
    """Poll the request status route until its run is in `phase`; return the view."""
    key = host_of(stack, host).function_key
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view: dict[str, Any] = requests.get(status_uri, headers={"x-functions-key": key}, timeout=30).json()
        if (view.get("progress") or {}).get("phase") == phase:
            return view
        assert view["state"] in ("pending", "running"), view
        time.sleep(0.2)
    raise AssertionError(f"{status_uri} never reached phase {phase}")


def awaiting(stack: LocalStack, pipeline: str = "approval") -> tuple[str, dict[str, Any]]:
    settle(stack, pipeline)
    started = start_run(stack, pipeline)
    assert started.status_code == 202, started.text
    uri = started.json()["statusUri"]
    return uri, wait_for_phase(stack, uri, "awaiting_approval")


def serving_mismatches(stack: LocalStack) -> list[str]:
    """`invariants.targets_match_the_service` over every pipeline whose queue is idle now, leaving out the services
    a busy pipeline is changing."""
    from retraining import invariants
    from retraining.queue import RequestState, RunQueue
    from retraining.settings import Settings
    from retraining.storage import TrainingStorage

    container = stack.blob_service.get_container_client("runrecords")
    if not container.exists() or stack.emulator is None:
        return []
    queue = RunQueue(TrainingStorage.from_settings(Settings.from_env(stack.settings)), "runrecords")
    definitions = json.loads(Path(stack.settings["RETRAIN_PIPELINES_FILE"]).read_text())["pipelines"]
    targets = {p["name"]: invariants.targets_of(p) for p in definitions if p.get("targets")}
    busy = {p for p in targets if queue.entries(p, [RequestState.PENDING, RequestState.RUNNING])}
    changing = {(t["kind"], t["service"]) for p in busy for t in targets[p]}
    checked = [t for p, ts in targets.items() if p not in busy for t in ts if (t["kind"], t["service"]) not in changing]
    serving = {}
    for pipeline in {t["pipeline"] for t in checked}:
        blob = container.get_blob_client(f"{pipeline}/serving.json")
        if blob.exists():
            serving[pipeline] = json.loads(blob.download_blob().readall())
    observed = invariants.Observed(
        requests=[],
        records=[r for p in serving for r in run_records(stack, p)],
        serving=serving,
        emulator=emulator_state(stack.emulator.http_base),
        instances=[],
        targets=checked,
        queue_idle=True,
        jobs_before=[],
    )
    # The `seeded` fixture re-publishes the seed model (Studio: job "seed"; Azure ML: version 1) behind the app's
    # back: a target the harness reset is not the app's claim to check.
    observed["targets"] = [t for t in checked if not all(map(_harness_seed, invariants._served(observed, t)))]
    # A pipeline the definitions do not name (test_import_e2e points the app at an imported file, whose targets
    # have other names for the same services) may have rolled out since: older claims are not the app's to check.
    elsewhere = ""
    for blob in container.list_blobs():
        name = blob.name.removesuffix("/serving.json")
        if blob.name.endswith("/serving.json") and "/" not in name and name not in targets:
            entries = json.loads(container.download_blob(blob.name).readall()).get("targets", {}).values()
            elsewhere = max([elsewhere, *(str(e.get("since", "")) for e in entries)])
    observed["targets"] = [
        t
        for t in observed["targets"]
        if str(serving.get(t["pipeline"], {}).get("targets", {}).get(t["name"], {}).get("since", "~")) > elsewhere
    ]
    return invariants.targets_match_the_service(observed)


def _harness_seed(served: str) -> bool:
    return served == "seed" or served.endswith("/versions/1")


def durable(stack: LocalStack, call: Callable[[df.DurableOrchestrationClient], Awaitable[Any]]) -> Any:
    """One call of the real DurableOrchestrationClient, on devhost's event loop (as the Functions host runs starters)."""
    assert stack.host is not None
    client = df.DurableOrchestrationClient(stack.host.management.client_binding())

    async def go() -> Any:
        return await call(client)

    return stack.host.run_coroutine(go())


def serving_record(stack: LocalStack, pipeline: str) -> dict[str, Any]:
    """The pipeline's serving record (`retraining.lineage`); empty if none was written."""
    blob = stack.blob_service.get_container_client("runrecords").get_blob_client(f"{pipeline}/serving.json")
    return json.loads(blob.download_blob().readall()) if blob.exists() else {}
