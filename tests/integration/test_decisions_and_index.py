"""The decisions store, the run index and cancelled requests against a real Azurite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from devhost.services import Azurite
from retraining.decisions import Decisions
from retraining.lineage import Lineage
from retraining.models import BlobPath, Decision, DecisionAction, RunRequest, RunResult, RunStatus, Trigger, TriggerKind
from retraining.queue import RequestState, RunQueue
from retraining.settings import Settings
from retraining.storage import TrainingStorage

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
RUN = "20261122T030000Z-1a2b3c4d"


@pytest.fixture
def store(azurite: Azurite) -> TrainingStorage:
    return TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": azurite.connection_string}))


@pytest.fixture
def container() -> str:
    return f"d{uuid.uuid4().hex[:12]}"


def result(run_id: str, status: RunStatus = RunStatus.SUCCEEDED) -> RunResult:
    request = RunRequest("weekly-retrain", Trigger(TriggerKind.SCHEDULE, f"schedule:{run_id}", "2026-11-22T03:00:00Z"))
    return RunResult(run_id, "weekly-retrain", status, request, "2026-11-22T03:00:00Z", "2026-11-22T03:05:00Z")


def test_the_first_decision_wins_and_a_cancel_is_kept_apart(store: TrainingStorage, container: str) -> None:
    decisions = Decisions(store, container)
    approve = Decision(DecisionAction.APPROVE, "ana", "2026-11-22T04:00:00Z")
    reject = Decision(DecisionAction.REJECT, "bo", "2026-11-22T04:00:01Z", "no")
    assert decisions.record("weekly-retrain", RUN, approve) == (approve, True)
    assert decisions.record("weekly-retrain", RUN, reject) == (approve, False)  # too late: the approval stands
    assert decisions.signals("weekly-retrain", RUN).cancel is None
    cancel = Decision(DecisionAction.CANCEL, "ops", "2026-11-22T04:00:02Z")
    decisions.record("weekly-retrain", RUN, cancel)
    assert decisions.signals("weekly-retrain", RUN).to_dict() == {
        "decision": approve.to_dict(),
        "cancel": cancel.to_dict(),
    }


def test_records_are_indexed_once_by_month_and_read_newest_first(store: TrainingStorage, container: str) -> None:
    lineage = Lineage(store, container)
    for run_id in ("20261030T030000Z-00000001", "20261122T030000Z-00000002", "20261122T040000Z-00000003"):
        lineage.write_record(result(run_id))
    lineage.write_record(result("20261122T040000Z-00000003"))  # a retried write indexes nothing twice
    assert lineage.index.months("weekly-retrain") == [
        "weekly-retrain/index/2026-11.json",
        "weekly-retrain/index/2026-10.json",
    ]
    recent = lineage.index.recent("weekly-retrain", 10)
    assert [r["run_id"] for r in recent] == [
        "20261122T040000Z-00000003",
        "20261122T030000Z-00000002",
        "20261030T030000Z-00000001",
    ]
    assert recent[0]["record"] == f"{container}/weekly-retrain/runs/20261122T040000Z-00000003.json"
    assert [r["run_id"] for r in lineage.index.recent("weekly-retrain", 2)] == [r["run_id"] for r in recent[:2]]


def test_records_the_index_lacks_are_added_by_reconcile(store: TrainingStorage, container: str) -> None:
    lineage = Lineage(store, container)
    old = result("20260901T030000Z-00000009", RunStatus.FAILED)
    store.write_json(
        lineage.record_path("weekly-retrain", old.run_id), old.to_dict(), overwrite=False
    )  # written before the index
    lineage.write_record(result("20261122T030000Z-00000002"))
    assert len(lineage.index.recent("weekly-retrain", 10)) == 1
    assert lineage.reconcile_index("weekly-retrain") == 1 and lineage.reconcile_index("weekly-retrain") == 0
    assert [r["status"] for r in lineage.index.recent("weekly-retrain", 10)] == ["Succeeded", "Failed"]


def test_a_pending_request_can_be_cancelled_and_is_never_taken(store: TrainingStorage, container: str) -> None:
    queue = RunQueue(store, container)
    entry, _ = queue.enqueue(
        RunRequest("weekly-retrain", Trigger(TriggerKind.HTTP, "http:x", "2026-11-22T03:00:00Z")), NOW
    )
    cancel = Decision(DecisionAction.CANCEL, "ops", "2026-11-22T03:01:00Z")
    cancelled = queue.cancel_pending("weekly-retrain", entry.request_id, cancel, NOW)
    assert cancelled is not None and cancelled.state is RequestState.CANCELLED and cancelled.cancelled == cancel
    assert cancelled.state.finished and queue.take_next("weekly-retrain", RUN, NOW) is None
    assert queue.cancel_pending("weekly-retrain", "0" * 32, cancel, NOW) is None


def test_markers_follow_requests_in_progress_and_are_repaired(store: TrainingStorage, container: str) -> None:
    queue = RunQueue(store, container)
    first, _ = queue.enqueue(
        RunRequest("weekly-retrain", Trigger(TriggerKind.HTTP, "http:1", "2026-11-22T03:00:00Z")), NOW
    )
    second, _ = queue.enqueue(
        RunRequest("weekly-retrain", Trigger(TriggerKind.HTTP, "http:2", "2026-11-22T03:00:01Z")), NOW
    )
    assert {e.request_id for e in queue.active("weekly-retrain")} == {first.request_id, second.request_id}
    taken = queue.take_next("weekly-retrain", RUN, NOW)
    assert taken is not None and taken.superseded == (
        first.request_id,
    )  # the newer trigger runs; the older one is done
    assert [(e.request_id, e.state) for e in queue.active("weekly-retrain")] == [
        (second.request_id, RequestState.RUNNING)
    ]
    queue.finish("weekly-retrain", second.request_id, RUN, "Succeeded", None, NOW)
    assert queue.active("weekly-retrain") == []
    store.write_json(BlobPath(container, f"weekly-retrain/active/{'f' * 32}"), {})  # a stale marker: no such request
    assert queue.active("weekly-retrain") == [] and queue.reconcile_active("weekly-retrain") == 1
    assert store.list(container, "weekly-retrain/active/") == []
