"""What each activity does, as plain functions over settings, storage and typed payloads.

Activities are thin shims around these, so the steps can be tested against Azurite and the
emulator without the Functions runtime. Secrets are read here, at the moment of use, and go only
into request headers or towards the ML service; they are never returned.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from .bes import BatchExecutionClient
from .definitions import Definitions, Pipeline, Target, load_definitions
from .errors import ConfigError, ForeignLocationError, ResponseFormatError, ServiceError, StorageError
from .http import ServiceClient
from .models import (
    BlobPath,
    JobState,
    JobStatusView,
    ModelArtifact,
    PipelinePlan,
    RunRequest,
    RunResult,
    SubmittedJob,
    TargetOutcome,
    UpdateRequest,
)
from .policy import check_result_location, parse_metrics, plan_of
from .scoring import ArmWebServiceClient, ClassicEndpointClient
from .settings import Settings
from .storage import TrainingStorage

logger = logging.getLogger(__name__)

_definitions_cache: dict[tuple[str, float, int], Definitions] = {}


def definitions(settings: Settings) -> Definitions:
    """The pipeline definitions, re-read when the file or the settings it refers to change."""
    path = settings.pipelines_file
    try:
        stamp = path.stat().st_mtime
    except OSError:
        raise ConfigError(f"{path}: pipeline definitions file not found (app setting RETRAIN_PIPELINES_FILE)") from None
    # `%SETTING%` strings are resolved at load, so the settings are part of what was loaded.
    key = (str(path), stamp, hash(frozenset(settings.environ.items())))
    if key not in _definitions_cache:
        _definitions_cache.clear()
        _definitions_cache[key] = load_definitions(path, settings.environ)
    return _definitions_cache[key]


def pipeline(settings: Settings, name: str) -> Pipeline:
    return definitions(settings).get(name)


def http_client(settings: Settings, service: str) -> ServiceClient:
    return ServiceClient(service, timeout_s=settings.http_timeout_s, verify=settings.verify)


def run_paths(pipeline: Pipeline, run_id: str) -> tuple[BlobPath, BlobPath | None]:
    """Where a run's outputs go: a folder of its own, so no earlier model is ever overwritten."""
    folder = f"{pipeline.name}/{run_id}"
    model = BlobPath(pipeline.output_container, f"{folder}/model.ilearner")
    evaluation = BlobPath(pipeline.output_container, f"{folder}/evaluation.csv") if pipeline.training.evaluation_output else None
    return model, evaluation


def resolve_plan(settings: Settings, request: RunRequest) -> PipelinePlan:
    return plan_of(pipeline(settings, request.pipeline), request.training_blob)


def data_exists(storage: TrainingStorage, path: BlobPath) -> dict[str, Any]:
    info = storage.info(path)
    return {"exists": info is not None, "size": info.size if info else 0, "etag": info.etag if info else None}


def submit_job(settings: Settings, storage: TrainingStorage, request: RunRequest, run_id: str, data: BlobPath) -> SubmittedJob:
    """Submit (but do not start) the training job, pointing it at our blobs through scoped SAS tokens."""
    definition = pipeline(settings, request.pipeline)
    training = definition.training
    model_blob, evaluation_blob = run_paths(definition, run_id)
    lifetime = definition.policy.timeout + timedelta(minutes=settings.sas_margin_minutes)
    storage.ensure_container(definition.output_container)
    base = storage.account_url

    def ref(path: BlobPath, *, write: bool) -> dict[str, Any]:
        return {"ConnectionString": None, "BaseLocation": base, "RelativeLocation": str(path),
                "SasBlobToken": storage.sas(path, read=not write, write=write, lifetime=lifetime)}

    outputs = {training.model_output: ref(model_blob, write=True)}
    if training.evaluation_output and evaluation_blob:
        outputs[training.evaluation_output] = ref(evaluation_blob, write=True)
    body = {"Inputs": {training.input_name: ref(data, write=False)}, "Outputs": outputs,
            "GlobalParameters": dict(training.global_parameters)}
    job_id = _bes(settings, definition.name).submit(body)
    logger.info("pipeline %s run %s: submitted training job %s", definition.name, run_id, job_id)
    return SubmittedJob(definition.name, run_id, job_id, model_blob, evaluation_blob)


def _bes(settings: Settings, pipeline_name: str) -> BatchExecutionClient:
    training = pipeline(settings, pipeline_name).training
    return BatchExecutionClient(training.ml_endpoint, settings.secret(training.api_key_setting), http_client(settings, "BES"))


def start_job(settings: Settings, job: SubmittedJob) -> None:
    _bes(settings, job.pipeline).start(job.job_id)
    logger.info("pipeline %s run %s: started training job %s", job.pipeline, job.run_id, job.job_id)


def poll_job(settings: Settings, storage: TrainingStorage, job: SubmittedJob) -> JobStatusView:
    """One status poll. On Finished, every result must be the blob we asked for, in our account."""
    definition = pipeline(settings, job.pipeline)
    status = _bes(settings, job.pipeline).get_status(job.job_id)
    if status.state is JobState.FINISHED:
        expected = {definition.training.model_output: job.model_blob}
        if definition.training.evaluation_output and job.evaluation_blob:
            expected[definition.training.evaluation_output] = job.evaluation_blob
        try:
            for name, path in expected.items():
                result = status.results.get(name)
                if result is None:
                    raise ResponseFormatError(f"job {job.job_id} finished without output {name!r}")
                check_result_location(result.get("BaseLocation"), result.get("RelativeLocation"),
                                      account_url=storage.account_url, expected=path)
        except (ForeignLocationError, ResponseFormatError) as exc:
            # Retrying cannot change a finished job's results: this run ends here, and nothing is promoted.
            logger.error("pipeline %s run %s: refused the results of job %s: %s", job.pipeline, job.run_id, job.job_id, exc)
            return JobStatusView(JobState.FAILED, f"refused the job's results: {exc}")
    return JobStatusView(status.state, status.details)


def cancel_job(settings: Settings, job: SubmittedJob) -> None:
    _bes(settings, job.pipeline).delete(job.job_id)
    logger.warning("pipeline %s run %s: cancelled training job %s", job.pipeline, job.run_id, job.job_id)


def collect_model(settings: Settings, storage: TrainingStorage, job: SubmittedJob) -> ModelArtifact:
    """Check the outputs exist in our storage; record the model's size and hash and the metrics."""
    size, sha256 = storage.digest(job.model_blob)
    if size == 0:
        raise ResponseFormatError(f"the trained model {job.model_blob} is empty")
    metrics = parse_metrics(storage.read_small(job.evaluation_blob, 64 * 1024)) if job.evaluation_blob else {}
    return ModelArtifact(job.model_blob, size, sha256, metrics)


def serving_path(definition: Pipeline) -> BlobPath:
    return BlobPath(definition.output_container, f"{definition.name}/serving.json")


def serving_metrics(settings: Settings, storage: TrainingStorage, pipeline_name: str) -> dict[str, float] | None:
    record = storage.read_json(serving_path(pipeline(settings, pipeline_name)))
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        return None
    return {str(k): float(v) for k, v in record["metrics"].items() if isinstance(v, (int, float))}


def record_serving(settings: Settings, storage: TrainingStorage, request: UpdateRequest, targets: list[str]) -> None:
    """Remember which model now serves (and its metrics) for the next gate comparison."""
    definition = pipeline(settings, request.pipeline)
    storage.write_json(serving_path(definition), {"run_id": request.run_id, "model": request.model.to_dict(),
                                                   "metrics": request.model.metrics, "targets": targets})


def update_target(settings: Settings, storage: TrainingStorage, request: UpdateRequest) -> TargetOutcome:
    """Push the model into one scoring target and wait until the target shows it."""
    definition = pipeline(settings, request.pipeline)
    target = definition.target(request.target)
    began = time.monotonic()
    sas = storage.sas(request.model.model_blob, read=True, lifetime=target.policy.timeout + timedelta(minutes=settings.sas_margin_minutes))
    wait_s = min(settings.update_wait_s, target.policy.timeout.total_seconds())
    update = _update_classic if target.kind == "classic" else _update_arm
    update(settings, storage, target, request.model.model_blob, sas, wait_s)
    elapsed = time.monotonic() - began
    logger.info("pipeline %s run %s: target %s now serves %s", request.pipeline, request.run_id, target.name, request.model.model_blob)
    return TargetOutcome(target.name, target.kind, True, None, round(elapsed, 3))


def _update_classic(settings: Settings, storage: TrainingStorage, target: Target, model: BlobPath, sas: str, wait_s: float) -> None:
    client = ClassicEndpointClient(target.update_resource_endpoint, settings.secret(target.api_key_setting or ""),
                                   http_client(settings, f"endpoint {target.name}"))
    client.update_resource(target.trained_model_name, base_location=storage.account_url, relative_location=str(model), sas_token=sas)
    deadline = time.monotonic() + wait_s
    delay = 0.05  # a swap can take from milliseconds to about 30 s: look often at first, then back off
    while client.resource_location(target.trained_model_name) != str(model):
        if time.monotonic() >= deadline:
            raise ServiceError(f"endpoint {target.name} accepted the update but did not show the new model within "
                               f"{wait_s:.0f}s", status=200, code="UpdateNotApplied", service=target.name)
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def _update_arm(settings: Settings, storage: TrainingStorage, target: Target, model: BlobPath, sas: str, wait_s: float) -> None:
    from azure.identity import ClientSecretCredential

    options: dict[str, Any] = {}
    if target.authority_host:
        options.update(authority=target.authority_host, disable_instance_discovery=True)
    if settings.ca_bundle:
        options["connection_verify"] = settings.ca_bundle
    credential = ClientSecretCredential(target.tenant or "", target.service_principal_id or "",
                                        settings.secret(target.service_principal_key_setting or ""), **options)
    client = ArmWebServiceClient(target.update_resource_endpoint, credential, http_client(settings, f"web service {target.name}"))
    uri = storage.url_of(model)
    client.update_trained_model(target.trained_model_name, uri=uri, credentials=sas)
    client.wait_until_provisioned(uri, timeout_s=wait_s)


def run_record(settings: Settings, storage: TrainingStorage, pipeline_name: str, run_id: str) -> RunResult:
    """A run's record; raise ConfigError naming what is missing."""
    if not run_id or "/" in run_id or ".." in run_id:
        raise ConfigError(f"runId {run_id!r} is not a run id")
    raw = storage.read_json(BlobPath(settings.run_records_container, f"{pipeline_name}/{run_id}.json"))
    if raw is None:
        raise ConfigError(f"pipeline {pipeline_name!r} has no run {run_id!r}")
    return RunResult.from_dict(raw)


def write_run_record(settings: Settings, storage: TrainingStorage, result: RunResult) -> str:
    """Write the run record and return its path; a record is never overwritten with other content.

    A retry after a write whose answer was lost finds the same record already there, which is success.
    """
    path = BlobPath(settings.run_records_container, f"{result.pipeline}/{result.run_id}.json")
    record = result.to_dict()
    try:
        storage.write_json(path, record, overwrite=False)
    except StorageError:
        if storage.read_json(path) != record:
            raise
    return str(path)

