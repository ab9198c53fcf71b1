"""The inputs of every activity and sub-orchestration, as typed payloads (`retraining.payloads`).

Orchestrators build inputs only through these classes and activities read them only through
`from_dict`, so a field renamed on one side is a type error on the other, not a KeyError in Azure
weeks later. The field names are the wire format of orchestrations in flight: a change here must
still read what runs that started before it sent (give a new field a default).

Inputs that are models already (`RunRequest`, `SubmittedJob`, `RunResult`, `RunInput`,
`MonitorInput`) travel as themselves. Times are ISO 8601 text from the orchestration's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import (
    BlobPath,
    ModelArtifact,
    RunRequest,
    RunResult,
    SubmittedJob,
    TargetPlan,
    check_run_id,
    parse_moment,
)
from .payloads import Payload
from .services.base import Provenance, RolloutStep


class _Timed(Payload):
    """A payload with a `now` or `deadline`: the orchestration's time, checked and parsed on reading."""

    def moment(self, name: str = "now") -> datetime:
        return parse_moment(getattr(self, name), name)


# The run queue


@dataclass(frozen=True)
class QueueRecovery(_Timed):
    pipeline: str
    now: str


@dataclass(frozen=True)
class QueueTake(_Timed):
    pipeline: str
    run_id: str
    now: str

    def __post_init__(self) -> None:
        check_run_id(self.run_id, "queue take.run_id")


@dataclass(frozen=True)
class TakenRequest(Payload):
    """The request the queue took for a run, and the older retrains it supersedes (newest first)."""

    request_id: str
    request: RunRequest
    superseded: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueFinish(_Timed):
    pipeline: str
    request_id: str
    run_id: str
    outcome: str
    record: str | None
    now: str


@dataclass(frozen=True)
class QueueInput(Payload):
    """The input of a run queue's execution.

    `fresh`: a new queue, which recovers what an earlier one left running. `unfinished`: a run that
    completed but whose end could not be stored yet (with its result, if its record could not be
    written either); the next execution stores them before it does anything else.
    """

    pipeline: str = ""  # informational: the queue's pipeline comes from its instance id
    fresh: bool = True
    unfinished: QueueFinish | None = None
    unrecorded: RunResult | None = None


# Preparing a run and its training job


@dataclass(frozen=True)
class DataCheck(Payload):
    data: BlobPath


@dataclass(frozen=True)
class DataPresence(Payload):
    exists: bool
    size: int = 0
    etag: str | None = None


@dataclass(frozen=True)
class DataInspection(Payload):
    pipeline: str
    data: BlobPath


@dataclass(frozen=True)
class InspectedData(Payload):
    """The training data's columns; `rejected` says why they cannot replace the serving model's."""

    features: tuple[str, ...] = ()
    label: str | None = None
    rejected: str | None = None


@dataclass(frozen=True)
class DriftCheck(_Timed):
    """The drift check of a run's training data (`retraining.drift_check`); `now` dates the champion's age."""

    pipeline: str
    run_id: str
    data: BlobPath
    now: str

    def __post_init__(self) -> None:
        check_run_id(self.run_id, "drift check.run_id")


@dataclass(frozen=True)
class JobSubmission(Payload):
    pipeline: str
    run_id: str
    data: BlobPath
    request_id: str | None = None


# Models


@dataclass(frozen=True)
class ModelCollection(Payload):
    job: SubmittedJob
    schema: InspectedData = field(default_factory=InspectedData)


@dataclass(frozen=True)
class GateInput(Payload):
    pipeline: str
    model: ModelArtifact


@dataclass(frozen=True)
class Registration(Payload):
    pipeline: str
    model: ModelArtifact
    provenance: Provenance


@dataclass(frozen=True)
class NotifiedTarget(Payload):
    target: str
    state: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ServingRecord(_Timed):
    """What serves now: the run's model on these targets (and whether it is the champion the next gate compares with)."""

    pipeline: str
    run_id: str
    model: ModelArtifact
    targets: tuple[str, ...]
    champion: bool
    now: str
    unsettled: tuple[NotifiedTarget, ...] = ()  # targets left in a state not known (rollback failed, no outcome)


@dataclass(frozen=True)
class PromotionLookup(Payload):
    pipeline: str
    source_run: str
    force: bool = False


@dataclass(frozen=True)
class Promotion(Payload):
    model: ModelArtifact
    gate_passed: bool


# Operators and people


@dataclass(frozen=True)
class RunRef(Payload):
    pipeline: str
    run_id: str


@dataclass(frozen=True)
class Notification(Payload):
    """One webhook notification about a run (the body `retraining.notify` signs and sends)."""

    event: str
    pipeline: str
    run_id: str
    status: str
    reason: str | None
    at: str
    trigger: str
    targets: tuple[NotifiedTarget, ...] = ()


@dataclass(frozen=True)
class Delivery(Payload):
    """How the delivery of one notification ended, written beside the run's record when it has."""

    pipeline: str
    run_id: str
    event: str
    delivered: bool
    attempts: int
    at: str
    reason: str | None = None


# Rollouts


@dataclass(frozen=True)
class RolloutInput(Payload):
    """The input of one target's rollout (a sub-orchestration)."""

    pipeline: str
    target: TargetPlan
    model: ModelArtifact
    run_id: str = ""


@dataclass(frozen=True)
class RolloutEnd(Payload):
    """A rollout that ended with a known outcome settles its journal entry (`retraining.journal`)."""

    pipeline: str
    target: str
    run_id: str


@dataclass(frozen=True)
class ReconcileCall(Payload):
    """One call of undoing what another run's rollout left on a target; the state the last call left."""

    pipeline: str
    target: str
    run_id: str
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RolloutPlanInput(Payload):
    pipeline: str
    target: str
    model: ModelArtifact


@dataclass(frozen=True)
class RolloutStepInput(_Timed):
    """One call of a rollout step (or of the rollback): the state the last call left, and the deadline."""

    pipeline: str
    target: str
    step: RolloutStep
    model: ModelArtifact
    deadline: str
    state: Mapping[str, Any] = field(default_factory=dict)
    run_id: str = ""  # the run whose rollout this is (journal entries are by run)
