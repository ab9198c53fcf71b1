"""Training with an Azure ML command job, and the workspace's model registry.

- submit: one PUT of `jobs/{pipeline}-{run_id}`; the name is the run's, so a retried submit finds
  its job (200) instead of making a second one. Azure ML starts a job when it is created, so
  `start` only checks that it exists. The training data goes in as a `uri_file` input (the blob's
  URL, no SAS: the job reads it with its own identity); the model and metrics go to a folder of
  the run in a workspace datastore, so no earlier model is ever overwritten.
- status: the job's status; Completed counts only if the outputs are where we asked.
- cancel: `POST …/cancel`; a job that ended or is gone is fine.
- collect: the model folder (its files' total size and a sha256 over their names and hashes) and
  `metrics.json`, read from the datastore (through our storage client when the datastore is in our
  account, else with the workspace credential), or the job's MLflow metrics.
- register / crown: `registry`.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from azure.core.credentials import TokenCredential

from ...definitions.azure_ml import AmlCommandTraining
from ...errors import ResponseFormatError, ServiceError, StorageError
from ...models import BlobPath, JobState, JobStatusView, ModelArtifact, SubmittedJob
from ...text import excerpt, origin
from ..base import Provenance, ServiceContext, config_of, service_client
from . import registry
from .workspace import WorkspaceClient, credential_of, properties

RUNNING = {"Running", "Finalizing", "CancelRequested", "NotResponding", "Provisioning", "Paused", "Unknown"}
METRICS_LIMIT = 64 * 1024
MAX_METRICS = 200


def workspace_client(context: ServiceContext, config: AmlCommandTraining | Any, what: str) -> WorkspaceClient:
    return WorkspaceClient(
        config.workspace,
        credential_of(config.workspace, context.settings),
        service_client(context, what, max_retry_after_s=5.0),
    )


class AmlCommandJobs:
    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.config = config_of(context.pipeline.training, AmlCommandTraining)

    def _client(self) -> WorkspaceClient:
        return workspace_client(self.context, self.config, "Azure ML")

    def job_name(self, run_id: str) -> str:
        return f"{self.context.pipeline.name}-{run_id}"

    def _folder(self, run_id: str) -> str:
        return (
            f"azureml://datastores/{self.config.output_datastore}/paths/retrain/{self.context.pipeline.name}/{run_id}/"
        )

    def _outputs(self, run_id: str) -> dict[str, str]:
        outputs = {"model": self._folder(run_id) + "model/"}
        if self.config.metrics_output:
            outputs["metrics"] = self._folder(run_id) + "metrics.json"
        return outputs

    def _body(self, run_id: str, data: BlobPath) -> dict[str, Any]:
        config, pipeline = self.config, self.context.pipeline
        outputs = self._outputs(run_id)
        inputs: dict[str, Any] = {
            config.data_input: {
                "jobInputType": "uri_file",
                "uri": self.context.storage.url_of(data),
                "mode": "Download",
            }
        }
        inputs |= {name: {"jobInputType": "literal", "value": value} for name, value in config.parameters.items()}
        job_outputs: dict[str, Any] = {
            config.model_output: {"jobOutputType": "custom_model", "mode": "Upload", "uri": outputs["model"]}
        }
        if config.metrics_output:
            job_outputs[config.metrics_output] = {
                "jobOutputType": "uri_file",
                "mode": "Upload",
                "uri": outputs["metrics"],
            }
        props: dict[str, Any] = {
            "jobType": "Command",
            "displayName": f"{pipeline.name} {run_id}",
            "experimentName": config.experiment,
            "description": f"Retraining run {run_id} of pipeline {pipeline.name} on {data}",
            "tags": {"retrain.pipeline": pipeline.name, "retrain.run_id": run_id},
            "command": config.command,
            "environmentId": config.environment_id,
            "computeId": config.compute_id,
            "resources": {"instanceCount": config.instance_count},
            "limits": {"jobLimitsType": "Command", "timeout": f"PT{int(pipeline.policy.timeout.total_seconds())}S"},
            "inputs": inputs,
            "outputs": job_outputs,
        }
        if config.code_id:
            props["codeId"] = config.code_id
        return {"properties": props}

    def submit(self, run_id: str, data: BlobPath) -> SubmittedJob:
        client, name = self._client(), self.job_name(run_id)
        try:
            client.put(("jobs", name), self._body(run_id, data))
        except ServiceError as exc:
            # The name exists with other create-only fields (the definitions changed between two attempts of
            # this submit): it is this run's job all the same if its tags say so.
            if exc.status != 400 or exc.detail_code not in ("Immutable", "JobPropertyImmutable"):
                raise
            existing = client.get("jobs", name)
            tags = properties(existing, f"job {name}").get("tags") if existing else None
            if not isinstance(tags, dict) or tags.get("retrain.run_id") != run_id:
                raise
        return SubmittedJob(self.context.pipeline.name, run_id, name, self._outputs(run_id))

    def start(self, job: SubmittedJob) -> None:
        if self._client().get("jobs", job.job_id) is None:
            raise ResponseFormatError(f"job {job.job_id} was accepted but cannot be found")

    def status(self, job: SubmittedJob) -> JobStatusView:
        client = self._client()
        found = client.get("jobs", job.job_id)
        if found is None:
            return JobStatusView(JobState.FAILED, f"job {job.job_id} no longer exists in the workspace")
        props = properties(found, f"job {job.job_id}")
        status = props.get("status")
        if status == "Completed":
            return self._check_outputs(job, props)
        if status == "Failed":
            return JobStatusView(
                JobState.FAILED, client.run_error(job.job_id) or "the job failed (run history gave no reason)"
            )
        if status == "Canceled":
            return JobStatusView(JobState.CANCELLED, "the job was canceled")
        if status in RUNNING:
            return JobStatusView(JobState.RUNNING, str(status))
        return JobStatusView(JobState.NOT_STARTED, str(status) if isinstance(status, str) else None)

    def _check_outputs(self, job: SubmittedJob, props: dict[str, Any]) -> JobStatusView:
        outputs = props.get("outputs")
        reported: dict[str, Any] = outputs if isinstance(outputs, dict) else {}
        names = {"model": self.config.model_output, "metrics": self.config.metrics_output}
        for key, expected in job.outputs.items():
            output = reported.get(names.get(key) or "")
            uri = output.get("uri") if isinstance(output, dict) else None
            if not isinstance(uri, str) or uri.rstrip("/") != expected.rstrip("/"):
                return JobStatusView(
                    JobState.FAILED,
                    f"refused the job's results: output {names.get(key)!r} is at {_shown(uri)}, "
                    f"not where the run asked ({expected})",
                )
        return JobStatusView(JobState.FINISHED, "Completed")

    def cancel(self, job: SubmittedJob) -> None:
        try:
            self._client().post("jobs", job.job_id, "cancel")
        except ServiceError as exc:
            if exc.status != 404:
                raise

    def collect(self, job: SubmittedJob) -> ModelArtifact:
        client = self._client()
        folder, store = _datastore_path(job.outputs["model"], self.config.output_datastore)
        storage, container = self._datastore(client, store)
        files = sorted(b.name for b in storage.list(container, folder) if not b.name.endswith("/"))
        if not files:
            raise ResponseFormatError(f"the job's model output {job.outputs['model']} holds no files")
        manifest, size = hashlib.sha256(), 0
        for name in files:
            file_size, file_hash = storage.digest(BlobPath(container, name))
            size += file_size
            manifest.update(f"{name[len(folder) :]}\0{file_hash}\n".encode())
        if size == 0:
            raise ResponseFormatError(f"the trained model {job.outputs['model']} is empty")
        metrics = self._metrics(client, job, storage, container)
        return ModelArtifact(job.outputs["model"], size, manifest.hexdigest(), metrics)

    def _metrics(self, client: WorkspaceClient, job: SubmittedJob, storage: Any, container: str) -> dict[str, float]:
        if "metrics" in job.outputs:
            path, _ = _datastore_path(job.outputs["metrics"], self.config.output_datastore)
            try:
                return parse_json_metrics(storage.read_small(BlobPath(container, path), METRICS_LIMIT))
            except StorageError:
                pass  # not written: the job may log its metrics to MLflow only
        return client.run_metrics(job.job_id)

    def _datastore(self, client: WorkspaceClient, name: str) -> tuple[Any, str]:
        account_url, container = client.datastore(name)
        ours = self.context.storage
        if account_url.split("//", 1)[-1].split(".", 1)[0] == ours.account_name:
            return ours, container  # the datastore is a container of our own account
        return _foreign_storage(account_url, credential_of(self.config.workspace, self.context.settings)), container

    def register(self, model: ModelArtifact, provenance: Provenance) -> ModelArtifact:
        return registry.register(self._client(), self.config, model, provenance)

    def crown(self, model: ModelArtifact) -> None:
        registry.crown(self._client(), self.config.model_name, model)


def _shown(uri: Any) -> str:
    """Where a job says an output is, as a message may show it: an http(s) URL by its origin (it may carry a SAS)."""
    if not isinstance(uri, str):
        return "nowhere"
    return origin(uri) if uri.lower().startswith(("http://", "https://")) else repr(uri[:200])


def _datastore_path(uri: str, store: str) -> tuple[str, str]:
    prefix = f"azureml://datastores/{store}/paths/"
    if not uri.startswith(prefix):
        raise ResponseFormatError(f"{uri} is not in datastore {store!r}")
    return uri[len(prefix) :], store


_FOREIGN: dict[tuple[str, int], Any] = {}


def _foreign_storage(account_url: str, credential: TokenCredential) -> Any:
    """A storage client for a datastore's account, signed in as the workspace credential (one per account and credential)."""
    key = (account_url, id(credential))
    if key not in _FOREIGN:
        from ...storage import TrainingStorage, blob_service

        _FOREIGN[key] = TrainingStorage(blob_service(account_url, credential=credential), account_key=None)
    return _FOREIGN[key]


def parse_json_metrics(data: bytes) -> dict[str, float]:
    """A flat JSON object of metric -> number (other values are ignored); ResponseFormatError if it is none."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        raise ResponseFormatError("metrics.json is not JSON") from None
    if not isinstance(raw, dict):
        raise ResponseFormatError("metrics.json must be one JSON object of metric names to numbers")
    numbers = {
        str(k)[:100]: float(v) for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    for name, number in numbers.items():
        if not math.isfinite(number):  # a diverged loss: refused, as the Studio evaluation output is
            raise ResponseFormatError(
                f"metrics.json: metric {excerpt(name)} is {'NaN' if math.isnan(number) else 'infinite'};"
                " a model's metrics must be finite numbers to be gated and plotted"
            )
    return dict(list(numbers.items())[:MAX_METRICS])
