"""Typed payloads that travel between starters, orchestrators and activities.

Everything here is persisted by the task hub and shown by the status API, so nothing here may
hold a secret: blobs travel as `container/name` paths in our own account (or as workspace
datastore URIs), never as URLs with SAS. Each type converts explicitly to and from plain JSON dicts
(`to_dict` / `from_dict`), and `from_dict` validates what it reads: a payload that came over the
wire or out of storage is outside input like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from .drift.compare import ColumnDrift
from .drift.policy import Condition
from .errors import ConfigError
from .payloads import Payload
from .text import clean_text, excerpt

_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")  # Azure's container naming rule
_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    BLOB = "blob"
    HTTP = "http"
    SWEEP = "sweep"  # the daily sweep found a rollout left unfinished


class RequestAction(StrEnum):
    RETRAIN = "retrain"  # train, evaluate, roll out
    PROMOTE = "promote"  # roll out the verified model of an earlier run (promote, or roll back to it)
    RECONCILE = "reconcile"  # undo what rollouts left unfinished on the pipeline's targets (the daily sweep)


class RunStatus(StrEnum):
    SUCCEEDED = "Succeeded"  # model trained (or chosen) and every target updated
    PARTIALLY_UPDATED = "PartiallyUpdated"  # some targets updated, some failed or were rolled back
    ROLLED_BACK = "RolledBack"  # a target failed, and the ones that had moved went back (serving.consistency: all)
    DRY_RUN = "DryRun"  # trained and evaluated; nothing updated on purpose
    REJECTED = "Rejected"  # the gate (or the schema check) refused the candidate; nothing touched
    FAILED = "Failed"  # the training job failed, or no target could be updated
    TIMED_OUT = "TimedOut"  # the job outlived the policy timeout and was cancelled
    NO_DATA = "NoData"  # the training data never appeared
    EXPIRED = "Expired"  # nobody approved or rejected the model in time; nothing touched
    CANCELLED = "Cancelled"  # an operator cancelled the run (its job, if any, was cancelled)
    INTERRUPTED = "Interrupted"  # the run's orchestration ended without finishing; its request went back in line
    # retrainWhen held no condition: the data looks like the champion's; no job submitted, no target touched
    SKIPPED = "Skipped"


class JobState(StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    FINISHED = "Finished"

    @property
    def terminal(self) -> bool:
        return self in (JobState.FAILED, JobState.CANCELLED, JobState.FINISHED)


class JobEnd(StrEnum):
    """How a watched job ended: its own terminal state, or our giving up on it at the deadline."""

    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"  # still running at the deadline: we cancelled it
    UNREACHABLE = "Unreachable"  # its status could not be read lately at the deadline: we cancelled it


def _require(raw: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(raw, dict) or key not in raw:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = raw[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _text(
    raw: Any, key: str, where: str, *, max_length: int = 256, optional: bool = False, allow_empty: bool = False
) -> Any:
    if optional and (not isinstance(raw, dict) or raw.get(key) is None):
        return None
    return clean_text(_require(raw, key, str, where), f"{where}.{key}", max_length=max_length, allow_empty=allow_empty)


def parse_moment(text: Any, where: str) -> datetime:
    """An ISO 8601 date-time with a time zone; ConfigError otherwise."""
    if not isinstance(text, str) or len(text) > 40:
        raise ConfigError(f"{where}: expected an ISO 8601 date-time, got {excerpt(text)}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {excerpt(text)} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{where}: {excerpt(text)} has no time zone")
    return moment


E = TypeVar("E", bound=StrEnum)


def _choice(raw: Any, key: str, kind: type[E], where: str) -> E:
    """One of an enumeration's values; ConfigError naming the field and the values allowed."""
    value = _require(raw, key, str, where)
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{where}.{key}: {excerpt(value)} is not one of {[k.value for k in kind]}") from None


def _moment_text(raw: Any, key: str, where: str) -> str:
    """An ISO 8601 date-time with a time zone, kept as the text given."""
    text: str = _text(raw, key, where, max_length=40)
    parse_moment(text, f"{where}.{key}")
    return text


def check_run_id(value: Any, where: str = "runId") -> str:
    """A run id as the queue makes them (`20261122T030000Z-1a2b3c4d`); ConfigError otherwise."""
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise ConfigError(f"{where}: {excerpt(value)} is not a run id (like 20261122T030000Z-1a2b3c4d)")
    return value


@dataclass(frozen=True)
class BlobPath:
    """A blob in our storage account: no account URL, no SAS."""

    container: str
    name: str

    def __str__(self) -> str:
        return f"{self.container}/{self.name}"

    @classmethod
    def parse(cls, text: Any, where: str = "blob") -> BlobPath:
        if not isinstance(text, str) or "/" not in text.strip("/"):
            raise ConfigError(f"{where}: expected 'container/path/to/blob', got {excerpt(text)}")
        clean_text(text, where, max_length=1100)
        container, name = text.strip().lstrip("/").split("/", 1)
        parts = name.split("/")
        if (
            not _CONTAINER.match(container)
            or not name
            or ".." in parts
            or "" in parts
            or "\\" in name
            or len(name) > 1024
        ):
            raise ConfigError(f"{where}: {excerpt(text)} is not a safe blob path")
        return cls(container, name)


@dataclass(frozen=True)
class Trigger:
    """Why a run started; `key` de-duplicates repeated deliveries of the same trigger; `at` orders them."""

    kind: TriggerKind
    key: str
    at: str  # ISO 8601, UTC: when the trigger happened (not when it arrived)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "key": self.key, "at": self.at, "detail": self.detail}

    @property
    def moment(self) -> datetime:
        return parse_moment(self.at, "trigger.at")

    @classmethod
    def from_dict(cls, raw: Any) -> Trigger:
        parsed_kind = _choice(raw, "kind", TriggerKind, "trigger")
        at = _moment_text(raw, "at", "trigger")
        detail = raw.get("detail", "")
        return cls(
            parsed_kind,
            _text(raw, "key", "trigger", max_length=1200),
            at,
            clean_text(detail, "trigger.detail", max_length=1200, allow_empty=True),
        )


@dataclass(frozen=True)
class RunRequest:
    """What a starter asks of a pipeline's run queue: retrain (on which data), or roll out an earlier run's model."""

    pipeline: str
    trigger: Trigger
    training_blob: BlobPath | None = None  # None: the pipeline's configured dataset
    dry_run: bool = False
    action: RequestAction = RequestAction.RETRAIN
    source_run: str | None = None  # promote: the run whose verified model to roll out
    targets: tuple[str, ...] = ()  # promote: the targets to update (empty: all)
    force: bool = False  # promote: allowed although the model did not pass its gate (recorded)
    requested_by: str = ""  # who asked, when known (Easy Auth principal), for the record

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "trigger": self.trigger.to_dict(),
            "training_blob": str(self.training_blob) if self.training_blob else None,
            "dry_run": self.dry_run,
            "action": self.action.value,
            "source_run": self.source_run,
            "targets": list(self.targets),
            "force": self.force,
            "requested_by": self.requested_by,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> RunRequest:
        where = "run request"
        blob = raw.get("training_blob") if isinstance(raw, dict) else None
        action = raw.get("action", "retrain") if isinstance(raw, dict) else None
        try:
            parsed_action = RequestAction(str(action))
        except ValueError:
            raise ConfigError(
                f"{where}.action: {excerpt(action)} is not one of {[a.value for a in RequestAction]}"
            ) from None
        targets = raw.get("targets") or []
        if not isinstance(targets, list):
            raise ConfigError(f"{where}.targets: expected a list of target names")
        source = raw.get("source_run")
        return cls(
            pipeline=_text(raw, "pipeline", where, max_length=40),
            trigger=Trigger.from_dict(_require(raw, "trigger", dict, where)),
            training_blob=BlobPath.parse(blob, f"{where}.training_blob") if blob else None,
            dry_run=raw.get("dry_run", False) is True,
            action=parsed_action,
            source_run=check_run_id(source, f"{where}.source_run") if source is not None else None,
            targets=tuple(clean_text(t, f"{where}.targets[{i}]", max_length=40) for i, t in enumerate(targets)),
            force=raw.get("force", False) is True,
            requested_by=clean_text(
                raw.get("requested_by", ""), f"{where}.requested_by", max_length=200, allow_empty=True
            ),
        )


@dataclass(frozen=True)
class RunInput:
    """The input of one run's orchestration: the queue's request and the run id it was given."""

    request_id: str
    run_id: str
    request: RunRequest
    superseded: tuple[str, ...] = ()  # request ids this run supersedes (newest first)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "run_id": self.run_id,
            "request": self.request.to_dict(),
            "superseded": list(self.superseded),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> RunInput:
        return cls(
            _text(raw, "request_id", "run input", max_length=64),
            check_run_id(_require(raw, "run_id", str, "run input")),
            RunRequest.from_dict(_require(raw, "request", dict, "run input")),
            tuple(str(s) for s in raw.get("superseded", ())),
        )


@dataclass(frozen=True)
class TargetPlan(Payload):
    """What the orchestrator needs of a scoring target: its name and kind (for display) and its policy."""

    name: str
    kind: str
    retry: int
    retry_interval_s: float
    timeout_s: float
    wave: int = 0  # rolled out after every target of a lower wave is healthy (serving.consistency: all)


@dataclass(frozen=True)
class PipelinePlan(Payload):
    """What the orchestrator needs of a pipeline definition: numbers and names, no URLs, no secrets."""

    name: str
    data: BlobPath
    data_retry_interval_s: float
    data_retry_timeout_s: float
    data_maximum_retry: int
    timeout_s: float
    retry: int
    retry_interval_s: float
    poll_first_s: float
    poll_max_s: float
    poll_fraction: float
    gate_enabled: bool
    targets: tuple[TargetPlan, ...]
    history_s: tuple[float, ...] = ()  # durations of the pipeline's recent jobs, newest first (for polling)
    events: bool = False  # the training service announces job completion by event
    # and its events reach the app, so polls are only a fallback (polling.completionEvents)
    events_trusted: bool = False
    approval_s: float = 0.0  # how long a model that passed the gate waits for approval (0: none is asked)
    notify: tuple[str, ...] = ()  # the events the pipeline's webhook wants (empty: no webhook)
    consistent: bool = False  # serving.consistency all: a failed target sends the ones that moved back to the champion
    retrain_when: bool = False  # the pipeline has retrainWhen: the drift check decides, and its failure fails the run


@dataclass(frozen=True)
class SubmittedJob:
    """A training job the service accepted: its id and where its outputs go (paths or datastore URIs)."""

    pipeline: str
    run_id: str
    job_id: str
    outputs: Mapping[str, str] = field(default_factory=dict)  # "model" / "metrics" -> location

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "run_id": self.run_id, "job_id": self.job_id, "outputs": dict(self.outputs)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SubmittedJob:
        outputs = raw.get("outputs") or {}
        return cls(
            _text(raw, "pipeline", "job", max_length=40),
            check_run_id(raw.get("run_id"), "job.run_id"),
            _text(raw, "job_id", "job", max_length=300),
            {
                clean_text(k, "job.outputs", max_length=64): clean_text(v, f"job.outputs.{k}", max_length=1200)
                for k, v in outputs.items()
            },
        )


@dataclass(frozen=True)
class JobStatusView(Payload):
    """One status poll, with result locations checked and stripped of their SAS."""

    state: JobState
    details: str | None = None


@dataclass(frozen=True)
class MonitorProgress(Payload):
    """What a monitor carries into its next execution when it continues as new (its history stays short)."""

    started_at: str  # ISO 8601 UTC: when the watch began
    polls: int = 0
    failed_polls: int = 0
    failing_in_a_row: int = 0
    woken_by_event: bool = False
    last_error: str | None = None
    last_state: JobState | None = None
    last_details: str | None = None


@dataclass(frozen=True)
class MonitorInput(Payload):
    job: SubmittedJob
    deadline: str  # ISO 8601 UTC
    poll_first_s: float
    poll_max_s: float
    poll_fraction: float
    history_s: tuple[float, ...] = ()
    events: bool = False  # wait for a completion event as well as the poll timer
    events_trusted: bool = False  # the events reach the app: until one comes, poll every poll_max_s only
    progress: MonitorProgress | None = None  # None: the first execution of this watch


@dataclass(frozen=True)
class JobOutcome(Payload):
    """How the job ended: Finished, Failed, Cancelled, or TimedOut / Unreachable (we cancelled it)."""

    status: JobEnd
    details: str | None
    polls: int
    elapsed_s: float
    failed_polls: int = 0
    cancelled: bool | None = None  # None: we did not cancel; True: cancel confirmed; False: cancel failed
    woken_by_event: bool = False


@dataclass(frozen=True)
class ModelArtifact:
    """A verified trained model, with its evaluation metrics and the data schema it was trained on.

    `location` is where the bytes are: `container/name` in our storage, or a workspace datastore
    URI; only the service modules interpret it. `version` is the registry version, once registered.
    """

    location: str
    size: int
    sha256: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # feature columns, in training order
    label: str | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "size": self.size,
            "sha256": self.sha256,
            "metrics": dict(self.metrics),
            "columns": list(self.columns),
            "label": self.label,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelArtifact:
        location = raw.get("location", raw.get("model_blob"))
        return cls(
            clean_text(location, "model.location", max_length=1200),
            int(raw["size"]),
            str(raw["sha256"]),
            {str(k): float(v) for k, v in raw.get("metrics", {}).items()},
            tuple(str(c) for c in raw.get("columns", ())),
            raw.get("label"),
            raw.get("version"),
        )

    @property
    def blob(self) -> BlobPath:
        """The model as a blob in our storage (Studio services); ConfigError if it lives elsewhere."""
        return BlobPath.parse(self.location, "model.location")


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: tuple[str, ...] = ()
    compared_with: str | None = None  # the run whose model served when the gate compared against it

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": list(self.reasons), "compared_with": self.compared_with}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GateDecision:
        return cls(bool(raw["promote"]), tuple(raw.get("reasons", ())), raw.get("compared_with"))


class TargetState(StrEnum):
    UPDATED = "updated"  # serves the new model, confirmed
    FAILED = "failed"  # refused or broke before anything changed; serves what it served
    UNCONFIRMED = "unconfirmed"  # an update was sent but not seen applied within the timeout
    ROLLED_BACK = "rolled_back"  # a canary failed its checks; traffic is back on the previous model
    ROLLBACK_FAILED = "rollback_failed"  # a step failed and so did the rollback: it may serve old and new
    UNKNOWN = "unknown"  # the rollout ended without an outcome (its orchestration failed): not known
    CHANGED_BY_ANOTHER_WRITER = "changed_by_another_writer"  # someone else changed it mid-rollout; the app yielded


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    kind: str
    updated: bool
    error: str | None = None
    elapsed_s: float = 0.0
    state: TargetState | None = None
    steps: tuple[str, ...] = ()  # the rollout steps completed, in order
    progress: Mapping[str, Any] = field(default_factory=dict)  # the target's last report (e.g. traffic shares)

    def __post_init__(self) -> None:
        if self.state is None:
            object.__setattr__(self, "state", TargetState.UPDATED if self.updated else TargetState.FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "updated": self.updated,
            "error": self.error,
            "elapsed_s": self.elapsed_s,
            "state": self.state.value if self.state else None,
            "steps": list(self.steps),
            "progress": dict(self.progress),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TargetOutcome:
        state = raw.get("state")
        return cls(
            raw["target"],
            raw["kind"],
            bool(raw["updated"]),
            raw.get("error"),
            float(raw.get("elapsed_s", 0.0)),
            TargetState(state) if state else None,
            tuple(raw.get("steps", ())),
            dict(raw.get("progress") or {}),
        )


class DecisionAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Decision:
    """An operator's decision on a run (approve, reject or cancel): who, when, and why if they said."""

    action: DecisionAction
    by: str
    at: str  # ISO 8601, UTC
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, "by": self.by, "at": self.at, "comment": self.comment}

    @classmethod
    def from_dict(cls, raw: Any) -> Decision:
        return cls(
            _choice(raw, "action", DecisionAction, "decision"),
            _text(raw, "by", "decision", max_length=200),
            _moment_text(raw, "at", "decision"),
            clean_text(raw.get("comment", ""), "decision.comment", max_length=500, allow_empty=True),
        )


@dataclass(frozen=True)
class Approval:
    """A run's wait for approval: when it was asked, until when, and the decision (None: it expired)."""

    asked_at: str
    expires_at: str
    decision: Decision | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked_at": self.asked_at,
            "expires_at": self.expires_at,
            "decision": self.decision.to_dict() if self.decision else None,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Approval:
        decision = raw.get("decision") if isinstance(raw, dict) else None
        return cls(
            _text(raw, "asked_at", "approval", max_length=40),
            _text(raw, "expires_at", "approval", max_length=40),
            Decision.from_dict(decision) if decision else None,
        )


@dataclass(frozen=True)
class DriftRecord(Payload):
    """The drift check of a run (`retraining.drift_check`): why it trained or was skipped, with the scores.

    `conditions` holds every score with the threshold it was held to (None: no retrainWhen, reported
    only); `features` the most drifting features (PSI, KS, TVD), most drifting first.
    """

    train: bool
    reasons: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    drifting: tuple[str, ...] = ()  # features whose score reached its threshold, most drifting first
    features: tuple[ColumnDrift, ...] = ()
    label_shift: float | None = None  # the label's total variation distance from the champion's data
    growth: float | None = None  # rows / the champion's rows - 1
    rows: int = 0
    reference_rows: int | None = None
    reference_run: str | None = None  # the champion whose data profile the data was compared with
    retrain_when: Mapping[str, Any] | None = None  # the pipeline's retrainWhen as defined (None: absent)
    schema: tuple[str, ...] = ()  # column differences that did not fail the run (allowSchemaChange, no retrainWhen)
    detected: bool = False  # a drift score reached its threshold: `drift_detected` is sent
    profile: str | None = None  # where the profile of this run's data is kept (the reference if its model serves)


@dataclass(frozen=True)
class RunResult:
    """The orchestration output, and the body of the run record."""

    run_id: str
    pipeline: str
    status: RunStatus
    request: RunRequest
    started_at: str
    finished_at: str
    reason: str | None = None
    job_id: str | None = None
    job: JobOutcome | None = None
    model: ModelArtifact | None = None
    gate: GateDecision | None = None
    targets: tuple[TargetOutcome, ...] = ()
    record: str | None = None
    phases: Mapping[str, float] = field(default_factory=dict)
    request_id: str | None = None
    superseded: tuple[str, ...] = ()  # request ids of the triggers this run superseded
    notes: tuple[str, ...] = ()  # what else happened: job cancelled, served model not recorded, ...
    approval: Approval | None = None  # the wait for approval, when the pipeline asks for one
    cancel: Decision | None = None  # who cancelled the run, when it was cancelled
    drift: DriftRecord | None = None  # the drift check, when it ran (absent in records older than it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status.value,
            "request": self.request.to_dict(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "reason": self.reason,
            "job_id": self.job_id,
            "job": self.job.to_dict() if self.job else None,
            "model": self.model.to_dict() if self.model else None,
            "gate": self.gate.to_dict() if self.gate else None,
            "targets": [t.to_dict() for t in self.targets],
            "record": self.record,
            "phases": dict(self.phases),
            "request_id": self.request_id,
            "superseded": list(self.superseded),
            "notes": list(self.notes),
            "approval": self.approval.to_dict() if self.approval else None,
            "cancel": self.cancel.to_dict() if self.cancel else None,
            "drift": self.drift.to_dict() if self.drift else None,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunResult:
        return cls(
            run_id=raw["run_id"],
            pipeline=raw["pipeline"],
            status=RunStatus(raw["status"]),
            request=RunRequest.from_dict(raw["request"]),
            started_at=raw["started_at"],
            finished_at=raw["finished_at"],
            reason=raw.get("reason"),
            job_id=raw.get("job_id"),
            job=JobOutcome.from_dict(raw["job"]) if raw.get("job") else None,
            model=ModelArtifact.from_dict(raw["model"]) if raw.get("model") else None,
            gate=GateDecision.from_dict(raw["gate"]) if raw.get("gate") else None,
            targets=tuple(TargetOutcome.from_dict(t) for t in raw.get("targets", [])),
            record=raw.get("record"),
            phases={str(k): float(v) for k, v in raw.get("phases", {}).items()},
            request_id=raw.get("request_id"),
            superseded=tuple(raw.get("superseded", ())),
            notes=tuple(raw.get("notes", ())),
            approval=Approval.from_dict(raw["approval"]) if raw.get("approval") else None,
            cancel=Decision.from_dict(raw["cancel"]) if raw.get("cancel") else None,
            drift=DriftRecord.from_dict(raw["drift"], "run record.drift") if raw.get("drift") else None,
        )
