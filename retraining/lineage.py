"""Run records and model lineage in Blob storage: what ran, which model is champion, what serves where.

    {records}/{pipeline}/runs/{run_id}.json     one record per run, never overwritten
    {records}/{pipeline}/serving.json           the champion, each target's model, earlier champions
    {records}/{pipeline}/index/{YYYY-MM}.json   run summaries for listings (`retraining.history`)

Run ids start with the run's start time, so listing a pipeline's runs gives them in order.
The champion is the model of the last run that updated every target (or was promoted); the
gate compares candidates with it, and the schema check compares their data with its data.
A target's entry changes only when that target confirmed the new model. A target a run left in a
state nobody knows (its rollback failed, or its rollout ended without an outcome) is marked
`unsettled` until a later run confirms a model on it: its entry says what served before, not now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ConfigError, StorageConflictError, StorageError
from .history import RunIndex, summary_of
from .inputs import Delivery
from .models import BlobPath, ModelArtifact, RunResult, check_run_id
from .storage import TrainingStorage

PREVIOUS_CHAMPIONS = 20


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Served:
    run_id: str
    model: ModelArtifact
    since: str

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model": self.model.to_dict(), "since": self.since}

    @classmethod
    def from_dict(cls, raw: Any) -> Served:
        return cls(str(raw["run_id"]), ModelArtifact.from_dict(raw["model"]), str(raw["since"]))


@dataclass(frozen=True)
class Unsettled:
    """A target whose state a run could not establish: what it serves is not known."""

    run_id: str
    state: str  # the run's outcome for it: rollback_failed, unknown
    since: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "state": self.state, "since": self.since, "reason": self.reason}

    @classmethod
    def from_dict(cls, raw: Any) -> Unsettled:
        return cls(str(raw["run_id"]), str(raw["state"]), str(raw["since"]), str(raw.get("reason") or ""))


@dataclass(frozen=True)
class Serving:
    champion: Served | None = None
    targets: dict[str, Served] = field(default_factory=dict)
    previous: tuple[Served, ...] = ()
    unsettled: dict[str, Unsettled] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion.to_dict() if self.champion else None,
            "targets": {k: v.to_dict() for k, v in self.targets.items()},
            "previous": [p.to_dict() for p in self.previous],
            "unsettled": {k: v.to_dict() for k, v in self.unsettled.items()},
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Serving:
        if not isinstance(raw, dict):
            return cls()
        champion = raw.get("champion")
        return cls(
            Served.from_dict(champion) if champion else None,
            {str(k): Served.from_dict(v) for k, v in (raw.get("targets") or {}).items()},
            tuple(Served.from_dict(p) for p in raw.get("previous") or ()),
            {str(k): Unsettled.from_dict(v) for k, v in (raw.get("unsettled") or {}).items()},
        )


class Lineage:
    def __init__(self, storage: TrainingStorage, container: str) -> None:
        self._storage = storage
        self._container = container

    def record_path(self, pipeline: str, run_id: str) -> BlobPath:
        return BlobPath(self._container, f"{pipeline}/runs/{run_id}.json")

    def _serving_path(self, pipeline: str) -> BlobPath:
        return BlobPath(self._container, f"{pipeline}/serving.json")

    # ---- run records ----------------------------------------------------------------------------

    def write_record(self, result: RunResult) -> str:
        """Write the run record, index its summary, and return its path; a record is never overwritten with other content.

        A retry after a write whose answer was lost finds the same record already there, which is success.
        """
        path = self.record_path(result.pipeline, result.run_id)
        record = result.to_dict()
        try:
            self._storage.write_json(path, record, overwrite=False)
        except StorageConflictError:
            if self._storage.read_json(path) != record:
                raise
        self.index.add([summary_of(result) | {"record": str(path)}], result.pipeline)
        return str(path)

    @property
    def index(self) -> RunIndex:
        return RunIndex(self._storage, self._container)

    def reconcile_index(self, pipeline: str) -> int:
        """Index every recorded run the index lacks (records older than the index, or a lost append)."""
        return self.index.reconcile(pipeline, self.run_ids(pipeline), lambda run_id: self.record(pipeline, run_id))

    def record(self, pipeline: str, run_id: str) -> RunResult:
        """A run's record; ConfigError naming what is missing."""
        check_run_id(run_id)
        raw = self._storage.read_json(self.record_path(pipeline, run_id))
        if raw is None:
            raise ConfigError(f"runId: pipeline {pipeline!r} has no run {run_id!r}")
        return RunResult.from_dict(raw)

    def record_delivery(self, delivery: Delivery) -> None:
        """How a run's notification delivery ended: {records}/{pipeline}/deliveries/{run_id}/{event}.json."""
        check_run_id(delivery.run_id)
        path = BlobPath(self._container, f"{delivery.pipeline}/deliveries/{delivery.run_id}/{delivery.event}.json")
        self._storage.write_json(path, delivery.to_dict())

    def deliveries(self, pipeline: str, run_id: str) -> list[Delivery]:
        """The run's notification deliveries that have ended (an unreadable one is left out, never a crash)."""
        check_run_id(run_id)
        found = []
        for blob in self._storage.list(self._container, f"{pipeline}/deliveries/{run_id}/"):
            try:
                found.append(Delivery.from_dict(self._storage.read_json(BlobPath(self._container, blob.name))))
            except (ConfigError, KeyError, TypeError, ValueError, StorageError):
                continue
        return sorted(found, key=lambda d: d.at)

    def run_ids(self, pipeline: str) -> list[str]:
        """Every recorded run of the pipeline, oldest first."""
        prefix = f"{pipeline}/runs/"
        return sorted(
            b.name[len(prefix) : -5] for b in self._storage.list(self._container, prefix) if b.name.endswith(".json")
        )

    def recent(self, pipeline: str, limit: int) -> list[RunResult]:
        """The newest `limit` readable records, newest first."""
        found = []
        for run_id in reversed(self.run_ids(pipeline)):
            try:
                found.append(self.record(pipeline, run_id))
            except (ConfigError, StorageError, KeyError, ValueError, TypeError):
                continue  # an unreadable record never breaks a listing
            if len(found) >= limit:
                break
        return found

    # ---- serving --------------------------------------------------------------------------------

    def serving(self, pipeline: str) -> Serving:
        try:
            return Serving.from_dict(self._storage.read_json(self._serving_path(pipeline)))
        except (KeyError, ValueError, TypeError, ConfigError):
            return Serving()  # unreadable: treated as nothing known, never as a crash

    def record_serving(
        self,
        pipeline: str,
        run_id: str,
        model: ModelArtifact,
        targets: Iterable[str],
        *,
        champion: bool,
        now: datetime,
        unsettled: Mapping[str, tuple[str, str]] | None = None,
    ) -> Serving:
        """Note that `targets` now serve `model`; when `champion`, it also becomes the model candidates must beat."""
        path = self._serving_path(pipeline)
        confirmed = list(targets)
        for _ in range(5):
            found = self._storage.read_json_with_etag(path)
            current = Serving.from_dict(found[0]) if found else Serving()
            served = Served(run_id, model, _iso(now))
            targets_now = dict(current.targets) | {t: served for t in confirmed}
            unsettled_now = {t: u for t, u in current.unsettled.items() if t not in confirmed} | {
                t: Unsettled(run_id, state, _iso(now), reason) for t, (state, reason) in (unsettled or {}).items()
            }
            new_champion, previous = current.champion, current.previous
            if champion and (current.champion is None or current.champion.run_id != run_id):
                new_champion = served
                previous = (
                    ((current.champion,) + current.previous)[:PREVIOUS_CHAMPIONS]
                    if current.champion
                    else current.previous
                )
            updated = Serving(new_champion, targets_now, previous, unsettled_now)
            try:
                self._storage.write_json(
                    path, updated.to_dict(), overwrite=found is None, if_match=found[1] if found else None
                )
                return updated
            except StorageConflictError:
                continue
        raise StorageError(f"{path} kept changing; the served model was not recorded")
