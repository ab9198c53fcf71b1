"""Each pipeline's run queue, kept in Blob storage: every accepted request is one small blob.

Starters write a request before they answer (create-only, so the same trigger twice is one
request); the pipeline's queue orchestration takes the next request whenever it is free. The
store, not a Durable event, is the source of truth: events only wake the queue, which always
looks here. That is what makes a trigger impossible to lose on azure-functions-durable 1.x,
where `continue_as_new` drops events it has not consumed and buffered events behave unlike the
local engine's (see devhost's module docstring).

    {records}/{pipeline}/requests/{request_id}.json    request_id = sha256(trigger key)[:32]
    {records}/{pipeline}/active/{request_id}           an empty marker while a request is pending or running

A request moves pending -> running (with its run id) -> done (with the run's outcome), or
pending -> superseded (by the newer request that ran instead: the seed's NewestFirst), or
pending -> cancelled (an operator cancelled it before it ran; `take_next` only takes pending ones). Blob
metadata carries the state, so finding the pending requests is one listing. Finished requests
are kept for `DUPLICATE_WINDOW`: a trigger delivered again within it is a duplicate.

Which request runs next: promote requests first, oldest first (an operator asked for them);
otherwise the retrain request whose trigger happened last, by the trigger's own time, never by
arrival order. The other pending retrains are superseded by it, and the run record lists them.

A take is idempotent per run id: Durable runs an activity at least once and retries one that failed
midway, always with the same run id. The first write of a take marks the chosen request running under
the run id, together with the requests it is about to supersede (`supersedes`); only then are those
marked superseded. A take that finds a request already running under its run id (blob metadata `run`
finds it in the listing) returns that request and completes its superseding, so a retry or a second
delivery returns what the first returned and never takes a second request.

The markers let the status page find what is in progress with one short listing, however many
finished requests the store keeps. They are written before a request and removed after it
finishes, both best effort: the requests alone decide what the queue does, a stale or missing
marker only changes what the page shows, and the daily retention sweep repairs them (`reconcile_active`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .errors import ConfigError, StorageConflictError, StorageError
from .models import BlobPath, Decision, RequestAction, RunRequest, parse_moment
from .storage import ListedBlob, TrainingStorage

logger = logging.getLogger(__name__)
DUPLICATE_WINDOW = timedelta(days=30)
_STATE_KEY = "state"
_RUN_KEY = "run"  # the run id of a request taken by a run, so a repeated take finds it in the listing
_ATTEMPTS = 5  # a request that keeps changing under a conditional write is looked at this often


class RequestState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RequestState.DONE, RequestState.SUPERSEDED, RequestState.CANCELLED)


def request_id_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class QueuedRequest:
    """A request as the queue keeps it."""

    request_id: str
    request: RunRequest
    state: RequestState
    accepted_at: str
    updated_at: str
    run_id: str | None = None
    outcome: str | None = None  # the run's status once done
    record: str | None = None  # the run record's path once done
    superseded_by: str | None = None  # the request id that ran instead
    superseded_by_run: str | None = None
    job: dict[str, Any] | None = None  # the training job of the running run, for cancelling after a crash
    interrupted: tuple[str, ...] = ()  # runs of this request that died with their host
    cancelled: Decision | None = None  # who cancelled it before it ran
    supersedes: tuple[str, ...] = ()  # while running: the requests its take supersedes (a retried take completes it)
    etag: str = field(default="", compare=False)
    started_at: str | None = None  # while running: when its run took it (the run's start, to the microsecond)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "request": self.request.to_dict(),
            "state": self.state.value,
            "accepted_at": self.accepted_at,
            "updated_at": self.updated_at,
            "run_id": self.run_id,
            "outcome": self.outcome,
            "record": self.record,
            "superseded_by": self.superseded_by,
            "superseded_by_run": self.superseded_by_run,
            "job": self.job,
            "interrupted": list(self.interrupted),
            "cancelled": self.cancelled.to_dict() if self.cancelled else None,
            "supersedes": list(self.supersedes),
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, raw: Any, etag: str = "") -> QueuedRequest:
        if not isinstance(raw, dict):
            raise ConfigError("queued request: expected an object")
        try:
            return cls(
                str(raw["request_id"]),
                RunRequest.from_dict(raw["request"]),
                RequestState(raw["state"]),
                str(raw["accepted_at"]),
                str(raw.get("updated_at") or raw["accepted_at"]),
                raw.get("run_id"),
                raw.get("outcome"),
                raw.get("record"),
                raw.get("superseded_by"),
                raw.get("superseded_by_run"),
                raw.get("job") if isinstance(raw.get("job"), dict) else None,
                tuple(str(r) for r in raw.get("interrupted", ())),
                Decision.from_dict(raw["cancelled"]) if raw.get("cancelled") else None,
                tuple(str(r) for r in raw.get("supersedes") or ()),
                etag,
                str(raw["started_at"]) if raw.get("started_at") else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"queued request: {exc}") from None

    @property
    def trigger_moment(self) -> datetime:
        return parse_moment(self.request.trigger.at, "trigger.at")


@dataclass(frozen=True)
class Taken:
    """The request the queue runs next, and the requests it supersedes."""

    entry: QueuedRequest
    superseded: tuple[str, ...]


class RunQueue:
    """The request blobs of every pipeline, under the run-records container."""

    def __init__(self, storage: TrainingStorage, container: str) -> None:
        self._storage = storage
        self._container = container

    def _path(self, pipeline: str, request_id: str) -> BlobPath:
        return BlobPath(self._container, f"{pipeline}/requests/{request_id}.json")

    def _marker(self, pipeline: str, request_id: str) -> BlobPath:
        return BlobPath(self._container, f"{pipeline}/active/{request_id}")

    def _mark(self, pipeline: str, request_id: str, active: bool) -> None:
        """Write or remove the in-progress marker; a failure is logged, never raised (see the module docstring)."""
        try:
            if active:
                self._storage.write_json(self._marker(pipeline, request_id), {})
            else:
                self._storage.delete(self._marker(pipeline, request_id))
        except StorageError as exc:
            logger.warning(
                "pipeline %s: the in-progress marker of request %s was not %s: %s",
                pipeline,
                request_id,
                "written" if active else "removed",
                exc,
            )

    def _write(self, entry: QueuedRequest, *, create: bool = False) -> QueuedRequest:
        pipeline = entry.request.pipeline
        if create:
            self._mark(pipeline, entry.request_id, True)
        etag = self._storage.write_json(
            self._path(pipeline, entry.request_id),
            entry.to_dict(),
            overwrite=not create,
            if_match=None if create else entry.etag,
            metadata={_STATE_KEY: entry.state.value} | ({_RUN_KEY: entry.run_id} if entry.run_id else {}),
        )
        if entry.state.finished:
            self._mark(pipeline, entry.request_id, False)
        return replace(entry, etag=etag)

    def active(self, pipeline: str) -> list[QueuedRequest]:
        """The pipeline's pending and running requests, found through their markers (one short listing)."""
        found = []
        for blob in self._storage.list(self._container, f"{pipeline}/active/"):
            try:
                entry = self.get(pipeline, blob.name.rsplit("/", 1)[-1])
            except (ConfigError, StorageError):
                continue
            if entry is not None and not entry.state.finished:
                found.append(entry)
        return found

    def reconcile_active(self, pipeline: str) -> int:
        """Mark every pending or running request, unmark the rest; return how many markers changed."""
        marked = {b.name.rsplit("/", 1)[-1] for b in self._storage.list(self._container, f"{pipeline}/active/")}
        active = {e.request_id for e in self.entries(pipeline, [RequestState.PENDING, RequestState.RUNNING])}
        for request_id in active - marked:
            self._mark(pipeline, request_id, True)
        for request_id in marked - active:
            self._mark(pipeline, request_id, False)
        return len(active ^ marked)

    def enqueue(self, request: RunRequest, now: datetime) -> tuple[QueuedRequest, bool]:
        """Accept a request; return it and whether it is new (False: the same trigger was accepted before)."""
        request_id = request_id_of(request.trigger.key)
        entry = QueuedRequest(request_id, request, RequestState.PENDING, _iso(now), _iso(now))
        try:
            return self._write(entry, create=True), True
        except StorageConflictError:
            existing = self.get(request.pipeline, request_id)
            if existing is None:  # deleted between the two calls: accept it again
                return self._write(entry, create=True), True
            return existing, False

    def get(self, pipeline: str, request_id: str) -> QueuedRequest | None:
        found = self._storage.read_json_with_etag(self._path(pipeline, request_id), 64 * 1024)
        return None if found is None else QueuedRequest.from_dict(found[0], found[1])

    def entries(self, pipeline: str, states: Iterable[RequestState] | None = None) -> list[QueuedRequest]:
        """The pipeline's requests in the given states (all if None); unreadable ones are skipped."""
        return self._read(pipeline, self._listing(pipeline), states)

    def running(self, pipeline: str) -> list[QueuedRequest]:
        """The requests running now, each with the run id it runs under (for recovery, or a check of its run)."""
        return self.entries(pipeline, [RequestState.RUNNING])

    def _listing(self, pipeline: str) -> list[ListedBlob]:
        return self._storage.list(self._container, f"{pipeline}/requests/")

    def _read(
        self, pipeline: str, listed: Iterable[ListedBlob], states: Iterable[RequestState] | None = None
    ) -> list[QueuedRequest]:
        wanted = {s.value for s in states} if states is not None else None
        found = []
        for blob in listed:
            if wanted is not None and blob.metadata.get(_STATE_KEY) not in wanted:
                continue
            try:
                entry = self.get(pipeline, blob.name.rsplit("/", 1)[-1].removesuffix(".json"))
            except (ConfigError, StorageError):
                continue  # a blob someone else put here: never let it stop the queue
            if entry is not None and (wanted is None or entry.state.value in wanted):
                found.append(entry)
        return found

    def _taken_by(self, pipeline: str, listed: list[ListedBlob], run_id: str) -> QueuedRequest | None:
        """The request a take under `run_id` already took, if any (found by its blob's metadata)."""
        candidates = [
            b
            for b in listed
            if b.metadata.get(_RUN_KEY) == run_id
            # written before requests carried their run in metadata: read the running ones to be sure
            or (_RUN_KEY not in b.metadata and b.metadata.get(_STATE_KEY) == RequestState.RUNNING.value)
        ]
        return next((e for e in self._read(pipeline, candidates) if e.run_id == run_id), None)

    def take_next(self, pipeline: str, run_id: str, now: datetime) -> Taken | None:
        """Mark the next request running under `run_id` and supersede the retrains it makes redundant.

        Idempotent per `run_id` (see the module docstring): if a take under `run_id` already took a
        request, that request is returned with the same superseded list, and any superseding the earlier
        take did not finish is finished now; nothing else is taken. A failure at any point leaves the
        store consistent: the request is running under `run_id` with the list still to supersede, which
        the retry completes (or a fresh queue's recovery puts it back in line).
        """
        for _ in range(_ATTEMPTS):
            listed = self._listing(pipeline)
            taken = self._taken_by(pipeline, listed, run_id)
            if taken is not None:
                return self._supersede(taken, {}, now)
            pending = self._read(pipeline, listed, [RequestState.PENDING])
            if not pending:
                return None
            promotes = sorted(  # reconciliations first (quick, and due before any rollout), then promotions
                (e for e in pending if e.request.action in (RequestAction.RECONCILE, RequestAction.PROMOTE)),
                key=lambda e: (e.request.action is not RequestAction.RECONCILE, e.accepted_at, e.request_id),
            )
            retrains = sorted(
                (e for e in pending if e.request.action is RequestAction.RETRAIN),
                key=lambda e: (e.trigger_moment, e.accepted_at, e.request_id),
                reverse=True,
            )
            chosen = promotes[0] if promotes else retrains[0]
            older = retrains[1:] if chosen.request.action is RequestAction.RETRAIN else []
            try:
                running = self._write(
                    replace(
                        chosen,
                        state=RequestState.RUNNING,
                        run_id=run_id,
                        supersedes=tuple(e.request_id for e in older),
                        updated_at=_iso(now),
                        started_at=_iso(now),
                    )
                )
            except StorageConflictError:
                continue  # changed meanwhile (another delivery of this take, a cancel): look again
            return self._supersede(running, {e.request_id: e for e in older}, now)
        raise StorageError(f"the requests of pipeline {pipeline} kept changing; gave up taking one for run {run_id}")

    def _supersede(self, taken: QueuedRequest, known: dict[str, QueuedRequest], now: datetime) -> Taken:
        """Finish the superseding of the requests `taken` supersedes; return those superseded by its run.

        Only while `taken` runs: the take of a run that has ended only reports what it superseded.
        """
        pipeline = taken.request.pipeline
        superseded = []
        for request_id in taken.supersedes:
            entry = known.get(request_id)
            for _ in range(_ATTEMPTS):
                if entry is None:
                    entry = self.get(pipeline, request_id)
                if entry is None or entry.state is not RequestState.PENDING or taken.state is not RequestState.RUNNING:
                    break
                try:
                    entry = self._write(
                        replace(
                            entry,
                            state=RequestState.SUPERSEDED,
                            superseded_by=taken.request_id,
                            superseded_by_run=taken.run_id,
                            updated_at=_iso(now),
                        )
                    )
                except StorageConflictError:
                    entry = None  # changed meanwhile (cancelled, or superseded by another delivery): look again
            if entry is not None and entry.state is RequestState.SUPERSEDED and entry.superseded_by_run == taken.run_id:
                superseded.append(request_id)
            # otherwise it was cancelled, or kept changing: it is left for the next turn
        return Taken(taken, tuple(superseded))

    def note_job(self, pipeline: str, request_id: str, job: dict[str, Any], now: datetime) -> None:
        """Remember the running request's training job, so a crash can still cancel it."""
        self._update(pipeline, request_id, lambda e: replace(e, job=job, updated_at=_iso(now)))

    def finish(
        self, pipeline: str, request_id: str, run_id: str, outcome: str, record: str | None, now: datetime
    ) -> None:
        """Close the request `run_id` ran, with its outcome; nothing if another run has taken it since.

        A request a fresh queue's recovery put back in line while `run_id` was still going is closed too:
        its run did complete, and it must not run again.
        """

        def done(entry: QueuedRequest) -> QueuedRequest:
            requeued = entry.state is RequestState.PENDING and entry.interrupted[-1:] == (run_id,)
            if entry.run_id != run_id and not requeued:
                return entry  # re-queued and taken by another run meanwhile: that run finishes it
            return replace(
                entry,
                state=RequestState.DONE,
                run_id=run_id,
                outcome=outcome,
                record=record,
                job=None,
                updated_at=_iso(now),
            )

        self._update(pipeline, request_id, done)

    def cancel_pending(self, pipeline: str, request_id: str, decision: Decision, now: datetime) -> QueuedRequest | None:
        """Mark a pending request cancelled, so no run takes it; return it as it is now (None: no such request).

        A request that is no longer pending is returned unchanged: the caller tells running from finished.
        """
        for _ in range(5):
            entry = self.get(pipeline, request_id)
            if entry is None or entry.state is not RequestState.PENDING:
                return entry
            try:
                return self._write(
                    replace(entry, state=RequestState.CANCELLED, cancelled=decision, updated_at=_iso(now))
                )
            except StorageConflictError:
                continue  # taken or changed meanwhile: look again
        raise StorageError(f"request {request_id} of pipeline {pipeline} kept changing; gave up cancelling it")

    def requeue_interrupted(self, pipeline: str, now: datetime) -> list[QueuedRequest]:
        """Requests left running by a queue that died: put them back in line; return them as they were.

        A run that completed and only failed to `finish` is not interrupted: a caller that keeps run
        records checks each of `running()` and calls `finish` or `requeue` (as `operations.recover` does).
        """
        interrupted = self.running(pipeline)
        for entry in interrupted:
            self.requeue(pipeline, entry.request_id, entry.run_id, now)
        return interrupted

    def requeue(self, pipeline: str, request_id: str, run_id: str | None, now: datetime) -> None:
        """Put a request running under `run_id` back in line (nothing if it is no longer running under it)."""
        self._update(
            pipeline,
            request_id,
            lambda e: (
                replace(
                    e,
                    state=RequestState.PENDING,
                    interrupted=(*e.interrupted, e.run_id or "?"),
                    run_id=None,
                    started_at=None,
                    job=None,
                    supersedes=(),
                    updated_at=_iso(now),
                )
                if e.state is RequestState.RUNNING and e.run_id == run_id
                else e
            ),
        )

    def forget_finished(self, pipeline: str, now: datetime, keep: timedelta = DUPLICATE_WINDOW) -> int:
        """Delete finished requests older than `keep`; their run records stay. Return how many went."""
        gone = 0
        for entry in self.entries(pipeline, [RequestState.DONE, RequestState.SUPERSEDED, RequestState.CANCELLED]):
            if parse_moment(entry.updated_at, "updated_at") < now - keep:
                self._storage.delete(self._path(pipeline, entry.request_id))
                self._mark(pipeline, entry.request_id, False)
                gone += 1
        return gone

    def _update(self, pipeline: str, request_id: str, change: Any, attempts: int = 5) -> None:
        for _ in range(attempts):
            entry = self.get(pipeline, request_id)
            if entry is None:
                raise StorageError(f"request {request_id} of pipeline {pipeline} is not in the queue")
            updated = change(entry)
            if updated == entry:
                return
            try:
                self._write(updated)
                return
            except StorageConflictError:
                continue
        raise StorageError(
            f"request {request_id} of pipeline {pipeline} kept changing; gave up after {attempts} attempts"
        )
