"""The demo's Azure ML (v2) part: the same retrain on a command job, a registered version and a canary rollout,
then a retrain whose new deployment is unhealthy, rolled back while the endpoint keeps answering.

The endpoint is scored as a client would (its key from listKeys, over the emulator's TLS), all along
the second rollout, and every answer is attributed to the deployment that gave it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests
from azure.identity import ClientSecretCredential

from .datasets import breast_cancer
from .progress import Follower
from .stack import AML_MODEL, LocalStack

PIPELINE = "aml-retrain"
ONLINE = "retrain-online"
API = "api-version=2024-04-01"


class Workspace:
    """The emulator's workspace as a client sees it: ARM with a service principal, scoring with the endpoint key."""

    def __init__(self, stack: LocalStack) -> None:
        self.ws = stack.services["azureMl"]["workspaces"][0]
        self.verify = stack.services["caFile"]
        credential = ClientSecretCredential(
            self.ws["tenant"],
            self.ws["servicePrincipalId"],
            self.ws["servicePrincipalKey"],
            authority=self.ws["authorityHost"],
            disable_instance_discovery=True,
            connection_verify=self.verify,
        )
        self.token = credential.get_token("https://management.azure.com/.default").token
        self.session = requests.Session()

    def arm(self, method: str, path: str) -> Any:
        response = self.session.request(
            method,
            f"{self.ws['managementEndpoint']}{self.ws['resourceId']}{path}?{API}",
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self.verify,
            timeout=30,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def endpoint(self) -> dict[str, Any]:
        props: dict[str, Any] = self.arm("GET", f"/onlineEndpoints/{ONLINE}")["properties"]
        return props

    def champion(self) -> str | None:
        versions = self.arm("GET", f"/models/{AML_MODEL}/versions")["value"]
        return next((v["name"] for v in versions if v["properties"]["tags"].get("retrain.champion") == "true"), None)

    def scorer(self) -> Callable[[int], requests.Response]:
        key = self.arm("POST", f"/onlineEndpoints/{ONLINE}/listKeys")["primaryKey"]
        uri = self.endpoint()["scoringUri"]
        names, rows = breast_cancer().features(len(breast_cancer().rows))

        def score(count: int) -> requests.Response:
            body = {"input_data": {"columns": names, "index": list(range(count)), "data": rows[:count]}}
            return self.session.post(
                uri, json=body, headers={"Authorization": f"Bearer {key}"}, verify=self.verify, timeout=30
            )

        return score


def _accuracy(answers: list[dict[str, Any]]) -> float:
    labels = [row[-1] for row in breast_cancer().rows]
    return sum(a["label"] == label for a, label in zip(answers, labels, strict=False)) / len(answers)


def _follow(stack: LocalStack, out: Callable[[str], None]) -> dict[str, Any]:
    assert stack.host is not None
    key = stack.host.function_key
    response = requests.post(
        f"{stack.host.base_url}/api/pipelines/{PIPELINE}/runs", json={}, headers={"x-functions-key": key}, timeout=60
    )
    response.raise_for_status()
    follower = Follower(response.json()["statusUri"], key)
    return follower.record(follower.follow(timeout_s=300)) or {}


def run_aml_demo(stack: LocalStack, out: Callable[[str], None]) -> list[tuple[str, bool]]:
    ws = Workspace(stack)
    score = ws.scorer()
    rows = len(breast_cancer().rows)
    before = score(rows)
    seeded_deployment = before.headers.get("azureml-model-deployment")
    out(
        f"\n== Azure ML (v2): workspace {ws.ws['name']}, online endpoint {ONLINE} serves deployment {seeded_deployment} "
        f"(model {AML_MODEL} version 1, trained on 40 rows): accuracy {_accuracy(before.json()):.1%} on all {rows} rows"
    )

    out(f"\n== Retrain 3: {PIPELINE} on an Azure ML command job, registered, rolled out 10% -> 50% -> 100%")
    first = _follow(stack, out)
    version = (first.get("model") or {}).get("version")
    online: dict[str, Any] = next((t for t in first.get("targets", []) if t["target"] == "online"), {})
    new = (online.get("progress") or {}).get("deployment")
    after = score(rows)
    out(
        f"   job {first.get('job_id')}: {first.get('status')}; model version {version} registered and crowned champion "
        f"({ws.champion() == version}); traffic {ws.endpoint()['traffic']}"
    )
    out(
        f"   the endpoint now answers from {after.headers.get('azureml-model-deployment')}: accuracy {_accuracy(after.json()):.1%}"
    )

    out("\n== Retrain 4: the new deployment is unhealthy (30% of its answers fail); the endpoint is scored all along")
    emulator = stack.emulator
    assert emulator is not None
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "aml_deployment", "endpoint": ONLINE, "error_rate": 0.3},
        timeout=10,
    ).raise_for_status()
    answers: Counter[tuple[str, int]] = Counter()
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            response = score(1)
            answers[(response.headers.get("azureml-model-deployment", "?"), response.status_code)] += 1
            time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        second = _follow(stack, out)
    finally:
        stop.set()
        prober.join(10)
        requests.delete(f"{emulator.http_base}/_emulator/faults", timeout=10)
    canary: dict[str, Any] = next((t for t in second.get("targets", []) if t["target"] == "online"), {})
    canary_name = (canary.get("progress") or {}).get("deployment")
    failed_elsewhere = sum(n for (name, status), n in answers.items() if status != 200 and name != canary_name)
    failed_canary = sum(n for (name, status), n in answers.items() if status != 200 and name == canary_name)
    out(f"   online: {canary.get('state')}: {canary.get('error')}")
    out(
        f"   {sum(answers.values())} scoring requests during the rollout: {failed_canary} failed on the canary {canary_name}, "
        f"{failed_elsewhere} anywhere else; traffic {ws.endpoint()['traffic']}; champion still version {ws.champion()}"
    )
    return [
        (
            "Azure ML retrain registered a new version and crowned it",
            first.get("status") == "Succeeded"
            and bool(version)
            and ws.champion() != "1"
            and (second.get("model") or {}).get("version") != ws.champion(),
        ),
        (
            "the canary moved traffic in steps to 100% on the new deployment",
            online.get("steps", [])[3:9]
            == ["traffic_10", "check_10", "traffic_50", "check_50", "traffic_100", "check_100"]
            and bool(new)
            and after.headers.get("azureml-model-deployment") == new,
        ),
        (
            "the unhealthy canary was rolled back automatically",
            canary.get("state") == "rolled_back" and ws.endpoint()["traffic"] == {new: 100},
        ),
        (
            "the endpoint kept answering from the old model during the rollback",
            failed_elsewhere == 0 and answers[(str(new), 200)] > 0,
        ),
        ("the champion stayed on the healthy version", ws.champion() == version),
    ]
