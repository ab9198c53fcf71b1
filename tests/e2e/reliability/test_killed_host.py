"""devhost killed while a canary holds traffic: the next devhost leaves every target as the app knows it.

The orchestrations live in devhost's memory, so a killed devhost loses the rollout mid-way; its journal entry and
the request stay in storage. The new devhost's startup sweep starts a fresh queue, whose recovery records the
lost run as Interrupted and puts its request back in line; the request's next run undoes the orphan at its
first rollout step and rolls its own model out. The autouse fixture then checks what serves against the records.
"""

from __future__ import annotations

import time

import pytest

from devhost.stack import LocalStack
from tests.emulator.aml import Aml

from ..aml_workspace import PIPELINE, canary_of, deployments, endpoint, interrupted_record, target
from ..helpers import record_of, request_url, run_to_end, start_run, wait_for_phase, wait_for_request
from .ledger import Ledger


@pytest.mark.parametrize("share", [50, 100], ids=["at-50-percent", "before-the-clean-up"])
def test_a_devhost_killed_mid_canary_leaves_no_orphan_behind(
    stack: LocalStack, aml: Aml, ledger: Ledger, share: int
) -> None:
    ledger.scenarios.append(f"devhost killed while its canary holds {share}%")
    run_to_end(stack, PIPELINE)
    serving = {k: v for k, v in endpoint(aml)["traffic"].items() if v}
    accepted = ledger.accept(start_run(stack, PIPELINE))
    request_id = accepted["id"]
    killed_run = wait_for_phase(stack, accepted["statusUri"], "updating", timeout_s=120)["run_id"]
    canary = canary_of(aml, serving, timeout_s=60)
    deadline = time.monotonic() + 60
    while endpoint(aml)["traffic"].get(canary, 0) < share:
        assert time.monotonic() < deadline, f"the canary never took {share}%"
        time.sleep(0.02)

    stack.restart_host(killed=True)
    ledger.extra_faults += 1
    assert endpoint(aml)["traffic"].get(canary), "the killed rollout left no canary to undo"

    record = record_of(stack, wait_for_request(stack, request_url(stack, PIPELINE, request_id), timeout_s=240))
    assert record["run_id"] != killed_run, "the request was not run again"
    assert record["status"] == "Succeeded", (record["reason"], record["targets"])
    online = target(record, "online")
    assert killed_run in str(online["progress"].get("reconciled")), online["progress"]
    assert canary not in deployments(aml), "the killed run's canary outlived the next run"
    assert {k: v for k, v in endpoint(aml)["traffic"].items() if v} == {online["progress"]["deployment"]: 100}
    interrupted_record(stack, killed_run)
