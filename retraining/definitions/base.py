"""The typed pipeline definitions: what every pipeline has, whatever its services.

A pipeline's training service and each of its scoring targets have a `kind`; the fields proper to
a kind live in a subclass, in one module per service family (`studio`, `azure_ml`). Only the
service modules of `retraining.services` read those fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import ClassVar

from ..drift.policy import RetrainWhen
from ..errors import ConfigError

# Durable timers in Python stop at 6 days (longer ones are split, differently by each engine); SAS
# tokens outlive the timeout by a margin and, with a managed identity, are signed by a user
# delegation key, which Azure issues for at most 7 days.
MAX_TIMEOUT = timedelta(days=5, hours=23)
# A run waiting for approval holds its pipeline's queue: a week at most. The wait is re-armed in
# timer chunks of at most a day, so the Durable timer limit never applies to it.
MAX_APPROVAL = timedelta(days=7)
NOTIFY_EVENTS = (
    "awaiting_approval",
    "run_not_succeeded",
    "rolled_back",
    "target_on_old_model",
    "target_state_unknown",
    "changed_by_another_writer",
    "drift_detected",  # a drift score reached its retrainWhen threshold (sent when the check ends, before training)
)


@dataclass(frozen=True)
class ExternalDataPolicy:
    """The seed dataset's `policy.externalData`: how long to wait for training data to appear."""

    retry_interval: timedelta = timedelta(minutes=1)
    retry_timeout: timedelta = timedelta(minutes=10)
    maximum_retry: int = 3


@dataclass(frozen=True)
class ActivityPolicy:
    timeout: timedelta
    retry: int
    retry_interval: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class PollingPolicy:
    """Capped exponential back-off: each wait is `fraction` of the time elapsed so far, within bounds.

    `completion_events`: the training service delivers the job's end to the app (Azure ML's Event
    Grid subscription, which infra creates), so between the first poll and that event the monitor
    polls only every `max_interval`, as a guard against a lost event.
    """

    first_interval: timedelta = timedelta(seconds=5)
    max_interval: timedelta = timedelta(minutes=5)
    fraction: float = 0.05
    completion_events: bool = False


@dataclass(frozen=True)
class TrainingConfig:
    """A pipeline's training service; `kind` picks the subclass and the service module."""

    kind: str
    announces_completion: ClassVar[bool] = False  # the service can deliver a job's end to the app (Event Grid)

    @property
    def label_hint(self) -> str | None:
        """The label column the training service is told to learn, if its configuration names one."""
        return None


@dataclass(frozen=True)
class Target:
    """A scoring target a verified model is rolled out to; `kind` picks the subclass and the service module."""

    name: str
    kind: str
    policy: ActivityPolicy
    checks_health: ClassVar[bool] = False  # its rollout probes the new model on live traffic and can fail after moving


@dataclass(frozen=True)
class Approval:
    """`gate.approval`: a model that passed the gate waits for a person to approve it, up to `timeout`."""

    required: bool = False
    timeout: timedelta = timedelta(days=2)


@dataclass(frozen=True)
class Notifications:
    """`notifications`: where to POST signed JSON about a run, the setting holding the HMAC key, and which events."""

    webhook: str
    secret_setting: str
    events: tuple[str, ...] = NOTIFY_EVENTS


@dataclass(frozen=True)
class Gate:
    minimums: Mapping[str, float] = field(default_factory=dict)
    not_worse_than_serving: tuple[str, ...] = ()
    allow_schema_change: bool = False  # accept data whose columns differ from the champion's
    approval: Approval = field(default_factory=Approval)

    @property
    def enabled(self) -> bool:
        return bool(self.minimums or self.not_worse_than_serving)


@dataclass(frozen=True)
class ServingPolicy:
    """`serving`: how a pipeline's targets relate, and what a rollout does about changes it did not make.

    consistency     all: when one target's rollout fails, the targets that moved go back to the champion
                    (the run ends RolledBack); independent: each target keeps its own outcome
    interrupted     restore: a rollout that ended without finishing (a crash, a termination) is undone
                    before the next one acts; hold: the next rollout refuses to act until a person looks
    other_writers   yield: a traffic change the app did not make ends the rollout as it is, and is
                    reported; revert: the app puts back what it last set and goes on
    """

    consistency: str = "all"
    interrupted: str = "restore"
    other_writers: str = "yield"


@dataclass(frozen=True)
class Pipeline:
    name: str
    training: TrainingConfig
    data_container: str
    data_blob: str
    data_watch: str  # glob, relative to the data container: blobs whose arrival starts a run
    external_data: ExternalDataPolicy
    output_container: str | None  # where a Studio job writes; Azure ML jobs write to a workspace datastore
    policy: ActivityPolicy
    polling: PollingPolicy
    gate: Gate
    targets: tuple[Target, ...]
    schedule_enabled: bool = True
    active_from: datetime | None = None
    active_until: datetime | None = None
    label_column: str | None = None  # None: the training service's label setting, else the last column
    notifications: Notifications | None = None
    serving: ServingPolicy = field(default_factory=ServingPolicy)
    retrain_when: RetrainWhen | None = None  # None: every run trains (no `retrainWhen`)

    @property
    def label(self) -> str | None:
        return self.label_column or self.training.label_hint

    def is_active(self, moment: datetime) -> bool:
        """Whether a scheduled run at `moment` falls inside the pipeline's start/end period."""
        if not self.schedule_enabled:
            return False
        if self.active_from and moment < self.active_from:
            return False
        return not (self.active_until and moment >= self.active_until)

    def watches(self, container: str, blob: str) -> bool:
        """Whether the arrival of `container/blob` should start a run of this pipeline."""
        return container == self.data_container and fnmatchcase(blob, self.data_watch)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise ConfigError(f"pipeline {self.name!r} has no target {name!r}")


@dataclass(frozen=True)
class Definitions:
    """The valid pipelines of a definitions file, and those that cannot run until a setting is set."""

    pipelines: Mapping[str, Pipeline]
    source: str
    unavailable: Mapping[str, str] = field(default_factory=dict)  # pipeline name -> why (an unset app setting)

    def get(self, name: str) -> Pipeline:
        try:
            return self.pipelines[name]
        except KeyError:
            if name in self.unavailable:
                raise ConfigError(f"pipeline {name!r} cannot run: {self.unavailable[name]}") from None
            raise ConfigError(
                f"{self.source}: no pipeline named {name!r} (have: {', '.join(self.pipelines) or 'none'})"
            ) from None
