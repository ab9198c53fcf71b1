"""Triggers: the same one twice, four at once, and a storm of hundreds timed around the ends of runs.

Whatever arrives, and in whatever order: every accepted trigger either runs or is recorded as
superseded by the newer one that ran, no training job starts twice, and runs of one pipeline never
overlap.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import pytest
import requests

from devhost.datasets import breast_cancer
from devhost.stack import LocalStack
from retraining.instances import queue_instance_id
from retraining.models import parse_moment
from retraining.queue import RequestState, request_id_of

from ..helpers import DATA_CONTAINER, blob_request_url, run_records, settle, start_run, wait_for_request
from .ledger import Ledger

pytestmark = pytest.mark.e2e


def test_same_blob_event_twice_is_one_request(stack: LocalStack, ledger: Ledger, seeded: str) -> None:
    ledger.scenarios.append("duplicate blob event")
    assert stack.host is not None
    settle(stack)
    blob = stack.blob_service.get_blob_client(DATA_CONTAINER, "incoming/duplicate.arff")
    uploaded = blob.upload_blob(breast_cancer().head(200).to_arff(), overwrite=True)
    view = wait_for_request(
        stack,
        blob_request_url(stack, "weekly-retrain", DATA_CONTAINER, "incoming/duplicate.arff", uploaded["etag"]),
        appear_within_s=30,
    )
    listed = next(
        b
        for b in stack.blob_service.get_container_client(DATA_CONTAINER).list_blobs(
            name_starts_with="incoming/duplicate"
        )
    )
    event = stack.host._blob_created_event(stack.blob_service, DATA_CONTAINER, listed)
    function = stack.host.app.event_grid[0]
    before = len(run_records(stack, "weekly-retrain"))
    stack.host.fire(function, event)  # Event Grid delivers at least once: the same event again, twice
    stack.host.fire(function, event)
    settle(stack)
    ledger.expect("weekly-retrain", view["id"])
    assert len(run_records(stack, "weekly-retrain")) == before  # nothing started again
    assert (
        sum(
            r["request"]["training_blob"] == f"{DATA_CONTAINER}/incoming/duplicate.arff"
            for r in run_records(stack, "weekly-retrain")
        )
        == 1
    )


def test_four_concurrent_starts_leave_at_most_two_runs(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str
) -> None:
    ledger.scenarios.append("concurrent HTTP starts")
    settle(stack)
    requests.post(
        f"{emulator_url}/_emulator/faults",
        json={"kind": "job", "target": stack.services["webServices"][0]["id"], "duration_s": 1.0, "remaining": 2},
        timeout=10,
    )
    before = len(run_records(stack, "weekly-retrain"))
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(start_run(stack, "weekly-retrain"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [ledger.accept(a) for a in answers]
    views = [wait_for_request(stack, a["statusUri"]) for a in accepted]
    ran = [v for v in views if v["state"] == "done"]
    assert 1 <= len(ran) <= 2 and len(ran) + sum(v["state"] == "superseded" for v in views) == 4
    assert len(run_records(stack, "weekly-retrain")) - before == len(ran)  # one record per run, no more
    newest = max(accepted, key=lambda a: next(v["trigger"]["at"] for v in views if v["id"] == a["id"]))
    assert next(v for v in views if v["id"] == newest["id"])["state"] == "done"  # the newest trigger always runs


def _queue_phase(stack: LocalStack, pipeline: str) -> str:
    """'idle', or the phase of the run in progress, read from the engine in process (cheap, no HTTP)."""
    assert stack.host is not None
    client = stack.host.engine.client
    state = client.get_orchestration_state(queue_instance_id(pipeline))
    custom = json.loads(state.serialized_custom_status) if state and state.serialized_custom_status else {}
    if custom.get("state") != "running":
        return str(custom.get("state", "none"))
    run = client.get_orchestration_state(str(custom.get("run_instance")))
    run_status = json.loads(run.serialized_custom_status) if run and run.serialized_custom_status else {}
    return str(run_status.get("phase", "starting"))


def test_a_storm_of_triggers_around_the_ends_of_runs_loses_none(
    stack: LocalStack, ledger: Ledger, emulator_url: str
) -> None:
    """Hundreds of distinct HTTP and blob triggers, many fired the moment a run finishes or the queue goes idle."""
    ledger.scenarios.append("trigger storm")
    settle(stack, "storm")
    random.seed(7)
    arff = breast_cancer().head(80).to_arff()
    accepted: list[dict[str, Any]] = []
    blob_requests: list[str] = []
    stop, give_up = (
        time.monotonic() + 25,
        time.monotonic() + 120,
    )  # on a loaded machine runs end less often: fire longer
    fired = {"at_end": 0, "steady": 0}
    records_before = len(run_records(stack, "storm"))

    def http() -> None:
        accepted.append(ledger.accept(start_run(stack, "storm", {"dryRun": random.random() < 0.7})))

    def blob(n: int) -> None:
        name = f"storm/s{n:04d}.arff"
        uploaded = stack.blob_service.get_blob_client(DATA_CONTAINER, name).upload_blob(arff, overwrite=True)
        request_id = request_id_of(f"blob:{DATA_CONTAINER}/{name}:{uploaded['etag'].strip(chr(34))}")
        ledger.expect("storm", request_id)
        blob_requests.append(request_id)

    n = 0
    last_phase = ""
    while (time.monotonic() < stop or n < 200 or fired["at_end"] < 40) and time.monotonic() < give_up:
        phase = _queue_phase(stack, "storm")
        ending = phase in ("recording", "done", "idle") and phase != last_phase
        last_phase = phase
        burst = 4 if ending else 1
        for _ in range(burst):
            n += 1
            if random.random() < 0.25:
                blob(n)
            else:
                http()
        fired["at_end" if ending else "steady"] += burst
        time.sleep(0.02 if ending else random.uniform(0.05, 0.15))
    assert n >= 200 and fired["at_end"] >= 40, fired

    settle(stack, "storm", timeout_s=240)
    queue = ledger.queue
    mine = [a["id"] for a in accepted] + blob_requests
    deadline = time.monotonic() + 90  # the blob watcher delivers the last uploads on its own schedule
    while time.monotonic() < deadline and not set(mine) <= {e.request_id for e in queue.entries("storm")}:
        time.sleep(1.0)
    settle(stack, "storm", timeout_s=120)
    entries = {e.request_id: e for e in queue.entries("storm")}
    missing = [r for r in mine if r not in entries]
    assert not missing, f"{len(missing)} accepted triggers are not in the store"
    states = {r: entries[r].state for r in mine}
    unfinished = [r for r, s in states.items() if not s.finished]
    assert not unfinished, f"{len(unfinished)} triggers never ended"
    records = {r["run_id"]: r for r in run_records(stack, "storm")}
    ran = [entries[r] for r in mine if states[r] is RequestState.DONE]
    assert all(e.run_id in records for e in ran), "a run without a record"
    for request_id in mine:
        entry = entries[request_id]
        if entry.state is RequestState.SUPERSEDED:
            winner = records.get(entry.superseded_by_run or "")
            assert winner is not None and winner["request_id"] == entry.superseded_by
            assert (
                parse_moment(winner["request"]["trigger"]["at"], "at") >= entry.request.trigger.moment
            )  # only by a newer trigger
            assert request_id in winner["superseded"]
    new_runs = len(records) - records_before
    assert new_runs >= 5, f"only {new_runs} runs: the storm did not span several runs"
    print(
        f"\nstorm: {n} triggers ({fired['at_end']} at the end of a run), {new_runs} runs, "
        f"{sum(s is RequestState.SUPERSEDED for s in states.values())} superseded"
    )
