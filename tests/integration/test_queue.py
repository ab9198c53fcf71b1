"""The run queue's store and the lineage against a real Azurite: ordering, supersession, duplicates, recovery."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite
from retraining import operations
from retraining.errors import StorageError
from retraining.lineage import Lineage
from retraining.models import ModelArtifact, RequestAction, RunRequest, RunResult, RunStatus, Trigger, TriggerKind
from retraining.queue import RequestState, RunQueue, request_id_of
from retraining.retry import Retry
from retraining.settings import Settings
from retraining.storage import TrainingStorage
from retraining.storage_retry import QuickRetry

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


# ---- a take is idempotent per run id ------------------------------------------------------------------------
#
# The faults are injected where a real one surfaces: in azure-core's HTTP transport, under the Blob
# SDK's own retry policy (its waits set to zero), so each failed write goes through the SDK's retries
# and reaches the queue as the StorageError or StorageConflictError that TrainingStorage makes of it.

R1, R2 = "20261122T030000Z-00000001", "20261122T030500Z-00000002"


class FlakyTransport(RequestsTransport):  # type: ignore[misc]
    """The SDK's HTTP transport, but chosen writes of request blobs fail as a dropped connection does.

    Writes (PUTs of `.../requests/*.json`) are counted once each, however often the SDK retries them.
    `fail[n]` is how the n-th fails on every attempt: "refused" (never reaches Azurite) or "lost" (reaches
    it, and the answer is lost). `before[n]` runs just before the n-th is first sent.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writes = 0
        self.fail: dict[int, str] = {}
        self.before: dict[int, Callable[[], None]] = {}
        self._seen: list[tuple[Any, int]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        number = next((n for r, n in self._seen if r is request), None)
        if number is None and request.method == "PUT" and "/requests/" in request.url:
            self.writes += 1
            number = self.writes
            self._seen.append((request, number))
            if number in self.before:
                self.before.pop(number)()
        how = self.fail.get(number or 0)
        if how == "refused":
            raise ServiceRequestError("connection refused (injected)")
        if how == "lost":
            super().send(request, **kwargs)
            raise ServiceResponseError("connection reset before the answer (injected)")
        return super().send(request, **kwargs)


@pytest.fixture
def flaky(azurite: Azurite) -> FlakyTransport:
    return FlakyTransport()


@pytest.fixture
def flaky_queue(azurite: Azurite, flaky: FlakyTransport, queue: RunQueue) -> RunQueue:
    """The same queue as `queue`, through a transport that fails when told to."""
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, transport=flaky, retry_policy=QuickRetry(Retry(attempts=7, first_s=0.0, max_s=0.0))
    )
    return RunQueue(TrainingStorage(service, account_key=None), queue._container)


def state_of(queue: RunQueue, key: str) -> tuple[RequestState, str | None]:
    entry = queue.get("weekly-retrain", request_id_of(key))
    assert entry is not None
    return entry.state, entry.run_id or entry.superseded_by_run


def old_and_new(queue: RunQueue) -> None:
    queue.enqueue(request("blob:old", "2026-11-22T02:00:00Z"), NOW)
    queue.enqueue(request("blob:new", "2026-11-22T02:05:00Z"), NOW)


@pytest.mark.parametrize("how", ["refused", "lost"])
def test_a_take_retried_after_failing_midway_returns_the_request_it_took(
    queue: RunQueue, flaky_queue: RunQueue, flaky: FlakyTransport, how: str
) -> None:
    old_and_new(queue)
    flaky.fail[flaky.writes + 2] = how  # the take's second write: OLD marked superseded
    with pytest.raises(StorageError):
        flaky_queue.take_next("weekly-retrain", R1, NOW)
    assert state_of(queue, "blob:new") == (RequestState.RUNNING, R1)  # the failure left NEW running under R1
    retried = queue.take_next("weekly-retrain", R1, NOW)  # the activity's retry: same run id
    assert retried is not None and retried.entry.request.trigger.key == "blob:new"
    assert retried.superseded == (request_id_of("blob:old"),)
    assert state_of(queue, "blob:old") == (RequestState.SUPERSEDED, R1)
    queue.finish("weekly-retrain", retried.entry.request_id, R1, "Succeeded", "records/r1.json", NOW)
    assert queue.entries("weekly-retrain", [RequestState.PENDING, RequestState.RUNNING]) == []
    assert queue.take_next("weekly-retrain", R2, NOW) is None


@pytest.mark.parametrize("how", ["refused", "lost"])
def test_a_take_whose_first_write_failed_is_taken_afresh_or_found(
    queue: RunQueue, flaky_queue: RunQueue, flaky: FlakyTransport, how: str
) -> None:
    old_and_new(queue)
    flaky.fail[flaky.writes + 1] = how  # NEW marked running: never stored ("refused") or stored, answer lost
    with pytest.raises(StorageError):
        flaky_queue.take_next("weekly-retrain", R1, NOW)
    assert state_of(queue, "blob:old") == (RequestState.PENDING, None)
    retried = queue.take_next("weekly-retrain", R1, NOW)
    assert retried is not None and retried.entry.request.trigger.key == "blob:new"
    assert retried.superseded == (request_id_of("blob:old"),)
    assert state_of(queue, "blob:new") == (RequestState.RUNNING, R1)
    assert state_of(queue, "blob:old") == (RequestState.SUPERSEDED, R1)


def test_a_redelivered_take_returns_the_same_request_and_supersedes_nothing_more(queue: RunQueue) -> None:
    queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    first = queue.take_next("weekly-retrain", R1, NOW)
    again = queue.take_next("weekly-retrain", R1, NOW + timedelta(seconds=30))  # Durable ran it twice
    assert first is not None and again is not None
    assert again.entry.request_id == first.entry.request_id == request_id_of("blob:a") and again.superseded == ()
    assert again.entry.state is RequestState.RUNNING and again.entry.run_id == R1
    # Requests accepted after the first delivery are the next run's: a later delivery answers as the first did.
    queue.enqueue(request("blob:newer", "2026-11-22T02:10:00Z"), NOW)
    queue.enqueue(request("blob:older", "2026-11-22T01:00:00Z"), NOW)
    third = queue.take_next("weekly-retrain", R1, NOW + timedelta(seconds=60))
    assert third is not None and third.entry.request_id == request_id_of("blob:a") and third.superseded == ()
    assert state_of(queue, "blob:newer") == state_of(queue, "blob:older") == (RequestState.PENDING, None)
    queue.finish("weekly-retrain", request_id_of("blob:a"), R1, "Succeeded", None, NOW)
    following = queue.take_next("weekly-retrain", R2, NOW)
    assert following is not None and following.entry.request.trigger.key == "blob:newer"
    assert following.superseded == (request_id_of("blob:older"),)
    # And once the run has ended, a stray delivery of its take changes nothing.
    late = queue.take_next("weekly-retrain", R1, NOW + timedelta(minutes=5))
    assert (
        late is not None and late.entry.state is RequestState.DONE and late.entry.request_id == request_id_of("blob:a")
    )
    assert state_of(queue, "blob:newer") == (RequestState.RUNNING, R2)


def test_the_same_take_delivered_twice_at_once_takes_one_request(
    queue: RunQueue, flaky_queue: RunQueue, flaky: FlakyTransport
) -> None:
    old_and_new(queue)
    duplicate: list[Any] = []
    # The duplicate delivery runs to its end between the first one's listing and its first write.
    flaky.before[flaky.writes + 1] = lambda: duplicate.append(queue.take_next("weekly-retrain", R1, NOW))
    taken = flaky_queue.take_next("weekly-retrain", R1, NOW)
    assert taken is not None and duplicate[0] is not None
    assert taken.entry.request_id == duplicate[0].entry.request_id == request_id_of("blob:new")
    assert taken.superseded == duplicate[0].superseded == (request_id_of("blob:old"),)
    assert [e.request_id for e in queue.entries("weekly-retrain", [RequestState.RUNNING])] == [
        request_id_of("blob:new")
    ]


def test_a_take_interrupted_for_good_is_undone_by_recovery(
    queue: RunQueue, flaky_queue: RunQueue, flaky: FlakyTransport
) -> None:
    old_and_new(queue)
    flaky.fail[flaky.writes + 2] = "refused"
    with pytest.raises(StorageError):
        flaky_queue.take_next("weekly-retrain", R1, NOW)
    # Every retry failed too: the queue starts afresh, recovers, and takes under a new run id.
    assert [e.run_id for e in queue.requeue_interrupted("weekly-retrain", NOW)] == [R1]
    taken = queue.take_next("weekly-retrain", R2, NOW)
    assert taken is not None and taken.entry.request.trigger.key == "blob:new"
    assert taken.superseded == (request_id_of("blob:old"),)
    assert state_of(queue, "blob:old") == (RequestState.SUPERSEDED, R2)


# ---- a completed run is never run again ------------------------------------------------------------


def recorded(store: TrainingStorage, queue: RunQueue, run_id: str, key: str) -> str:
    """The run's record, as the run writes it before its queue finishes the request."""
    result = RunResult(
        run_id,
        "weekly-retrain",
        RunStatus.SUCCEEDED,
        request(key, "2026-11-22T02:00:00Z"),
        "2026-11-22T03:00:00Z",
        "2026-11-22T03:05:00Z",
        request_id=request_id_of(key),
    )
    return Lineage(store, queue._container).write_record(result)


def test_recovery_finishes_a_request_whose_run_wrote_its_record_instead_of_running_it_again(
    azurite: Azurite, store: TrainingStorage, queue: RunQueue
) -> None:
    queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    queue.enqueue(request("blob:b", "2026-11-22T01:00:00Z", RequestAction.PROMOTE), NOW)
    assert queue.take_next("weekly-retrain", R1, NOW) is not None  # the promote goes first
    path = recorded(store, queue, R1, "blob:b")  # the run completed; its `finish` never reached the store
    settings = Settings.from_env(
        {"TrainingStorage": azurite.connection_string, "RETRAIN_RUN_RECORDS_CONTAINER": queue._container}
    )
    recovered = operations.recover(settings, store, "weekly-retrain", NOW + timedelta(hours=1))
    assert recovered["finished"] == [request_id_of("blob:b")] and recovered["requeued"] == []
    done = queue.get("weekly-retrain", request_id_of("blob:b"))
    assert done is not None and done.state is RequestState.DONE and done.outcome == "Succeeded" and done.record == path
    following = queue.take_next("weekly-retrain", R2, NOW)
    assert following is not None and following.entry.request.trigger.key == "blob:a"


def test_recovery_names_the_runs_it_interrupted(azurite: Azurite, store: TrainingStorage, queue: RunQueue) -> None:
    queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    taken_at = NOW + timedelta(microseconds=250_000)
    assert queue.take_next("weekly-retrain", R1, taken_at) is not None
    assert [(e.request_id, e.run_id) for e in queue.running("weekly-retrain")] == [(request_id_of("blob:a"), R1)]
    settings = Settings.from_env(
        {"TrainingStorage": azurite.connection_string, "RETRAIN_RUN_RECORDS_CONTAINER": queue._container}
    )
    recovered = operations.recover(settings, store, "weekly-retrain", NOW + timedelta(minutes=5))
    assert recovered["requeued"] == [request_id_of("blob:a")] and recovered["interrupted_runs"] == [R1]
    assert queue.running("weekly-retrain") == []
    record = Lineage(store, queue._container).record("weekly-retrain", R1)  # the interrupted run's own record
    assert record.status is RunStatus.INTERRUPTED and record.request_id == request_id_of("blob:a")
    assert record.started_at == taken_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # when the run took it, not its id's second


def test_a_finish_that_arrives_after_recovery_requeued_its_request_still_closes_it(queue: RunQueue) -> None:
    queue.enqueue(request("blob:a", "2026-11-22T02:00:00Z"), NOW)
    assert queue.take_next("weekly-retrain", R1, NOW) is not None
    queue.requeue_interrupted("weekly-retrain", NOW)  # a fresh queue recovered while run R1 was still running
    queue.finish("weekly-retrain", request_id_of("blob:a"), R1, "Succeeded", "records/r1.json", NOW)
    done = queue.get("weekly-retrain", request_id_of("blob:a"))
    assert done is not None and done.state is RequestState.DONE and done.run_id == R1
    assert queue.take_next("weekly-retrain", R2, NOW) is None
