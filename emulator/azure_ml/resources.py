"""The Azure ML resources a workspace holds at run time, and the fault rules that shape them.

Jobs and model names are case-sensitive; endpoint and deployment names are looked up without case
(they become host names and traffic keys) but keep the spelling they were created with.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import ilearner
from .config import WorkspaceConfig

TERMINAL_JOB = ("Completed", "Failed", "Canceled")
TERMINAL_PROVISIONING = ("Succeeded", "Failed", "Canceled")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Audit:
    """ARM `systemData`: who created and last changed a resource, and when."""

    created_by: str
    created_at: str = field(default_factory=now_iso)
    modified_by: str = ""
    modified_at: str = ""

    def touch(self, by: str) -> None:
        self.modified_by, self.modified_at = by, now_iso()

    def body(self) -> dict[str, str]:
        return {
            "createdAt": self.created_at,
            "createdBy": self.created_by,
            "createdByType": "Application",
            "lastModifiedAt": self.modified_at or self.created_at,
            "lastModifiedBy": self.modified_by or self.created_by,
            "lastModifiedByType": "Application",
        }


# ---- fault rules (registered with the shared registry) ----------------------------------------


@dataclass
class JobFault:
    """The next `remaining` jobs (name glob) of a workspace run `duration_s` in Running and/or fail."""

    workspace: str = "*"
    job: str = "*"
    remaining: int | None = 1
    duration_s: float | None = None
    fail_message: str | None = None
    fail_code: str = "UserError"


@dataclass
class DeploymentFault:
    """Deployments created on `endpoint` (and named like `deployment`): the next `remaining` of them.

    `fail_message` makes provisioning end Failed. Otherwise the deployment goes live but unhealthy:
    `error_rate` of its scoring calls (an exact share, spread evenly) answer `error_status`, and
    each call takes `latency_s` longer (past the deployment's requestTimeout: 408).
    """

    workspace: str = "*"
    endpoint: str = "*"
    deployment: str = "*"
    remaining: int | None = 1
    fail_message: str | None = None
    error_rate: float = 0.0
    error_status: int = 503
    latency_s: float = 0.0


@dataclass
class EventFault:
    """Lose, duplicate or delay the next `remaining` matching Event Grid deliveries."""

    action: str = "drop"  # drop | duplicate | delay
    workspace: str = "*"
    event_type: str = "*"  # glob on the full type, e.g. "*RunStatusChanged"
    run_status: str = "*"  # glob on data.runStatus (RunStatusChanged only), e.g. "failed"
    remaining: int | None = 1
    delay_s: float = 1.0


# ---- resources ----------------------------------------------------------------------------------


@dataclass
class Job:
    name: str
    spec: dict[str, Any]  # the request's properties as normalised at creation (defaults filled in)
    audit: Audit
    status: str = "NotStarted"
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # as reported, uri filled when known
    error: dict[str, str] | None = None
    cancel_requested: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    fault: JobFault | None = None
    experiment_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    batch: tuple[str, str] | None = None  # (endpoint, deployment) of a batch scoring job
    scorer: ServedModel | None = None  # the model a batch scoring job scores with
    result: Any = None  # work done in Running, written out in Finalizing

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB


@dataclass
class ModelVersion:
    name: str
    version: str
    props: dict[str, Any]  # modelUri, modelType, description, tags, properties, stage, isArchived, flavors, jobName
    audit: Audit
    order: int  # creation order: "latest" is the most recently created


@dataclass
class CodeVersion:
    name: str
    version: str
    props: dict[str, Any]  # codeUri, description, tags, properties, isAnonymous, isArchived
    audit: Audit
    order: int  # creation order: "latest" is the most recently created


@dataclass
class ServedModel:
    model_id: str  # ARM id of the model version
    content_id: str  # ilearner.version_of(model bytes)
    model: ilearner.TrainedModel


@dataclass
class Deployment:
    name: str
    endpoint: str
    batch: bool
    location: str
    tags: dict[str, str]
    sku: dict[str, Any] | None
    props: dict[str, Any]  # request properties as normalised
    audit: Audit
    model_id: str
    state: str = "Creating"
    served: ServedModel | None = None
    fault: DeploymentFault | None = None
    requests: int = 0
    errors: int = 0
    mirrored: int = 0
    logs: list[str] = field(default_factory=list)


@dataclass
class Endpoint:
    name: str
    batch: bool
    location: str
    tags: dict[str, str]
    identity: dict[str, Any]
    auth_mode: str
    description: str
    user_properties: dict[str, str]
    audit: Audit
    state: str = "Creating"
    traffic: dict[str, int] = field(default_factory=dict)  # as last PUT (shown by GET)
    mirror: dict[str, int] = field(default_factory=dict)
    live_traffic: dict[str, int] = field(default_factory=dict)  # what routing uses (set when the PUT completes)
    live_mirror: dict[str, int] = field(default_factory=dict)
    default_deployment: str | None = None  # batch only
    keys: tuple[str, str] = field(default_factory=lambda: (secrets.token_urlsafe(24), secrets.token_urlsafe(24)))
    deployments: dict[str, Deployment] = field(default_factory=dict)  # lower-case name -> deployment

    def deployment(self, name: str) -> Deployment | None:
        return self.deployments.get(name.lower())


@dataclass
class Operation:
    """A long-running operation, polled through mfeOperationsStatus or mfeOperationResults."""

    id: str
    workspace: str
    location: str
    subscription: str
    done_status: int = 200  # what the Location poll answers once Succeeded (204 for deletes)
    status: str = "InProgress"
    started: float = field(default_factory=time.time)
    ended: float | None = None
    error: dict[str, str] | None = None


@dataclass
class Workspace:
    cfg: WorkspaceConfig
    jobs: dict[str, Job] = field(default_factory=dict)
    models: dict[str, dict[str, ModelVersion]] = field(default_factory=dict)
    online: dict[str, Endpoint] = field(default_factory=dict)  # lower-case name -> endpoint
    batch: dict[str, Endpoint] = field(default_factory=dict)
    codes: dict[str, dict[str, CodeVersion]] = field(default_factory=dict)  # name -> version -> code

    def endpoints(self, batch: bool) -> dict[str, Endpoint]:
        return self.batch if batch else self.online
