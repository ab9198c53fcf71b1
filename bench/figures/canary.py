"""A canary rollout on an Azure ML online endpoint: the time it spends beyond its configured bake.

The app: one Azure ML pipeline (the shipped `aml-retrain`, online target only, traffic 10% -> 50%
-> 100%, `BAKE_S` held after each step, the shipped health probes) retrains and rolls out; the
figure is the target's rollout time less the bakes. The baseline, in the same run: a direct script
(one token, one session, looking every 20 ms) that rolls the same registered version out with the
same calls: create the deployment and wait for it, score the sample rows on it, then per step
read the endpoint, PUT its new traffic, wait for the operation, hold the bake and send the probes.
Before each side the emulator's seed puts the endpoint back on deployment `blue` at 100%.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from azure.identity import ClientSecretCredential

from bench.figures import Row
from bench.stack import Stack
from devhost.datasets import breast_cancer

NAME = "canary"
PIPELINE = "bench-aml-canary"
MODEL = "bench-canary"
BAKE_S = 2.0
STEPS = (10, 50, 100)
API = "api-version=2024-04-01"


def prepare(stack: Stack) -> None:
    pipeline = stack.aml_pipeline(
        PIPELINE, MODEL, polling={"firstInterval": "00:00:00.2", "maxInterval": "00:00:01", "fraction": 0.05}
    )
    target = next(t for t in pipeline["targets"] if t["kind"] == "aml-online")
    target["rollout"] = target["rollout"] | {"trafficSteps": list(STEPS), "bake": f"00:00:{BAKE_S:09.6f}"}
    target["policy"] = {"timeout": "00:05:00", "retry": 1, "retryIntervalInSeconds": 1}
    pipeline["targets"] = [target]
    stack.state[NAME] = target


class Direct:
    """The baseline: the rollout as a tight script makes it, with the service principal's token."""

    def __init__(self, stack: Stack, endpoint: str) -> None:
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
        self.headers = {
            "Authorization": f"Bearer {credential.get_token('https://management.azure.com/.default').token}"
        }
        self.session = requests.Session()
        self.base = f"{self.ws['managementEndpoint']}{self.ws['resourceId']}/onlineEndpoints/{endpoint}"

    def arm(self, method: str, path: str = "", body: Any = None) -> Any:
        response = self.session.request(
            method, f"{self.base}{path}?{API}", json=body, headers=self.headers, verify=self.verify, timeout=30
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def settled(self, path: str = "") -> dict[str, Any]:
        while True:
            body: dict[str, Any] = self.arm("GET", path)
            if body["properties"]["provisioningState"] in ("Succeeded", "Failed", "Canceled"):
                return body
            time.sleep(0.02)

    def roll_out(self, version: str, target: dict[str, Any]) -> float:
        began = time.monotonic()
        name = f"direct-v{version}"
        endpoint = self.arm("GET")
        model = f"{self.ws['resourceId']}/models/{MODEL}/versions/{version}"
        self.arm(
            "PUT",
            f"/deployments/{name}",
            {
                "location": endpoint["location"],
                "sku": {"name": "Default", "capacity": 1},
                "properties": {
                    "endpointComputeType": "Managed",
                    "model": model,
                    "instanceType": target["deployment"]["instanceType"],
                },
            },
        )
        if self.settled(f"/deployments/{name}")["properties"]["provisioningState"] != "Succeeded":
            raise RuntimeError(f"deployment {name} failed")
        key = self.arm("POST", "/listKeys")["primaryKey"]
        names, rows = breast_cancer().features(target["health"]["sampleRows"])
        body = {"input_data": {"columns": names, "index": list(range(len(rows))), "data": rows}}

        def score(deployment: str | None = None) -> None:
            headers = {"Authorization": f"Bearer {key}"} | (
                {"azureml-model-deployment": deployment} if deployment else {}
            )
            self.session.post(
                endpoint["properties"]["scoringUri"], json=body, headers=headers, verify=self.verify, timeout=30
            )

        score(name)  # the smoke test on the new deployment
        for share in STEPS:
            current = self.arm("GET")
            others = [d for d, p in current["properties"]["traffic"].items() if d != name and p > 0]
            traffic = {name: share} | ({others[0]: 100 - share} if others and share < 100 else {})
            current["properties"]["traffic"] = traffic
            self.arm("PUT", "", current)
            self.settled()
            time.sleep(BAKE_S)
            for _ in range(target["health"]["probes"]):
                score()
        return time.monotonic() - began


def measure(stack: Stack) -> dict[str, Any]:
    stack.load_aml_data()
    target = stack.state[NAME]
    bakes = BAKE_S * len(STEPS)
    stack.seed_aml(MODEL)
    _, record = stack.run(PIPELINE)
    if record["status"] != "Succeeded":
        raise RuntimeError(f"{PIPELINE} ended {record['status']}: {record.get('reason')}")
    outcome = record["targets"][0]
    stack.seed_aml(MODEL)
    direct_s = Direct(stack, target["endpoint"]).roll_out(record["model"]["version"], target)
    return {
        "steps": list(STEPS),
        "bake_s": BAKE_S,
        "bakes_s": bakes,
        "probes": target["health"]["probes"],
        "app_rollout_s": round(outcome["elapsed_s"], 3),
        "app_beyond_bake_s": round(outcome["elapsed_s"] - bakes, 3),
        "app_steps": outcome["steps"],
        "direct_rollout_s": round(direct_s, 3),
        "direct_beyond_bake_s": round(direct_s - bakes, 3),
    }


def report(r: dict[str, Any]) -> list[str]:
    return [
        f"canary ({' -> '.join(f'{s}%' for s in r['steps'])}, bake {r['bake_s']} s each, {r['probes']} probes a step): "
        f"app {r['app_rollout_s']} s, {r['app_beyond_bake_s']} s beyond the bakes; direct script {r['direct_rollout_s']} s, "
        f"{r['direct_beyond_bake_s']} s beyond",
        f"   app steps: {', '.join(r['app_steps'])}",
    ]


def summary(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"canary rollout beyond its bakes ({len(r['steps'])} steps of {r['bake_s']} s)",
            f"{r['app_beyond_bake_s']} s",
            "reported",
            f"direct script: {r['direct_beyond_bake_s']} s",
            None,
        )
    ]
