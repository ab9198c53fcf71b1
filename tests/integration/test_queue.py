"""The run queue's store and the lineage against a real Azurite: ordering, supersession, duplicates, recovery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from devhost.services import Azurite
from retraining.lineage import Lineage
from retraining.models import ModelArtifact, RequestAction, RunRequest, Trigger, TriggerKind
from retraining.queue import RequestState, RunQueue, request_id_of
from retraining.settings import Settings
from retraining.storage import TrainingStorage

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def store(azurite: Azurite) -> TrainingStorage:
    return TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": azurite.connection_string}))


@pytest.fixture
def queue(store: TrainingStorage) -> RunQueue:
    return RunQueue(store, f"q{uuid.uuid4().hex[:12]}")


def request(key: str, at: str, action: RequestAction = RequestAction.RETRAIN) -> RunRequest:
    source = "20261114T030000Z-1a2b3c4d" if action is RequestAction.PROMOTE else None
    return RunRequest("weekly-retrain", Trigger(TriggerKind.BLOB, key, at), action=action, source_run=source)


def test_the_same_trigger_twice_is_one_request(queue: RunQueue) -> None:
    first, accepted = queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    again, accepted_again = queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW + timedelta(seconds=5))
    assert accepted and not accepted_again and again.request_id == first.request_id == request_id_of("blob:a")
    assert len(queue.entries("weekly-retrain")) == 1


def test_newest_by_trigger_time_wins_whatever_the_arrival_order(queue: RunQueue) -> None:
    queue.enqueue(request("blob:newer", "2026-11-22T02:05:00Z"), NOW)  # arrives first
    queue.enqueue(request("blob:older", "2026-11-22T02:01:00Z"), NOW + timedelta(seconds=1))  # arrives last
    queue.enqueue(request("blob:middle", "2026-11-22T02:03:00Z"), NOW + timedelta(seconds=2))
    taken = queue.take_next("weekly-retrain", "20261122T030000Z-00000001", NOW)
    assert taken is not None and taken.entry.request.trigger.key == "blob:newer"
    assert set(taken.superseded) == {request_id_of("blob:older"), request_id_of("blob:middle")}
    older = queue.get("weekly-retrain", request_id_of("blob:older"))
    assert (
        older is not None
        and older.state is RequestState.SUPERSEDED
        and older.superseded_by_run == "20261122T030000Z-00000001"
    )
    assert queue.take_next("weekly-retrain", "20261122T030000Z-00000002", NOW) is None


def test_promote_requests_go_first_and_are_never_superseded(queue: RunQueue) -> None:
    queue.enqueue(request("blob:data", "2026-11-22T02:05:00Z"), NOW)
    queue.enqueue(request("http:promote", "2026-11-22T02:06:00Z", RequestAction.PROMOTE), NOW)
    taken = queue.take_next("weekly-retrain", "20261122T030000Z-00000001", NOW)
    assert taken is not None and taken.entry.request.action is RequestAction.PROMOTE and taken.superseded == ()
    following = queue.take_next("weekly-retrain", "20261122T030000Z-00000002", NOW)
    assert following is not None and following.entry.request.trigger.key == "blob:data"


def test_a_finished_request_keeps_its_outcome_and_is_forgotten_after_the_window(queue: RunQueue) -> None:
    entry, _ = queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    queue.take_next("weekly-retrain", "20261122T030000Z-00000001", NOW)
    queue.finish("weekly-retrain", entry.request_id, "20261122T030000Z-00000001", "Succeeded", "records/x.json", NOW)
    done = queue.get("weekly-retrain", entry.request_id)
    assert done is not None and done.state is RequestState.DONE and done.outcome == "Succeeded"
    assert queue.forget_finished("weekly-retrain", NOW + timedelta(days=29)) == 0
    assert queue.forget_finished("weekly-retrain", NOW + timedelta(days=31)) == 1
    assert queue.get("weekly-retrain", entry.request_id) is None


def test_requests_left_running_by_a_dead_queue_go_back_in_line(queue: RunQueue) -> None:
    entry, _ = queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    queue.take_next("weekly-retrain", "20261122T030000Z-00000001", NOW)
    queue.note_job(
        "weekly-retrain",
        entry.request_id,
        {"pipeline": "weekly-retrain", "run_id": "20261122T030000Z-00000001", "job_id": "j1", "outputs": {}},
        NOW,
    )
    interrupted = queue.requeue_interrupted("weekly-retrain", NOW)
    assert [e.job["job_id"] for e in interrupted if e.job] == ["j1"]
    again = queue.get("weekly-retrain", entry.request_id)
    assert (
        again is not None
        and again.state is RequestState.PENDING
        and again.interrupted == ("20261122T030000Z-00000001",)
    )
    assert queue.take_next("weekly-retrain", "20261122T030500Z-00000002", NOW) is not None


def test_a_blob_someone_else_put_in_the_queue_is_skipped(queue: RunQueue, store: TrainingStorage) -> None:
    from retraining.models import BlobPath

    store.write_json(
        BlobPath(queue._container, "weekly-retrain/requests/junk.json"),
        {"not": "a request"},
        metadata={"state": "pending"},
    )
    queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    taken = queue.take_next("weekly-retrain", "20261122T030000Z-00000001", NOW)
    assert taken is not None and taken.entry.request.trigger.key == "blob:a"


def test_the_champion_moves_only_when_asked_and_keeps_earlier_ones(store: TrainingStorage) -> None:
    lineage = Lineage(store, f"l{uuid.uuid4().hex[:12]}")
    first = ModelArtifact("out/1/model.ilearner", 10, "a" * 64, {"AUC": 0.9}, ("x",), "class")
    second = ModelArtifact("out/2/model.ilearner", 10, "b" * 64, {"AUC": 0.95}, ("x",), "class")
    lineage.record_serving(
        "weekly-retrain", "20261115T030000Z-00000001", first, ["endpoint2", "myWebService"], champion=True, now=NOW
    )
    lineage.record_serving(
        "weekly-retrain", "20261122T030000Z-00000002", second, ["endpoint2"], champion=False, now=NOW
    )
    serving = lineage.serving("weekly-retrain")
    assert serving.champion is not None and serving.champion.run_id == "20261115T030000Z-00000001"
    assert serving.targets["endpoint2"].run_id == "20261122T030000Z-00000002"
    lineage.record_serving(
        "weekly-retrain", "20261122T030000Z-00000002", second, ["myWebService"], champion=True, now=NOW
    )
    serving = lineage.serving("weekly-retrain")
    assert serving.champion is not None and serving.champion.model.sha256 == "b" * 64
    assert [p.run_id for p in serving.previous] == ["20261115T030000Z-00000001"]
