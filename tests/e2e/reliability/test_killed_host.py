"""devhost, in a process of its own, killed (SIGKILL) while its canary holds 10%, 50% or 100%, or while its clean-up
deletes: the next devhost records the run Interrupted and runs the request again, and that run undoes the orphan
first, so what serves is the champion or a fully rolled-out candidate, with no orphan deployment left.

Each reports to the reliability ledger; the autouse fixture of tests/e2e checks what serves against the records
(the rest of what cuts a rollout off or changes its target: test_serving_truth.py).
"""

from __future__ import annotations

import time

import pytest

from devhost.stack import LocalStack
from tests.emulator.aml import Aml

from ..aml_workspace import (
    PIPELINE,
    canary_of,
    created_by_the_pipeline,
    deployments,
    endpoint,
    interrupted_record,
    target,
)
from ..helpers import api, record_of, request_url, run_to_end, start_run, wait_for_phase, wait_for_request
from .ledger import Ledger

KILLED_AT = {"at-10-percent": 10, "at-50-percent": 50, "before-the-clean-up": 100, "during-the-clean-up": 100}


@pytest.mark.parametrize("moment", list(KILLED_AT))
def test_a_devhost_killed_mid_canary_leaves_no_orphan_behind(
    stack: LocalStack, aml: Aml, ledger: Ledger, moment: str
) -> None:
    ledger.scenarios.append(f"devhost killed mid-canary ({moment})")
    run_to_end(stack, PIPELINE)
    if moment == "during-the-clean-up":
        # the killed run's clean-up has one of the pipeline's deployments to delete (beyond the champion's, which
        # keepDeployments 1 keeps), and each deletion takes long enough to be caught at
        while len(created_by_the_pipeline(aml)) < 2:
            run_to_end(stack, PIPELINE)
        aml.settings(timings={"delete_s": 3})
    serving = {k: v for k, v in endpoint(aml)["traffic"].items() if v}
    host = stack.host_as_process()
    try:
        accepted = ledger.accept(start_run(stack, PIPELINE, host=host))
        killed_run = wait_for_phase(stack, accepted["statusUri"], "updating", timeout_s=120, host=host)["run_id"]
        canary = canary_of(aml, serving, timeout_s=60)
        deadline = time.monotonic() + 60
        while endpoint(aml)["traffic"].get(canary, 0) < KILLED_AT[moment] or (
            moment == "during-the-clean-up"
            and "Deleting" not in {d["provisioningState"] for d in deployments(aml).values()}
        ):
            assert time.monotonic() < deadline, f"the rollout never reached the moment {moment}"
            time.sleep(0.02)
    finally:
        host.kill()
        stack.restart_host()  # the next devhost, in this process again
    assert host.function_key in host.log_path.read_text()  # serve prints it at start: the log is the user's alone
    assert oct(host.log_path.stat().st_mode & 0o777) == "0o600"
    ledger.extra_faults += 1
    assert endpoint(aml)["traffic"].get(canary), "the killed rollout left no canary"

    record = record_of(stack, wait_for_request(stack, request_url(stack, PIPELINE, accepted["id"]), timeout_s=240))
    assert record["run_id"] != killed_run, "the request was not run again"
    assert record["status"] == "Succeeded", (record["reason"], record["targets"])
    online = target(record, "online")
    assert {k: v for k, v in endpoint(aml)["traffic"].items() if v} == {online["progress"]["deployment"]: 100}
    if moment == "during-the-clean-up" and killed_run not in str(online["progress"].get("reconciled")):
        # the kill came once the online rollout had ended (its clean-up's deletion goes on in the service), while
        # the batch endpoint's rollout ran: the next run found nothing to undo online, and the killed run's
        # deployment, verified at 100%, is kept as the previous one (keepDeployments 1), with no traffic
        assert online["progress"].get("kept") == [canary], online["progress"]
    else:
        assert killed_run in str(online["progress"].get("reconciled")), online["progress"]
        assert canary not in deployments(aml), "the killed run's canary outlived the next run"
    interrupted_record(stack, killed_run)
    # what the page and /models say: the rerun's model on both targets, nothing unsettled, the killed run listed
    models = api(stack, f"pipelines/{PIPELINE}/models").json()
    assert {name: served["run_id"] for name, served in models["targets"].items()} == {
        "online": record["run_id"],
        "batch": record["run_id"],
    }, models["targets"]
    assert models["unsettled"] == {}, models["unsettled"]
    page = api(stack, f"status/{PIPELINE}")
    assert page.status_code == 200 and record["run_id"] in page.text and killed_run in page.text
