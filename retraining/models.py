"""Typed payloads that travel between starters, orchestrators and activities.

Everything here is persisted by the task hub and shown by the status API, so nothing here may
hold a secret: blobs travel as `container/name` paths in our own account, never as URLs with SAS.
Each type converts explicitly to and from plain JSON dicts (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from .errors import ConfigError

_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")  # Azure's container naming rule


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    BLOB = "blob"
    HTTP = "http"


class RunStatus(StrEnum):
    SUCCEEDED = "Succeeded"  # model trained and every target updated
    PARTIALLY_UPDATED = "PartiallyUpdated"  # some targets updated, some failed
    DRY_RUN = "DryRun"  # trained and evaluated; nothing updated on purpose
    REJECTED = "Rejected"  # the evaluation gate refused the candidate
    FAILED = "Failed"  # the training job failed, or no target could be updated
    TIMED_OUT = "TimedOut"  # the job outlived the policy timeout and was cancelled
    NO_DATA = "NoData"  # the training data never appeared


class JobState(StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    FINISHED = "Finished"

    @property
    def terminal(self) -> bool:
        return self in (JobState.FAILED, JobState.CANCELLED, JobState.FINISHED)


def _require(raw: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(raw, dict) or key not in raw:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = raw[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
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
            raise ConfigError(f"{where}: expected 'container/path/to/blob', got {text!r}")
        container, name = text.strip().lstrip("/").split("/", 1)
        parts = name.split("/")
        if (not _CONTAINER.match(container) or not name or ".." in parts or "" in parts or "\\" in name or len(name) > 1024
                or any(ord(c) < 32 for c in name)):
            raise ConfigError(f"{where}: {text!r} is not a safe blob path")
        return cls(container, name)


@dataclass(frozen=True)
class Trigger:
    """Why a run started; `key` de-duplicates repeated deliveries of the same trigger."""

    kind: TriggerKind
    key: str
    at: str  # ISO 8601, UTC
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "key": self.key, "at": self.at, "detail": self.detail}

    @classmethod
    def from_dict(cls, raw: Any) -> Trigger:
        return cls(TriggerKind(_require(raw, "kind", str, "trigger")), _require(raw, "key", str, "trigger"),
                   _require(raw, "at", str, "trigger"), str(raw.get("detail", "")))


@dataclass(frozen=True)
class RunRequest:
    """The orchestration input: which pipeline, why, on which data."""

    pipeline: str
    trigger: Trigger
    training_blob: BlobPath | None = None  # None: the pipeline's configured dataset
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "trigger": self.trigger.to_dict(),
                "training_blob": str(self.training_blob) if self.training_blob else None, "dry_run": self.dry_run}

    @classmethod
    def from_dict(cls, raw: Any) -> RunRequest:
        blob = raw.get("training_blob") if isinstance(raw, dict) else None
        return cls(
            pipeline=_require(raw, "pipeline", str, "run request"),
            trigger=Trigger.from_dict(_require(raw, "trigger", dict, "run request")),
            training_blob=BlobPath.parse(blob, "run request.training_blob") if blob else None,
            dry_run=bool(raw.get("dry_run", False)),
        )


@dataclass(frozen=True)
class TargetPlan:
    name: str
    kind: str
    retry: int
    retry_interval_s: float
    timeout_s: float


@dataclass(frozen=True)
class PipelinePlan:
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

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["data"] = str(self.data)
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PipelinePlan:
        values = dict(raw)
        values["data"] = BlobPath.parse(raw["data"])
        values["targets"] = tuple(TargetPlan(**t) for t in raw["targets"])
        return cls(**values)


@dataclass(frozen=True)
class SubmittedJob:
    pipeline: str
    run_id: str
    job_id: str
    model_blob: BlobPath
    evaluation_blob: BlobPath | None

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "run_id": self.run_id, "job_id": self.job_id, "model_blob": str(self.model_blob),
                "evaluation_blob": str(self.evaluation_blob) if self.evaluation_blob else None}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SubmittedJob:
        evaluation = raw.get("evaluation_blob")
        return cls(raw["pipeline"], raw["run_id"], raw["job_id"], BlobPath.parse(raw["model_blob"]),
                   BlobPath.parse(evaluation) if evaluation else None)


@dataclass(frozen=True)
class JobStatusView:
    """One status poll, with result locations checked and stripped of their SAS."""

    state: JobState
    details: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "details": self.details}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobStatusView:
        return cls(JobState(raw["state"]), raw.get("details"))


@dataclass(frozen=True)
class MonitorInput:
    job: SubmittedJob
    deadline: str  # ISO 8601 UTC
    poll_first_s: float
    poll_max_s: float
    poll_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job.to_dict(), "deadline": self.deadline, "poll_first_s": self.poll_first_s,
                "poll_max_s": self.poll_max_s, "poll_fraction": self.poll_fraction}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MonitorInput:
        return cls(SubmittedJob.from_dict(raw["job"]), raw["deadline"], raw["poll_first_s"], raw["poll_max_s"], raw["poll_fraction"])


@dataclass(frozen=True)
class JobOutcome:
    """How the job ended: Finished, Failed, Cancelled, or TimedOut (cancelled by us at the deadline)."""

    status: str
    details: str | None
    polls: int
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobOutcome:
        return cls(raw["status"], raw.get("details"), int(raw["polls"]), float(raw["elapsed_s"]))


@dataclass(frozen=True)
class ModelArtifact:
    """A verified trained model in our storage, with its evaluation metrics."""

    model_blob: BlobPath
    size: int
    sha256: str
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model_blob": str(self.model_blob), "size": self.size, "sha256": self.sha256, "metrics": dict(self.metrics)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelArtifact:
        return cls(BlobPath.parse(raw["model_blob"]), int(raw["size"]), str(raw["sha256"]),
                   {str(k): float(v) for k, v in raw.get("metrics", {}).items()})


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GateDecision:
        return cls(bool(raw["promote"]), tuple(raw.get("reasons", ())))


@dataclass(frozen=True)
class UpdateRequest:
    pipeline: str
    target: str
    model: ModelArtifact
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "target": self.target, "model": self.model.to_dict(), "run_id": self.run_id}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> UpdateRequest:
        return cls(raw["pipeline"], raw["target"], ModelArtifact.from_dict(raw["model"]), raw["run_id"])


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    kind: str
    updated: bool
    error: str | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TargetOutcome:
        return cls(raw["target"], raw["kind"], bool(raw["updated"]), raw.get("error"), float(raw.get("elapsed_s", 0.0)))


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
    phases: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "pipeline": self.pipeline, "status": self.status.value,
            "request": self.request.to_dict(), "started_at": self.started_at, "finished_at": self.finished_at,
            "reason": self.reason, "job_id": self.job_id, "job": self.job.to_dict() if self.job else None,
            "model": self.model.to_dict() if self.model else None, "gate": self.gate.to_dict() if self.gate else None,
            "targets": [t.to_dict() for t in self.targets], "record": self.record, "phases": dict(self.phases),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunResult:
        return cls(
            run_id=raw["run_id"], pipeline=raw["pipeline"], status=RunStatus(raw["status"]),
            request=RunRequest.from_dict(raw["request"]), started_at=raw["started_at"], finished_at=raw["finished_at"],
            reason=raw.get("reason"), job_id=raw.get("job_id"),
            job=JobOutcome.from_dict(raw["job"]) if raw.get("job") else None,
            model=ModelArtifact.from_dict(raw["model"]) if raw.get("model") else None,
            gate=GateDecision.from_dict(raw["gate"]) if raw.get("gate") else None,
            targets=tuple(TargetOutcome.from_dict(t) for t in raw.get("targets", [])),
            record=raw.get("record"), phases={str(k): float(v) for k, v in raw.get("phases", {}).items()},
        )
