"""A small ARM client for the Azure ML emulator's tests: real tokens, real TLS, real polling."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from azure.identity import ClientSecretCredential

from devhost.datasets import breast_cancer

API = "api-version=2024-04-01"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Aml:
    """One workspace of the emulator, reached as its service principal."""

    ws: dict[str, Any]
    ca_file: str
    admin: str  # the emulator's plain-HTTP base, for /_emulator routes

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self._tokens: dict[str, str] = {}

    def http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """A request over the emulator's TLS (verify is explicit: REQUESTS_CA_BUNDLE would override a session's)."""
        return self.session.request(method, url, verify=self.ca_file, timeout=30, **kwargs)

    def credential(self) -> ClientSecretCredential:
        """The workspace's service principal, as azure-identity signs it in against the emulator's Azure AD."""
        return ClientSecretCredential(
            self.ws["tenant"],
            self.ws["servicePrincipalId"],
            self.ws["servicePrincipalKey"],
            authority=self.ws["authorityHost"],
            disable_instance_discovery=True,
            connection_verify=self.ca_file,
        )

    def token(self, audience: str = "https://management.azure.com") -> str:
        if audience not in self._tokens:
            self._tokens[audience] = self.credential().get_token(f"{audience}/.default").token
        return self._tokens[audience]

    def url(self, path: str = "") -> str:
        return f"{self.ws['managementEndpoint']}{self.ws['resourceId']}{path}?{API}"

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}"} | kwargs.pop("headers", {})
        return self.http(method, self.url(path), json=body, headers=headers, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, status: tuple[int, ...] = (200, 201)) -> Any:
        response = self.call(method, path, body)
        assert response.status_code in status, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    # ---- waiting --------------------------------------------------------------------------------

    def wait_job(self, name: str, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.ok("GET", f"/jobs/{name}")
            if job["properties"]["status"] in ("Completed", "Failed", "Canceled"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {name} did not end within {timeout_s}s")

    def wait_operation(self, response: requests.Response, timeout_s: float = 30) -> dict[str, Any]:
        """Follow Azure-AsyncOperation to a terminal status, as azure-core's ARM poller does."""
        url = response.headers["Azure-AsyncOperation"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status: dict[str, Any] = self.http("GET", url, headers={"Authorization": f"Bearer {self.token()}"}).json()
            if status["status"] != "InProgress":
                return status
            time.sleep(0.05)
        raise AssertionError(f"operation {url} did not end")

    def wait_location(self, response: requests.Response, timeout_s: float = 30) -> requests.Response:
        """Follow Location until it stops answering 202."""
        assert response.status_code == 202, response.text
        assert int(response.headers["Retry-After"]) >= 0
        url = response.headers["Location"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            polled = self.http("GET", url, headers={"Authorization": f"Bearer {self.token()}"})
            if polled.status_code != 202:
                return polled
            time.sleep(0.05)
        raise AssertionError(f"{url} still answered 202")

    # ---- building blocks ------------------------------------------------------------------------

    def command_job(
        self, inputs: dict[str, Any], outputs: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        refs = " ".join(f"--{k} ${{{{inputs.{k}}}}}" for k in inputs)
        return {
            "properties": {
                "jobType": "Command",
                "command": f"python train.py {refs}",
                "environmentId": self.ws["environmentId"],
                "computeId": self.ws["computeId"],
                "experimentName": "emulator-tests",
                "inputs": inputs,
                "outputs": outputs
                if outputs is not None
                else {"model": {"jobOutputType": "mlflow_model"}, "metrics": {"jobOutputType": "uri_file"}},
            }
            | extra
        }

    def train(
        self, data_uri: str, name: str | None = None, literals: dict[str, str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Run a training job on one data file (plus literal inputs) to its end."""
        name = name or unique("train")
        inputs = {"training_data": {"jobInputType": "uri_file", "uri": data_uri}}
        inputs |= {k: {"jobInputType": "literal", "value": v} for k, v in (literals or {}).items()}
        body = self.command_job(inputs, **extra)
        self.ok("PUT", f"/jobs/{name}", body)
        return self.wait_job(name)

    def register(self, name: str, version: str, model_uri: str, **extra: Any) -> dict[str, Any]:
        body = {"properties": {"modelUri": model_uri, "modelType": "mlflow_model"} | extra}
        result: dict[str, Any] = self.ok("PUT", f"/models/{name}/versions/{version}", body)
        return result

    def create_endpoint(self, name: str, traffic: dict[str, int] | None = None, auth_mode: str = "Key") -> None:
        body = {
            "location": self.ws["location"],
            "identity": {"type": "SystemAssigned"},
            "properties": {"authMode": auth_mode, "traffic": traffic or {}},
        }
        response = self.call("PUT", f"/onlineEndpoints/{name}", body)
        assert response.status_code in (200, 201), response.text
        assert self.wait_operation(response)["status"] == "Succeeded"

    def deployment_body(self, model_id: str) -> dict[str, Any]:
        return {
            "location": self.ws["location"],
            "sku": {"name": "Default", "capacity": 1},
            "properties": {
                "endpointComputeType": "Managed",
                "model": model_id,
                "instanceType": "Standard_DS3_v2",
                "codeConfiguration": {"scoringScript": "score.py"},
                "environmentId": self.ws["environmentId"],
            },
        }

    def deploy(self, endpoint: str, name: str, model_id: str) -> dict[str, Any]:
        response = self.call("PUT", f"/onlineEndpoints/{endpoint}/deployments/{name}", self.deployment_body(model_id))
        assert response.status_code in (200, 201), response.text
        return self.wait_operation(response)

    def set_traffic(
        self, endpoint: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> requests.Response:
        """GET -> edit -> PUT of the whole endpoint, as the contract asks."""
        current = self.ok("GET", f"/onlineEndpoints/{endpoint}")
        current["properties"]["traffic"] = traffic
        current["properties"]["mirrorTraffic"] = mirror or {}
        return self.call("PUT", f"/onlineEndpoints/{endpoint}", current)

    def keys(self, endpoint: str) -> dict[str, str]:
        result: dict[str, str] = self.ok("POST", f"/onlineEndpoints/{endpoint}/listKeys")
        return result

    def scoring_uri(self, endpoint: str) -> str:
        uri: str = self.ok("GET", f"/onlineEndpoints/{endpoint}")["properties"]["scoringUri"]
        return uri

    def score(
        self, endpoint: str, rows: int = 3, key: str | None = None, deployment: str | None = None
    ) -> requests.Response:
        names, values = breast_cancer().features(rows)
        headers = {"Authorization": f"Bearer {key or self.keys(endpoint)['primaryKey']}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        body = {"input_data": {"columns": names, "index": list(range(rows)), "data": values}}
        return self.http("POST", self.scoring_uri(endpoint), json=body, headers=headers)

    # ---- admin ----------------------------------------------------------------------------------

    def fault(self, body: dict[str, Any]) -> None:
        requests.post(f"{self.admin}/_emulator/faults", json=body, timeout=10).raise_for_status()

    def settings(self, **body: Any) -> None:
        requests.post(f"{self.admin}/_emulator/azure-ml/settings", json=body, timeout=10).raise_for_status()

    def state(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = requests.get(f"{self.admin}/_emulator/state", timeout=10).json()["azureMl"]
        return snapshot

    def seed(self, model: str, rows: int = 60) -> dict[str, Any]:
        table = breast_cancer().head(rows)
        response = requests.post(
            f"{self.admin}/_emulator/azure-ml/workspaces/{self.ws['name']}/seed",
            json={"ColumnNames": list(table.names), "Values": [list(r) for r in table.rows], "model": model},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def model_id(aml: Aml, name: str, version: str) -> str:
    return f"{aml.ws['resourceId']}/models/{name}/versions/{version}"


def registered_from_job(aml: Aml, training_csv: str, **extra: Any) -> str:
    """Train, register the job's model as version 1 of a new model, and answer its ARM id."""
    job = aml.train(training_csv, **extra)
    name = unique("m")
    aml.register(name, "1", f"azureml://jobs/{job['name']}/outputs/model/paths/", jobName=job["name"])
    return model_id(aml, name, "1")
