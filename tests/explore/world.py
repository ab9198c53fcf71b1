"""The real services the explored activities talk to: one Azurite and one emulator per process, reset per schedule.

The app settings point at them (`devhost.stack.emulator_settings`) and go into `os.environ`, where the
activities read them at each call. The pipeline definitions are the shipped ones at local speed
(`devhost.stack.local_definitions`) with long policy timeouts: the explorer's clock jumps, so a deadline
should only pass where a schedule makes it pass.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import requests

from devhost.services import start_azurite, start_emulator
from devhost.stack import LocalStack, emulator_settings, local_definitions
from tests.e2e.receiver import Receiver
from tests.emulator.aml import Aml

LONG = "00:30:00"
APPROVAL = {"required": True, "timeout": "00:10:00"}
WEBHOOK_SECRET_SETTING = "EXPLORE_WEBHOOK_SECRET"


def explore_definitions(webhook: str | None = None) -> dict[str, Any]:
    """The shipped pipelines at local speed, plus `approval` (weekly-retrain whose gate waits for a person) and
    `aml-revert` (aml-retrain putting back another writer's change: `serving.otherWriters: revert`).

    With a `webhook`, every pipeline sends it every event (signed with `WEBHOOK_SECRET_SETTING`).
    """
    definitions = local_definitions()
    base = next(p for p in definitions["pipelines"] if p["name"] == "weekly-retrain")
    approval = copy.deepcopy(base) | {"name": "approval"}
    approval["gate"] = approval.get("gate", {}) | {"approval": APPROVAL}
    approval["data"]["watch"] = "never/*"
    definitions["pipelines"].append(approval)
    aml = next(p for p in definitions["pipelines"] if p["name"] == "aml-retrain")
    revert = copy.deepcopy(aml) | {"name": "aml-revert", "serving": {"otherWriters": "revert"}}
    definitions["pipelines"].append(revert)
    for pipeline in definitions["pipelines"]:
        pipeline["policy"] = pipeline["policy"] | {"timeout": LONG}
        pipeline["schedule"] = {"enabled": False}
        if webhook is not None:
            pipeline["notifications"] = {"webhook": webhook, "secretSetting": WEBHOOK_SECRET_SETTING}
        for target in pipeline.get("targets", []):
            target["policy"] = target["policy"] | {"timeout": LONG}
            if target.get("kind") == "aml-online":
                target["rollout"] = target.get("rollout", {}) | {"bake": "00:00:00.2", "trafficSteps": [50, 100]}
                target["health"] = target.get("health", {}) | {"probes": 4}
    return definitions


class World:
    """Azurite, the emulator, the settings in the environment; `reset()` before each schedule."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="retrain-explore-"))
        self.stack = LocalStack(self.workdir)
        self.settings: dict[str, str] = {}
        self.webhook = Receiver(fail_first=1)  # every delivery's first attempt gets 503
        self._aml: Aml | None = None
        self._environ: dict[str, str | None] = {}  # what the settings replaced, put back by stop()

    def start(self) -> World:
        stack = self.stack
        try:
            stack.azurite = start_azurite(self.workdir / "azurite")
            stack.emulator = start_emulator(
                self.workdir / "emulator", storage_connection_string=stack.azurite.connection_string
            )
            stack.services = stack.emulator.services()
        except BaseException:
            stack.stop()
            raise
        self.webhook.start()
        definitions = self.workdir / "pipelines.json"
        definitions.write_text(json.dumps(explore_definitions(self.webhook.url), indent=2))
        self.settings = emulator_settings(stack.services, stack.azurite) | {
            "RETRAIN_PIPELINES_FILE": str(definitions),
            WEBHOOK_SECRET_SETTING: secrets.token_urlsafe(24),
            "RETRAIN_PAGE_URL": "http://127.0.0.1:9/api/status",
        }
        self._environ = {name: os.environ.get(name) for name in self.settings}
        os.environ.update(self.settings)
        stack.load_sample_data()
        return self

    def stop(self) -> None:
        self.stack.stop()
        self.webhook.stop()
        for name, value in self._environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    @property
    def emulator_url(self) -> str:
        assert self.stack.emulator is not None
        return self.stack.emulator.http_base

    def reset(self) -> None:
        """No queue, record or serving state left from the last schedule; every target serves the seed model."""
        container = self.stack.blob_service.get_container_client("runrecords")
        if container.exists():
            for blob in container.list_blobs():
                container.delete_blob(blob.name)
        requests.delete(f"{self.emulator_url}/_emulator/faults", timeout=10)
        self.webhook.deliveries.clear()
        self.stack.load_sample_data()

    def aml(self) -> Aml:
        """The emulator's Azure ML workspace, reached as its service principal (for another writer's changes)."""
        if self._aml is None:
            services = self.stack.services
            self._aml = Aml(services["azureMl"]["workspaces"][0], services["caFile"], self.emulator_url)
        return self._aml

    def webhook_accepted(self) -> list[str]:
        """The delivery ids the webhook answered with 200 since the last reset."""
        return [d.headers.get("x-retrain-delivery", "") for d in list(self.webhook.deliveries) if d.answered == 200]

    def emulator_state(self) -> dict[str, Any]:
        state: dict[str, Any] = requests.get(f"{self.emulator_url}/_emulator/state", timeout=30).json()
        return state

    def blobs(self, prefix: str) -> list[dict[str, Any]]:
        return list(self.named_blobs(prefix).values())

    def named_blobs(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The JSON blobs of the records container under `prefix`, by name."""
        container = self.stack.blob_service.get_container_client("runrecords")
        if not container.exists():
            return {}
        found = {}
        for blob in container.list_blobs(name_starts_with=prefix):
            try:
                found[blob.name] = json.loads(container.download_blob(blob.name).readall())
            except ValueError:
                continue
        return found
