"""Event Grid events from an Azure ML workspace that say a training job ended.

Only a wake-up: the monitor reads the job's status itself when it wakes, so a forged, duplicate,
late or lost event changes nothing but timing. Accepted: `RunStatusChanged` with a terminal
`runStatus` (compared without case: the docs show it in lower case) and `RunCompleted`, from the
topic of the workspace a pipeline trains in, for a job named as this app names them
(`{pipeline}-{run id}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...definitions import Pipeline
from ...definitions.azure_ml import AmlCommandTraining

RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
TERMINAL = ("completed", "failed", "canceled")
JOB_NAME = re.compile(r"^(?P<pipeline>[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)-(?P<run>[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})$")


@dataclass(frozen=True)
class JobEnded:
    pipeline: str
    run_id: str
    status: str


def job_ended(event_type: str, topic: str | None, data: Any, pipelines: Iterable[Pipeline]) -> JobEnded | None:
    """The run whose job an event says ended, if the event is one of ours; else None."""
    if (
        event_type not in (RUN_STATUS_CHANGED, RUN_COMPLETED)
        or not isinstance(data, dict)
        or not isinstance(topic, str)
    ):
        return None
    status = "completed" if event_type == RUN_COMPLETED else data.get("runStatus")
    if not isinstance(status, str) or status.lower() not in TERMINAL:
        return None
    job = data.get("runId")
    match = JOB_NAME.match(job) if isinstance(job, str) and len(job) <= 100 else None
    if match is None:
        return None
    for pipeline in pipelines:
        training = pipeline.training
        if (
            pipeline.name == match["pipeline"]
            and isinstance(training, AmlCommandTraining)
            and training.workspace.resource_id.lower() == topic.lower().rstrip("/")
        ):
            return JobEnded(pipeline.name, match["run"], status.lower())
    return None
