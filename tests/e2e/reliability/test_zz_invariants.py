"""Last: scan everything for secrets, check the invariants, and write the summary line."""

from __future__ import annotations

import pytest
import requests

from devhost.services import AZURITE_KEY
from devhost.stack import LocalStack

from .conftest import Ledger, write_summary

pytestmark = pytest.mark.e2e


def test_nothing_lost_leaked_or_duplicated(stack: LocalStack, ledger: Ledger) -> None:
    assert stack.host is not None
    ledger.scenarios.append("secrets canary")
    secrets = {name: stack.settings[name] for name in ("TRAINING_API_KEY", "SCORING_API_KEY", "ARM_SERVICE_PRINCIPAL_KEY")}
    secrets["storage account key"] = AZURITE_KEY
    hub = []
    for state in stack.host.engine.client.get_all_orchestration_states():
        url = stack.host.management.management_urls(state.instance_id)["statusQueryGetUri"]
        hub.append(requests.get(url + "&showHistory=true&showHistoryOutput=true&showInput=true", timeout=10).text)
    records = []
    for container in ("runrecords", "trainingoutput"):
        client = stack.blob_service.get_container_client(container)
        records += [client.download_blob(b.name).readall().decode() for b in client.list_blobs() if b.name.endswith(".json")]
    places = {"logs": ledger.logs.lines, "task hub": hub, "run records": records, "HTTP responses": ledger.responses}
    for place, texts in places.items():
        for text in texts:
            for name, value in secrets.items():
                if value in text:
                    ledger.leaked.append(f"{name} in {place}")
            if "sig=" in text:
                ledger.leaked.append(f"a SAS signature in {place}")
    line = ledger.summary()
    write_summary(line)
    print("\n" + line)
    assert ledger.lost == [], ledger.lost
    assert ledger.leaked == [], ledger.leaked
    assert ledger.duplicate_jobs() == []
    assert len(ledger.runs) >= 10 and len(hub) >= 5 and len(ledger.logs.lines) > 50  # the scan saw real material
