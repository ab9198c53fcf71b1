"""The seam between the orchestrations and the ML services: a training service and a scoring target.

A pipeline names the kind of its training service and of each scoring target; `services.registry`
maps each kind to one module. The orchestrators never see which: they call activities, and the
activities call these methods. Expected outcomes are values (a job that ended Failed, a step that
failed its health check); exceptions mean something unexpected, and transient ones are retried.

A scoring target rolls a model out as a sequence of named steps. Each call of `run_step` does one
bounded piece of work and answers `done`, `wait` (call again after a durable timer: provisioning,
a swap, a bake time) or `failed`; the orchestrator keeps the state between calls and never sleeps
in an activity. When a step fails, `roll_back` is called the same way until it is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from ..definitions import Pipeline, Target
from ..errors import ConfigError
from ..http import ServiceClient
from ..models import BlobPath, JobStatusView, ModelArtifact, SubmittedJob
from ..payloads import Payload
from ..settings import Settings
from ..storage import TrainingStorage


@dataclass(frozen=True)
class ServiceContext:
    """What a service module may use: settings (secrets are read from them when needed), storage, the pipeline."""

    settings: Settings
    storage: TrainingStorage
    pipeline: Pipeline
    deadline: datetime | None = None  # no request may be sent after it
    intent: Callable[[Mapping[str, Any]], None] | None = None  # journals what a rollout is about to send

    def intend(self, state: Mapping[str, Any]) -> None:
        """Before sending a change to a target: store the step state that undoes it (`retraining.journal`)."""
        if self.intent is not None:
            self.intent(state)


C = TypeVar("C")


def config_of(value: object, kind: type[C]) -> C:
    """A definition section as the service module's own config class (the registry guarantees it; this says so to mypy)."""
    if not isinstance(value, kind):
        raise ConfigError(f"expected a {kind.__name__} definition, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Provenance(Payload):
    """Where a candidate model came from, for the registry's tags and properties."""

    pipeline: str
    run_id: str
    job_id: str
    data: str  # container/blob of the training data
    data_etag: str | None
    trigger: str  # schedule | blob | http, and its key


def service_client(context: ServiceContext, service: str, *, max_retry_after_s: float = 60.0) -> ServiceClient:
    """An HTTP client for `service` with the app's timeout and TLS settings, bound by the context's deadline.

    A transient failure is retried within the call, waiting at most `max_retry_after_s` however long
    the service's Retry-After; if it still refuses, the activity fails with that Retry-After in its
    error and the orchestrator's retry policy tries again later on a durable timer, not in a sleep.
    """
    deadline = None
    if context.deadline is not None:
        deadline = time.monotonic() + (context.deadline - datetime.now(UTC)).total_seconds()
    return ServiceClient(
        service,
        timeout_s=context.settings.http_timeout_s,
        verify=context.settings.verify,
        deadline=deadline,
        max_retry_after_s=max_retry_after_s,
    )


class TrainingService(Protocol):
    """Runs one training job per run and hands back a verified model."""

    def submit(self, run_id: str, data: BlobPath) -> SubmittedJob:
        """Create the job for `run_id` on `data`; calling it again for the same run never makes a second job."""
        ...

    def start(self, job: SubmittedJob) -> None:
        """Start a submitted job; starting one that already runs is not an error."""
        ...

    def status(self, job: SubmittedJob) -> JobStatusView:
        """One status poll; a finished job whose outputs are not where we asked is reported Failed."""
        ...

    def cancel(self, job: SubmittedJob) -> None:
        """Cancel the job; a job that already ended or is gone is fine."""
        ...

    def collect(self, job: SubmittedJob) -> ModelArtifact:
        """The finished job's model: checked to be ours, with its size, sha256 and metrics."""
        ...

    def register(self, model: ModelArtifact, provenance: Provenance) -> ModelArtifact:
        """Record a candidate that passed the gate as a new version in the service's model registry (never
        overwriting one; again for the same run: the same version); the model with its version. A service
        without a registry returns the model as it is."""
        ...

    def crown(self, model: ModelArtifact) -> None:
        """Mark `model` as the pipeline's champion in the registry, and no other version (after a rollout)."""
        ...


class StepStatus(StrEnum):
    DONE = "done"
    WAIT = "wait"
    FAILED = "failed"
    YIELDED = "yielded"  # someone else changed the target: the rollout ends as it is, without a rollback


@dataclass(frozen=True)
class StepResult(Payload):
    status: StepStatus
    state: Mapping[str, Any] = field(default_factory=dict)  # carried to the next call; JSON, no secrets
    wait_s: float = 0.0
    reason: str | None = None
    progress: Mapping[str, Any] = field(default_factory=dict)  # what to show: traffic shares, health, ...

    @classmethod
    def done(cls, state: Mapping[str, Any], **progress: Any) -> StepResult:
        return cls(StepStatus.DONE, state, progress=progress)

    @classmethod
    def wait(cls, seconds: float, state: Mapping[str, Any], **progress: Any) -> StepResult:
        return cls(StepStatus.WAIT, state, wait_s=seconds, progress=progress)

    @classmethod
    def failed(cls, reason: str, state: Mapping[str, Any], **progress: Any) -> StepResult:
        return cls(StepStatus.FAILED, state, reason=reason, progress=progress)

    @classmethod
    def yielded(cls, reason: str, state: Mapping[str, Any], **progress: Any) -> StepResult:
        return cls(StepStatus.YIELDED, state, reason=reason, progress=progress)


@dataclass(frozen=True)
class RolloutStep(Payload):
    """One step of a rollout; `bake_s` is a durable wait after it, before the next step."""

    name: str
    bake_s: float = 0.0
    mutates: bool = True  # sends a change to the target: refused once the deadline has passed
    best_effort: bool = False  # its failure is reported, but neither fails nor rolls back the rollout (cleanup)


class ScoringTarget(Protocol):
    """Puts a model behind a scoring service, step by step, and takes it back out if a step fails."""

    target: Target

    def steps(self, model: ModelArtifact) -> tuple[RolloutStep, ...]:
        """The rollout plan for `model` (no I/O)."""
        ...

    def run_step(self, step: RolloutStep, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        """Do one bounded piece of `step`."""
        ...

    def roll_back(self, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        """Undo what the steps did (traffic back, new deployment removed); called until done."""
        ...
