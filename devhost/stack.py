"""The whole system on one machine: Azurite, the Studio emulator and devhost running function_app.py.

`LocalStack` wires the app settings from the emulator's service listing, so the pipeline
definitions point at the emulator through settings and are never edited.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from .files import write_private
from .host import ROOT, DevHost
from .services import (
    AZURITE_KEY,
    Azurite,
    Emulator,
    HostProcess,
    free_port,
    random_storage_key,
    start_azurite,
    start_emulator,
    start_host_process,
)

AML_EVENT_FUNCTION = "aml_job_event"
AML_JOB_EVENTS = (
    "Microsoft.MachineLearningServices.RunStatusChanged",
    "Microsoft.MachineLearningServices.RunCompleted",
)
AML_DATA = ("mldata", "breast-cancer.csv")
AML_MODEL = "breast-cancer"


def emulator_settings(services: Mapping[str, Any], azurite: Azurite) -> dict[str, str]:
    """App settings that point the seed pipeline at the emulator and Azurite."""
    training = services["webServices"][0]
    scoring = services["webServices"][1]
    endpoint2 = next(e for e in scoring["endpoints"] if e["name"] == "endpoint2")
    arm = services["armWebServices"][0]
    principal = services["servicePrincipals"][0]
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
        "TrainingStorage": azurite.connection_string,
        "TASK_HUB_NAME": "retrainlocal",
        "RETRAIN_SCHEDULE": "0 0 3 * * 0",
        "TRAINING_ML_ENDPOINT": training["mlEndpoint"],
        "TRAINING_API_KEY": training["apiKey"],
        "SCORING_UPDATE_RESOURCE_ENDPOINT": endpoint2["updateResourceEndpoint"],
        "SCORING_API_KEY": endpoint2["apiKey"],
        "ARM_WEB_SERVICE_URL": arm["updateResourceEndpoint"],
        "ARM_TENANT": principal["tenant"],
        "ARM_SERVICE_PRINCIPAL_ID": principal["servicePrincipalId"],
        "ARM_SERVICE_PRINCIPAL_KEY": principal["servicePrincipalKey"],
        "AZURE_AUTHORITY_HOST": services["authorityHost"],
        "ML_CA_BUNDLE": services["caFile"],
    } | aml_settings(services)


def aml_settings(services: Mapping[str, Any]) -> dict[str, str]:
    """App settings that point the Azure ML pipeline at the emulator's workspace (none if it lists no workspace)."""
    workspaces = services.get("azureMl", {}).get("workspaces", [])
    if not workspaces:
        return {}
    ws = workspaces[0]
    return {
        "AML_WORKSPACE_ID": ws["resourceId"],
        "AZURE_RESOURCE_MANAGER_ENDPOINT": ws["managementEndpoint"],
        "AML_TENANT": ws["tenant"],
        "AML_CLIENT_ID": ws["servicePrincipalId"],
        "AML_CLIENT_SECRET": ws["servicePrincipalKey"],
    }


def local_definitions(shipped: Path = ROOT / "pipelines.json") -> dict[str, Any]:
    """The shipped pipeline definitions with local-speed policies: sub-second polling, short waits.

    New blobs under `incoming/` start a run, so uploading the base dataset does not.
    """
    definitions: dict[str, Any] = json.loads(shipped.read_text())
    for pipeline in definitions["pipelines"]:
        pipeline["polling"] = pipeline.get("polling", {}) | {
            "firstInterval": "00:00:00.2",
            "maxInterval": "00:00:01",
            "fraction": 0.05,
        }
        pipeline["data"]["externalData"] = {"retryInterval": "00:00:01", "retryTimeout": "00:00:03", "maximumRetry": 2}
        pipeline["data"]["watch"] = "incoming/*" + pipeline["data"]["blob"][pipeline["data"]["blob"].rfind(".") :]
        pipeline["policy"] = pipeline.get("policy", {}) | {"timeout": "00:01:00", "retryIntervalInSeconds": 1}
        for target in pipeline.get("targets", []):
            target["policy"] = {"timeout": "00:01:00", "retry": 1, "retryIntervalInSeconds": 1}
            if target.get("kind") == "aml-online":  # canary steps held a second, not five minutes
                target["rollout"] = target.get("rollout", {}) | {"bake": "00:00:01"}
                target["health"] = target.get("health", {}) | {"probes": 10}
    return definitions


class LocalStack:
    def __init__(
        self,
        workdir: Path | None = None,
        *,
        pipelines_file: Path | None = None,
        extra_settings: Mapping[str, str] | None = None,
        emulator_config: Path | None = None,
        blob_poll_s: float = 0.5,
        fresh_secrets: bool = False,
    ) -> None:
        """`fresh_secrets`: every key and secret random for this stack (a secrets canary; the seed's values otherwise)."""
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="retrain-local-"))
        self.pipelines_file = pipelines_file
        self.extra_settings = dict(extra_settings or {})
        self.emulator_config = emulator_config
        self.blob_poll_s = blob_poll_s
        self.fresh_secrets = fresh_secrets
        self.azurite: Azurite | None = None
        self.emulator: Emulator | None = None
        self.host: DevHost | None = None
        self.services: dict[str, Any] = {}
        self.settings: dict[str, str] = {}
        self.aml_subscription: str | None = None

    def start(self) -> LocalStack:
        try:
            self.azurite = start_azurite(
                self.workdir / "azurite", key=random_storage_key() if self.fresh_secrets else AZURITE_KEY
            )
            self.emulator = start_emulator(
                self.workdir / "emulator",
                config=self.emulator_config,
                fresh_secrets=self.fresh_secrets,
                storage_connection_string=self.azurite.connection_string,
            )
            self.services = self.emulator.services()
            self.settings = emulator_settings(self.services, self.azurite) | self.extra_settings
            if self.pipelines_file:
                self.settings["RETRAIN_PIPELINES_FILE"] = str(self.pipelines_file.resolve())
            self.host = self._new_host()
            self.subscribe_aml_events()
        except BaseException:
            self.stop()
            raise
        return self

    def subscribe_aml_events(self, url: str | None = None) -> None:
        """Subscribe devhost's `aml_job_event` (or `url`) to the emulator workspace's job events, as infra does on
        Azure (after the handshake)."""
        import requests

        workspaces = self.services.get("azureMl", {}).get("workspaces", [])
        url = url or (self.host.eventgrid_url(AML_EVENT_FUNCTION) if self.host is not None else None)
        if not workspaces or url is None or self.emulator is None:
            return
        base = f"{self.emulator.http_base}/_emulator/azure-ml/event-subscriptions"
        if self.aml_subscription:
            requests.delete(f"{base}/{self.aml_subscription}", timeout=10)
        response = requests.post(
            base,
            json={
                "workspace": workspaces[0]["name"],
                "url": url,
                "eventTypes": list(AML_JOB_EVENTS),
            },
            timeout=30,
        )
        response.raise_for_status()
        self.aml_subscription = response.json()["id"]

    def restart_host(self) -> DevHost:
        """Stop devhost as if it had died (its in-memory orchestrations are gone) and start a new one."""
        if self.host is not None:
            self.host.stop()
        self.host = self._new_host()
        self.subscribe_aml_events()
        return self.host

    def host_as_process(self) -> HostProcess:
        """Stop the in-process devhost and run one in a process of its own, on the same settings and storage, for a
        test to kill as a host dies; `restart_host()` brings an in-process one back."""
        if self.host is not None:
            self.host.stop()
            self.host = None
        port = free_port()
        process = start_host_process(self.workdir / "host-process", self._settings_file(port), port=port)
        try:
            self.subscribe_aml_events(process.eventgrid_url(AML_EVENT_FUNCTION))
        except BaseException:
            process.kill()
            raise
        return process

    def _new_host(self) -> DevHost:
        """A devhost on a free port."""
        port = free_port()
        self._settings_file(port)
        host = DevHost(settings=self.settings, blob_poll_s=self.blob_poll_s, port=port)
        host.start()
        return host

    def _settings_file(self, port: int) -> Path:
        """The settings of a devhost on `port`, told where its status page is (for links in notifications)."""
        self.settings["RETRAIN_PAGE_URL"] = f"http://127.0.0.1:{port}/api/status"
        path = self.workdir / "local.settings.json"
        write_private(path, json.dumps({"IsEncrypted": False, "Values": self.settings}, indent=2))
        return path

    def stop(self) -> None:
        for part in (self.host, self.emulator, self.azurite):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def load_sample_data(self, container: str = "labeledexamples") -> str:
        """Upload the breast-cancer set as the seed's `labeledexamples.arff`, and publish an initial
        model trained on its first 40 rows to every scoring endpoint; return that model's version."""
        import requests

        from .datasets import breast_cancer

        assert self.emulator is not None
        table = breast_cancer()
        blobs = self.blob_service
        if not blobs.get_container_client(container).exists():
            blobs.create_container(container)
        blobs.get_blob_client(container, "labeledexamples.arff").upload_blob(table.to_arff(), overwrite=True)
        seed = table.head(40)
        scoring = self.services["webServices"][1]
        response = requests.post(
            f"{self.emulator.http_base}/_emulator/web-services/{scoring['id']}/seed",
            json={"ColumnNames": list(seed.names), "Values": [list(r) for r in seed.rows]},
            timeout=60,
        )
        response.raise_for_status()
        version: str = response.json()["model_version"]
        self.load_aml_sample_data()
        return version

    def load_aml_sample_data(self) -> str | None:
        """Upload the set as CSV for the Azure ML pipeline and seed the workspace: version 1 of the model
        (40 rows) serving at 100% on deployment `blue` of the online endpoint, and the batch endpoint's default."""
        import requests

        from .datasets import breast_cancer

        workspaces = self.services.get("azureMl", {}).get("workspaces", [])
        if not workspaces or self.emulator is None:
            return None
        table = breast_cancer()
        container, blob = AML_DATA
        blobs = self.blob_service
        if not blobs.get_container_client(container).exists():
            blobs.create_container(container)
        blobs.get_blob_client(container, blob).upload_blob(table.to_csv(), overwrite=True)
        seed = table.head(40)
        deadline = time.monotonic() + 60
        while True:  # 409 while an endpoint is busy (an operation, or a rollout still cleaning up): wait for it
            response = requests.post(
                f"{self.emulator.http_base}/_emulator/azure-ml/workspaces/{workspaces[0]['name']}/seed",
                json={"ColumnNames": list(seed.names), "Values": [list(r) for r in seed.rows], "model": AML_MODEL},
                timeout=60,
            )
            if response.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        response.raise_for_status()
        version: str = response.json()["modelVersion"]
        return version

    @property
    def blob_service(self) -> BlobServiceClient:
        assert self.azurite is not None
        return BlobServiceClient.from_connection_string(self.azurite.connection_string)
