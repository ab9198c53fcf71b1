"""Last: wait for every pipeline to be idle, check the invariants, scan everything for secrets, write the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.stack import LocalStack

from ..conftest import settle, stack_secrets
from .conftest import PIPELINES, Ledger, write_summary

pytestmark = pytest.mark.e2e


def test_nothing_lost_leaked_duplicated_or_orphaned(stack: LocalStack, ledger: Ledger) -> None:
    assert stack.host is not None and stack.azurite is not None and stack.emulator is not None
    ledger.scenarios.append("secrets canary")
    for pipeline in PIPELINES:
        try:
            settle(stack, pipeline, timeout_s=240)
        except AssertionError as exc:  # a run that never ends is lost, not a reason to skip the count
            ledger.lost.append(str(exc))
    ledger.check_requests()

    host = stack.host
    secrets = stack_secrets(stack)
    hub = []
    for state in host.engine.client.get_all_orchestration_states():
        hub.append(
            json.dumps(
                host.management.status_body(
                    state, show_input=True, history=host.management.history(state.instance_id, True)
                )
            )
        )
    stored = []
    for container in ("runrecords", "trainingoutput"):
        client = stack.blob_service.get_container_client(container)
        stored += [
            client.download_blob(b.name).readall().decode() for b in client.list_blobs() if b.name.endswith(".json")
        ]
    files = {"Azurite's log": stack.azurite.log_path, "the emulator's log": stack.emulator.log_path}
    places = {
        "the app's and devhost's logs": ledger.logs.lines,
        "task hub": hub,
        "storage (records, queue, lineage)": stored,
        "HTTP responses": ledger.responses,
    } | {name: [Path(path).read_text(errors="replace")] for name, path in files.items()}
    for place, texts in places.items():
        for text in texts:
            for name, value in secrets.items():
                if value and value in text:  # reported with a little context, the secret itself masked
                    at = text.index(value)
                    ledger.leaked.append(
                        f"{name} in {place}: ...{text[max(0, at - 160) : at]}***{text[at + len(value) : at + len(value) + 40]}..."
                    )
            if "sig=" in text:
                ledger.leaked.append(f"a SAS signature in {place}")

    line = ledger.summary()
    write_summary(line)
    print("\n" + line)
    assert ledger.lost == [], ledger.lost
    assert ledger.leaked == [], sorted(set(ledger.leaked))
    assert ledger.duplicate_jobs() == [], ledger.duplicate_jobs()
    assert ledger.orphaned_jobs() == [], ledger.orphaned_jobs()
    assert ledger.faults_injected >= 100, line
    assert ledger.bad_inputs >= 1000, line
    assert ledger.runs() >= 20 and len(hub) >= 5 and len(ledger.logs.lines) > 100  # the scan saw real material
