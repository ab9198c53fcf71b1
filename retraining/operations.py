"""What each activity does, as plain functions over settings, storage and typed payloads.

Activities are thin shims around these, so every step can be tested against Azurite and the
emulator without the Functions runtime. Secrets are read by the service modules at the moment
of use and go only into request headers or towards the ML service; they are never returned.

Expected failures come back as values, `{"error": {...}}` (`Refusal`): a service that refused,
data that cannot be used, a check that failed. Transient ones (throttling, 5xx, no answer,
storage hiccups) are raised, so the orchestrator's retry policy takes over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from .datasets import HEAD_BYTES, DataSchema, read_schema, schema_differences
from .decisions import Decisions, RunSignals
from .definitions import Definitions, Pipeline, load_definitions
from .errors import (
    ConfigError,
    RetrainingError,
    ServiceError,
    ServiceUnreachableError,
    StorageConflictError,
    StorageError,
    TransientServiceError,
)
from .inputs import DataPresence, InspectedData, Notification, Promotion, TakenRequest
from .lineage import Lineage
from .models import (
    BlobPath,
    GateDecision,
    JobEnd,
    JobState,
    JobStatusView,
    ModelArtifact,
    PipelinePlan,
    RunRequest,
    RunResult,
    RunStatus,
    SubmittedJob,
)
from .notify import deliver
from .policy import decide, plan_of
from .queue import QueuedRequest, RunQueue
from .services import training_service
from .services.base import Provenance, ServiceContext
from .settings import Settings
from .storage import TrainingStorage

logger = logging.getLogger(__name__)
T = TypeVar("T")

_definitions_cache: dict[tuple[str, float, int], Definitions] = {}
HISTORY_RUNS = 20  # recent job durations handed to the monitor's polling


def definitions(settings: Settings) -> Definitions:
    """The pipeline definitions, re-read when the file or the settings it refers to change."""
    path = settings.pipelines_file
    try:
        stamp = path.stat().st_mtime
    except OSError:
        raise ConfigError(
            f"{path.name}: pipeline definitions file not found (app setting RETRAIN_PIPELINES_FILE)"
        ) from None
    # `%SETTING%` strings are resolved at load, so the settings are part of what was loaded.
    key = (str(path), stamp, hash(frozenset(settings.environ.items())))
    if key not in _definitions_cache:
        _definitions_cache.clear()
        _definitions_cache[key] = load_definitions(path, settings.environ)
    return _definitions_cache[key]


def pipeline(settings: Settings, name: str) -> Pipeline:
    return definitions(settings).get(name)


def run_queue(settings: Settings, storage: TrainingStorage) -> RunQueue:
    return RunQueue(storage, settings.run_records_container)


def lineage(settings: Settings, storage: TrainingStorage) -> Lineage:
    return Lineage(storage, settings.run_records_container)


def decisions(settings: Settings, storage: TrainingStorage) -> Decisions:
    return Decisions(storage, settings.run_records_container)


def context(
    settings: Settings, storage: TrainingStorage, pipeline_name: str, deadline: datetime | None = None
) -> ServiceContext:
    return ServiceContext(settings, storage, pipeline(settings, pipeline_name), deadline)


# ---- expected failures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An expected failure, as a value: what went wrong, and the service's status and code if any."""

    message: str
    status: int | None = None
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "status": self.status, "code": self.code}}

    @classmethod
    def of(cls, exc: RetrainingError) -> Refusal:
        if isinstance(exc, ServiceError):
            return cls(str(exc)[:1000], exc.status, "/".join(c for c in (exc.code, exc.detail_code) if c) or None)
        return cls(str(exc)[:1000], None, type(exc).__name__)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (TransientServiceError, ServiceUnreachableError)) or (
        isinstance(exc, StorageError) and not isinstance(exc, StorageConflictError)
    )


def expected(step: Callable[[], T]) -> T | Refusal:
    """Run `step`; a non-transient error of ours becomes a Refusal, a transient one is raised for a retry."""
    try:
        return step()
    except RetrainingError as exc:
        if is_transient(exc):
            raise
        return Refusal.of(exc)


# ---- the queue ------------------------------------------------------------------------------


def take_next(
    settings: Settings, storage: TrainingStorage, pipeline_name: str, run_id: str, now: datetime
) -> TakenRequest | None:
    queue = run_queue(settings, storage)
    queue.forget_finished(pipeline_name, now)
    taken = queue.take_next(pipeline_name, run_id, now)
    if taken is None:
        return None
    logger.info(
        "pipeline %s: run %s takes request %s (%s); supersedes %d",
        pipeline_name,
        run_id,
        taken.entry.request_id,
        taken.entry.request.trigger.kind.value,
        len(taken.superseded),
    )
    return TakenRequest(taken.entry.request_id, taken.entry.request, tuple(taken.superseded))


def finish(
    settings: Settings,
    storage: TrainingStorage,
    pipeline_name: str,
    request_id: str,
    run_id: str,
    outcome: str,
    record: str | None,
    now: datetime,
) -> None:
    run_queue(settings, storage).finish(pipeline_name, request_id, run_id, outcome, record, now)


def recover(settings: Settings, storage: TrainingStorage, pipeline_name: str, now: datetime) -> dict[str, Any]:
    """A fresh queue: requests an earlier queue left running go back in line; their jobs are cancelled.

    A running request whose run wrote its record is finished from the record instead (never run again).
    `interrupted_runs` names the runs whose requests went back in line.
    """
    queue, records = run_queue(settings, storage), lineage(settings, storage)
    finished, requeued, cancelled, interrupted = [], [], [], []
    for entry in queue.running(pipeline_name):
        run_id = entry.run_id or ""
        try:
            result = records.record(pipeline_name, run_id)
        except ConfigError:
            result = None
        if result is not None:
            queue.finish(
                pipeline_name,
                entry.request_id,
                run_id,
                result.status.value,
                str(records.record_path(pipeline_name, run_id)),
                now,
            )
            finished.append(entry.request_id)
            continue
        if entry.job:  # cancelled before the request goes back in line, which forgets the job
            job = SubmittedJob.from_dict(entry.job)
            try:
                training_service(context(settings, storage, pipeline_name)).cancel(job)
                cancelled.append(job.job_id)
            except RetrainingError as exc:
                logger.error(
                    "pipeline %s: could not cancel job %s of interrupted run %s: %s",
                    pipeline_name,
                    job.job_id,
                    run_id,
                    exc,
                )
        queue.requeue(pipeline_name, entry.request_id, entry.run_id, now)
        requeued.append(entry.request_id)
        interrupted.append(run_id)
        ours = [SubmittedJob.from_dict(entry.job).job_id] if entry.job else []
        _record_interrupted(records, entry, run_id, [j for j in ours if j in cancelled], now)
    if requeued or finished:
        logger.warning(
            "pipeline %s: recovered %d interrupted request(s), %d finished from their records, cancelled jobs %s",
            pipeline_name,
            len(requeued),
            len(finished),
            cancelled,
        )
    return {"requeued": requeued, "finished": finished, "cancelled_jobs": cancelled, "interrupted_runs": interrupted}


def _record_interrupted(
    records: Lineage, entry: QueuedRequest, run_id: str, cancelled: list[str], now: datetime
) -> None:
    """A run whose orchestration ended without finishing gets a record saying so (never over one it wrote)."""
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    try:  # when its run took the request; a request taken before that was kept: the run id's second, rounded up
        started = entry.started_at or (
            datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) + timedelta(microseconds=999_999)
        ).strftime(stamp)
    except ValueError:
        return  # not a run id this app made: nothing to record it under
    request = entry.request
    result = RunResult(
        run_id=run_id,
        pipeline=request.pipeline,
        status=RunStatus.INTERRUPTED,
        request=request,
        started_at=min(started, now.strftime(stamp)),
        finished_at=now.strftime(stamp),
        reason="the run's orchestration ended without finishing; its request went back in line",
        request_id=entry.request_id,
        notes=(
            *(f"its training job {job} was cancelled" for job in cancelled),
            "a rollout it left unfinished is undone by the next rollout of that target, or by the daily sweep",
        ),
    )
    try:
        records.write_record(result)
    except StorageConflictError:
        pass  # it wrote its own record after all
    except RetrainingError as exc:
        logger.error("pipeline %s: could not record interrupted run %s: %s", request.pipeline, run_id, exc)


# ---- one run ----------------------------------------------------------------------------------


def resolve_plan(settings: Settings, storage: TrainingStorage, request: RunRequest) -> PipelinePlan | Refusal:
    """The orchestrator's view of the pipeline, with the durations of its recent jobs (for polling)."""

    def plan() -> PipelinePlan:
        definition = pipeline(settings, request.pipeline)
        if request.training_blob and request.training_blob.container != definition.data_container:
            raise ConfigError(f"trainingBlob: must be in the pipeline's data container {definition.data_container!r}")
        history = tuple(
            r.job.elapsed_s
            for r in lineage(settings, storage).recent(definition.name, HISTORY_RUNS)
            if r.job is not None and r.job.status is JobEnd.FINISHED
        )
        return plan_of(definition, request.training_blob, history=history)

    return expected(plan)


def data_exists(storage: TrainingStorage, path: BlobPath) -> DataPresence:
    info = storage.info(path)
    if info is None:
        return DataPresence(exists=False)
    return DataPresence(exists=info.size > 0, size=info.size, etag=info.etag)


def inspect_data(
    settings: Settings, storage: TrainingStorage, pipeline_name: str, data: BlobPath
) -> InspectedData | Refusal:
    """The data's schema, and whether it matches the data the champion learned from.

    `rejected` names the difference when the columns
    changed and the pipeline does not allow a schema change. Unusable data is a Refusal.
    """

    def inspect() -> InspectedData:
        definition = pipeline(settings, pipeline_name)
        head, complete = storage.read_head(data, HEAD_BYTES)
        schema = read_schema(head, data.name, definition.label, complete=complete)
        champion = lineage(settings, storage).serving(pipeline_name).champion
        rejected = None
        if champion is not None and champion.model.columns and not definition.gate.allow_schema_change:
            served = DataSchema(champion.model.columns, champion.model.label or "")
            differences = schema_differences(served, schema)
            if differences:
                rejected = (
                    f"the data's columns differ from those of the model now serving (run {champion.run_id}): "
                    + "; ".join(differences)
                    + ". Set gate.allowSchemaChange to accept a new schema"
                )
        return InspectedData(tuple(schema.features), schema.label, rejected)

    return expected(inspect)


def submit(
    settings: Settings,
    storage: TrainingStorage,
    pipeline_name: str,
    run_id: str,
    data: BlobPath,
    request_id: str | None = None,
) -> SubmittedJob | Refusal:
    """Submit (not start) the run's training job, and note it on the request so a crash can still cancel it.

    Once per run: a submit that runs again (a retry after its answer was lost, or a second delivery,
    since activities run at least once) returns the job noted for this run instead of making another.
    """

    def go() -> SubmittedJob:
        queue = run_queue(settings, storage)
        entry = queue.get(pipeline_name, request_id) if request_id else None
        if entry is not None and entry.run_id == run_id and entry.job and entry.job.get("run_id") == run_id:
            noted = SubmittedJob.from_dict(entry.job)
            logger.info(
                "pipeline %s run %s: training job %s was submitted already", pipeline_name, run_id, noted.job_id
            )
            return noted
        job = training_service(context(settings, storage, pipeline_name)).submit(run_id, data)
        logger.info("pipeline %s run %s: submitted training job %s", pipeline_name, run_id, job.job_id)
        if request_id:
            queue.note_job(pipeline_name, request_id, job.to_dict(), datetime.now(UTC))
        return job

    return expected(go)


def start(settings: Settings, storage: TrainingStorage, job: SubmittedJob) -> None | Refusal:
    def go() -> None:
        training_service(context(settings, storage, job.pipeline)).start(job)
        logger.info("pipeline %s run %s: started training job %s", job.pipeline, job.run_id, job.job_id)

    return expected(go)


def poll(settings: Settings, storage: TrainingStorage, job: SubmittedJob) -> JobStatusView:
    """One status poll; every failure is raised (the monitor counts failed polls and keeps going).

    A run someone asked to cancel reads as Cancelled, so the monitor ends and the run cancels its job.
    """
    cancel = decisions(settings, storage).signals(job.pipeline, job.run_id).cancel
    if cancel is not None:
        return JobStatusView(JobState.CANCELLED, f"cancel requested by {cancel.by} at {cancel.at}")
    return training_service(context(settings, storage, job.pipeline)).status(job)


def signals(settings: Settings, storage: TrainingStorage, pipeline_name: str, run_id: str) -> RunSignals:
    """The operators' decisions on a run: approve or reject, and a cancel request."""
    return decisions(settings, storage).signals(pipeline_name, run_id)


def notify(settings: Settings, note: Notification) -> dict[str, Any] | Refusal:
    """Deliver one webhook notification (`retraining.notify`); transient failures are raised for a retry."""
    return expected(lambda: deliver(settings, pipeline(settings, note.pipeline).notifications, note.to_dict()))


def cancel(settings: Settings, storage: TrainingStorage, job: SubmittedJob) -> None:
    training_service(context(settings, storage, job.pipeline)).cancel(job)
    logger.warning("pipeline %s run %s: cancelled training job %s", job.pipeline, job.run_id, job.job_id)


def collect(
    settings: Settings, storage: TrainingStorage, job: SubmittedJob, schema: InspectedData
) -> ModelArtifact | Refusal:
    """The finished job's model (size, hash, metrics), stamped with the schema of the data it learned from."""

    def go() -> ModelArtifact:
        model = training_service(context(settings, storage, job.pipeline)).collect(job)
        return ModelArtifact(
            model.location,
            model.size,
            model.sha256,
            model.metrics,
            schema.features,
            schema.label,
            model.version,
        )

    return expected(go)


def gate(settings: Settings, storage: TrainingStorage, pipeline_name: str, model: ModelArtifact) -> GateDecision:
    definition = pipeline(settings, pipeline_name)
    champion = lineage(settings, storage).serving(pipeline_name).champion
    return decide(
        definition.gate,
        model.metrics,
        champion.model.metrics if champion else None,
        compared_with=champion.run_id if champion else None,
    )


def register(
    settings: Settings, storage: TrainingStorage, pipeline_name: str, model: ModelArtifact, provenance: Provenance
) -> ModelArtifact | Refusal:
    """Register a candidate that passed its gate as a new version in the training service's registry (if it has one)."""

    def go() -> ModelArtifact:
        registered = training_service(context(settings, storage, pipeline_name)).register(model, provenance)
        if registered.version:
            logger.info(
                "pipeline %s run %s: registered the model as version %s",
                pipeline_name,
                provenance.run_id,
                registered.version,
            )
        return registered

    return expected(go)


def record_serving(
    settings: Settings,
    storage: TrainingStorage,
    pipeline_name: str,
    run_id: str,
    model: ModelArtifact,
    targets: list[str],
    champion: bool,
    now: datetime,
    unsettled: Mapping[str, tuple[str, str]] | None = None,
) -> str | None:
    """Remember which targets now serve the model; the champion is what the next gate compares against.

    A new champion is also crowned in the training service's registry; if the registry refuses, the
    record stands and the answer says why (a transient failure is raised, for a retry).
    """
    lineage(settings, storage).record_serving(
        pipeline_name, run_id, model, targets, champion=champion, now=now, unsettled=unsettled
    )
    if not champion:
        return None
    crowned = expected(lambda: training_service(context(settings, storage, pipeline_name)).crown(model))
    if isinstance(crowned, Refusal):
        logger.error(
            "pipeline %s run %s: the registry did not take the champion tag: %s", pipeline_name, run_id, crowned.message
        )
        return f"the model registry did not take the champion tag: {crowned.message}"
    return None


def write_record(settings: Settings, storage: TrainingStorage, result: RunResult) -> str:
    return lineage(settings, storage).write_record(result)


PROMOTABLE = (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_UPDATED, RunStatus.ROLLED_BACK, RunStatus.DRY_RUN)


def promotion(
    settings: Settings, storage: TrainingStorage, pipeline_name: str, source_run: str, force: bool
) -> Promotion | Refusal:
    """The verified model of run `source_run`, if it may be rolled out: its gate passed, or `force` was asked."""

    def check() -> Promotion:
        record = lineage(settings, storage).record(pipeline_name, source_run)
        if record.model is None:
            raise ConfigError(f"run {source_run} produced no verified model (it ended {record.status.value})")
        passed = record.status in PROMOTABLE and (record.gate is None or record.gate.promote)
        if not passed and not force:
            why = (
                "; ".join(record.gate.reasons)
                if record.gate and record.gate.reasons
                else f"it ended {record.status.value}"
            )
            raise ConfigError(
                f"run {source_run}'s model did not pass its gate ({why}); pass force to roll it out anyway"
            )
        return Promotion(record.model, passed)

    return expected(check)
