"""Operators' decisions on runs, kept in Blob storage before the run hears of them.

    {records}/{pipeline}/decisions/{run_id}.json   approve or reject: create-only, the first decision wins
    {records}/{pipeline}/cancels/{run_id}.json     a request to cancel the run: create-only, the first one stays

The HTTP routes write here first, then raise one event (`run_signal`) to the run's orchestration;
the run reads this store on every wake-up (and at its phase boundaries, for a cancel). So the event
carries nothing: a lost event delays a decision until the run's next check, a duplicated or
forged one wakes the run to find nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, StorageConflictError
from .models import BlobPath, Decision, DecisionAction, check_run_id
from .storage import TrainingStorage


@dataclass(frozen=True)
class RunSignals:
    """What the store holds for one run: the approval decision, and a cancel request."""

    decision: Decision | None = None
    cancel: Decision | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision.to_dict() if self.decision else None,
            "cancel": self.cancel.to_dict() if self.cancel else None,
        }

    @classmethod
    def from_dict(cls, raw: object) -> RunSignals:
        if not isinstance(raw, dict):
            return cls()
        return cls(
            Decision.from_dict(raw["decision"]) if raw.get("decision") else None,
            Decision.from_dict(raw["cancel"]) if raw.get("cancel") else None,
        )


class Decisions:
    def __init__(self, storage: TrainingStorage, container: str) -> None:
        self._storage = storage
        self._container = container

    def _path(self, pipeline: str, run_id: str, action: DecisionAction) -> BlobPath:
        folder = "cancels" if action is DecisionAction.CANCEL else "decisions"
        return BlobPath(self._container, f"{pipeline}/{folder}/{check_run_id(run_id)}.json")

    def _read(self, path: BlobPath) -> Decision | None:
        raw = self._storage.read_json(path, 16 * 1024)
        if raw is None:
            return None
        try:
            return Decision.from_dict(raw)
        except (ConfigError, KeyError, TypeError):
            return None  # a blob someone else put here decides nothing

    def record(self, pipeline: str, run_id: str, decision: Decision) -> tuple[Decision, bool]:
        """Store `decision` unless one is already stored; return the stored one and whether it is `decision`."""
        path = self._path(pipeline, run_id, decision.action)
        try:
            self._storage.write_json(path, decision.to_dict(), overwrite=False)
            return decision, True
        except StorageConflictError:
            existing = self._read(path)
            if existing is None:  # unreadable: the first writer's intent is unknown, so nobody's wins
                raise
            return existing, False

    def signals(self, pipeline: str, run_id: str) -> RunSignals:
        return RunSignals(
            self._read(self._path(pipeline, run_id, DecisionAction.APPROVE)),
            self._read(self._path(pipeline, run_id, DecisionAction.CANCEL)),
        )
