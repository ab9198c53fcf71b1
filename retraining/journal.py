"""What a rollout is about to do to a target, written before it does it.

    {records}/{pipeline}/rollouts/{target}.json    the last change a rollout intended, until it settles

A target module calls `ServiceContext.intend(state)` just before it sends a change (a deployment,
a traffic split, a rollback), with the step state that its own `roll_back` needs to undo it. So
whatever ends a rollout early (a crash, a termination, a non-determinism error after a redeploy),
the last state the app set and how to undo what came after are in storage. The rollout settles its
entry when it ends with a known outcome.

The next rollout of the target starts by reconciling: an entry another run left (that run is over:
the pipeline's queue runs one at a time) is undone with the target's own `roll_back`, resumed
call by call from the entry's state, before anything new is sent; or, under `serving.interrupted:
hold`, the new rollout refuses to act. An entry whose run the serving record says updated the target
settled in all but name: it is removed, not undone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ConfigError, StorageError
from .models import BlobPath, ModelArtifact
from .payloads import Payload
from .storage import TrainingStorage


@dataclass(frozen=True)
class Intent(Payload):
    """The change a rollout of `run_id` was about to send at `step`, and the state that undoes it."""

    run_id: str
    model: ModelArtifact
    step: str
    at: str
    state: Mapping[str, Any] = field(default_factory=dict)


class RolloutJournal:
    """One target's journal entry: at most one rollout's intent, since a pipeline runs one rollout per target at a time."""

    def __init__(self, storage: TrainingStorage, container: str, pipeline: str, target: str) -> None:
        self._storage = storage
        self.path = BlobPath(container, f"{pipeline}/rollouts/{target}.json")

    def read(self) -> Intent | None:
        """The entry; an unreadable one is a StorageError (never taken for 'nothing to undo')."""
        raw = self._storage.read_json(self.path)
        if raw is None:
            return None
        try:
            return Intent.from_dict(raw, "rollout journal entry")
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{self.path} cannot be read as a rollout journal entry: {exc}") from None

    def write(self, run_id: str, model: ModelArtifact, step: str, state: Mapping[str, Any]) -> None:
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._storage.write_json(self.path, Intent(run_id, model, step, at, dict(state)).to_dict())

    def settle(self, run_id: str) -> bool:
        """Remove the entry if `run_id` wrote it (a later rollout's entry stays); whether one was removed."""
        found = self.read()
        if found is None or found.run_id != run_id:
            return False
        self._storage.delete(self.path)
        return True
