"""In-memory state of the Studio (classic) services: jobs, endpoint models, ARM web services.

Jobs run on a small thread pool so the HTTP loop stays responsive while scikit-learn trains. Each
endpoint runs at most `max_running_jobs_per_endpoint` jobs; later starts wait in a FIFO queue (their
status stays `NotStarted`), and starts beyond `max_queued_jobs_per_endpoint` get 503 RequestThrottled.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import ilearner
from ..blobs import BlobRef, StorageError, read_blob, result_reference, stream_sample, write_blob
from ..config import ArmWebServiceConfig, EmulatorConfig, EndpointConfig, WebServiceConfig
from .errors import ServiceError

logger = logging.getLogger(__name__)

TERMINAL = ("Finished", "Failed", "Cancelled")


@dataclass
class JobBehaviour:
    """Makes the next `remaining` jobs of a service run long or end Failed."""

    target: str
    duration_s: float | None = None
    fail_details: str | None = None
    remaining: int | None = 1
    # A compromised service: Results point somewhere else than the request said.
    results_base_location: str | None = None
    results_relative_location: str | None = None
    # Large inputs: stream the whole blob (the data path stays service <-> storage) but train on a sample.
    train_on_first_bytes: int | None = None


@dataclass
class UpdateBehaviour:
    """Makes the next updates of an endpoint / ARM service fail or never reach Succeeded."""

    target: str
    fail_message: str | None = None
    never_succeed: bool = False
    remaining: int | None = 1


@dataclass
class Job:
    id: str
    service: WebServiceConfig
    endpoint: EndpointConfig
    inputs: dict[str, BlobRef]
    outputs: dict[str, BlobRef]
    global_parameters: dict[str, str]
    status: str = "NotStarted"
    details: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    queued: bool = False
    status_polls: int = 0
    tampered_results: dict[str, str | None] | None = None


@dataclass
class ServedModel:
    version: str
    model: ilearner.TrainedModel
    updated_at: float


@dataclass
class ArmService:
    config: ArmWebServiceConfig
    location: str = "southcentralus"
    title: str = ""
    description: str = ""
    provisioning_state: str = "Succeeded"
    asset_uri: str = ""
    asset_credentials: str | None = None
    model: ServedModel | None = None
    created_on: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    modified_on: str = ""


@dataclass
class AsyncOperation:
    id: str
    status: str = "Provisioning"
    started: float = field(default_factory=time.time)
    ended: float | None = None
    error: dict[str, Any] | None = None


class EmulatorState:
    """All mutable emulator state behind one lock."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.running: dict[str, int] = {}  # endpoint service_id -> running count
        self.queues: dict[str, deque[Job]] = {}
        self.models: dict[str, ServedModel | None] = {}  # endpoint service_id -> model
        # endpoint service_id -> the resource location its model came from (what a GET of the endpoint shows)
        self.locations: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, tuple[WebServiceConfig, EndpointConfig]] = {}
        self.extra_endpoints: dict[str, list[EndpointConfig]] = {}  # web service id -> created endpoints
        self.arm: dict[str, ArmService] = {}
        self.operations: dict[str, AsyncOperation] = {}
        self.job_behaviours: list[JobBehaviour] = []
        self.update_behaviours: list[UpdateBehaviour] = []
        self.counters: dict[str, int] = {}
        # A running job holds a worker while it waits out its duration, so size the pool for the
        # documented 40 concurrent jobs per endpoint rather than for the CPU.
        self.executor = ThreadPoolExecutor(
            max_workers=max(8, 2 * config.max_running_jobs_per_endpoint), thread_name_prefix="emulator-job"
        )
        for service in config.web_services:
            for endpoint in service.endpoints:
                self.register_endpoint(service, endpoint)
        for arm in config.arm_web_services:
            self.arm[arm.name.lower()] = ArmService(arm, title=arm.name)

    def register_endpoint(self, service: WebServiceConfig, endpoint: EndpointConfig) -> None:
        self.endpoints[endpoint.service_id] = (service, endpoint)
        self.models.setdefault(endpoint.service_id, None)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    # ---- faults ---------------------------------------------------------------------------------

    def take_job_behaviour(self, service: WebServiceConfig, endpoint: EndpointConfig) -> JobBehaviour | None:
        with self.lock:
            for behaviour in self.job_behaviours:
                if behaviour.target in ("*", service.id, endpoint.service_id) and (
                    behaviour.remaining is None or behaviour.remaining > 0
                ):
                    if behaviour.remaining is not None:
                        behaviour.remaining -= 1
                    return behaviour
        return None

    def take_update_behaviour(self, target: str) -> UpdateBehaviour | None:
        with self.lock:
            for behaviour in self.update_behaviours:
                if behaviour.target in ("*", target) and (behaviour.remaining is None or behaviour.remaining > 0):
                    if behaviour.remaining is not None:
                        behaviour.remaining -= 1
                    return behaviour
        return None

    # ---- jobs -----------------------------------------------------------------------------------

    def submit(
        self,
        service: WebServiceConfig,
        endpoint: EndpointConfig,
        inputs: dict[str, BlobRef],
        outputs: dict[str, BlobRef],
        parameters: dict[str, str],
    ) -> Job:
        job = Job(uuid.uuid4().hex, service, endpoint, inputs, outputs, parameters)
        with self.lock:
            self.jobs[job.id] = job
        self.count("jobs_submitted")
        return job

    def start(self, job: Job) -> None:
        sid = job.endpoint.service_id
        with self.lock:
            if job.status != "NotStarted" or job.queued:
                state = "Queued" if job.queued else job.status
                raise ServiceError(
                    "InvalidOperation", "CannotStartJob", f"The job cannot be started because it is in {state} state"
                )
            queue = self.queues.setdefault(sid, deque())
            if self.running.get(sid, 0) < self.config.max_running_jobs_per_endpoint:
                self._launch(job)
            elif len(queue) < self.config.max_queued_jobs_per_endpoint:
                job.queued = True
                queue.append(job)
            else:
                raise ServiceError(
                    "ServiceUnavailable",
                    "RequestThrottled",
                    f"Request was throttled for {job.endpoint.name} endpoint. The maximum concurrency "
                    f"for the endpoint is {self.config.max_running_jobs_per_endpoint}.",
                )
        self.count("jobs_started")

    def _launch(self, job: Job) -> None:
        sid = job.endpoint.service_id
        self.running[sid] = self.running.get(sid, 0) + 1
        job.queued = False
        job.status = "Running"
        job.started_at = time.time()
        self.executor.submit(self._run, job)

    def _release(self, job: Job) -> None:
        sid = job.endpoint.service_id
        with self.lock:
            self.running[sid] -= 1
            queue = self.queues.get(sid)
            while queue and self.running[sid] < self.config.max_running_jobs_per_endpoint:
                nxt = queue.popleft()
                if nxt.status == "NotStarted":
                    self._launch(nxt)

    def cancel(self, job: Job) -> bool:
        """Cancel a job; returns False if it had already ended (the caller then forgets it)."""
        with self.lock:
            if job.status in TERMINAL:
                return False
            job.cancel_requested = True
            if job.queued and job.id in [j.id for j in self.queues.get(job.endpoint.service_id, ())]:
                self.queues[job.endpoint.service_id] = deque(
                    j for j in self.queues[job.endpoint.service_id] if j.id != job.id
                )
                job.queued = False
            job.status = "Cancelled"
            job.finished_at = time.time()
            self.count("jobs_cancelled")
            return True

    def _run(self, job: Job) -> None:
        try:
            behaviour = self.take_job_behaviour(job.service, job.endpoint)
            if behaviour and (behaviour.results_base_location or behaviour.results_relative_location):
                job.tampered_results = {
                    "BaseLocation": behaviour.results_base_location,
                    "RelativeLocation": behaviour.results_relative_location,
                }
            duration = job.service.job_seconds
            if behaviour and behaviour.duration_s is not None:
                duration = behaviour.duration_s
            began = time.time()
            if behaviour and behaviour.fail_details:
                self._sleep_unless_cancelled(job, began + duration)
                self._finish(job, "Failed", behaviour.fail_details)
                return
            if job.service.kind == "training":
                self._train(job, behaviour.train_on_first_bytes if behaviour else None)
            else:
                self._score(job)
            self._sleep_unless_cancelled(job, began + duration)
            self._finish(job, "Finished", None)
        except ServiceError as exc:
            self._finish(job, "Failed", f"{exc.detail_code}: {exc.message}")
        except StorageError as exc:
            self._finish(job, "Failed", f"{exc.code}: {exc.message}")
        except (ilearner.DatasetError, ilearner.ModelFormatError) as exc:
            self._finish(job, "Failed", f"ModuleExecutionError: {exc}")
        except Exception as exc:  # a job must end, whatever went wrong inside it
            logger.exception("job %s crashed", job.id)
            self._finish(job, "Failed", f"InternalError: {type(exc).__name__}")
        finally:
            self._release(job)

    @staticmethod
    def _sleep_unless_cancelled(job: Job, until: float) -> None:
        while time.time() < until and not job.cancel_requested:
            time.sleep(min(0.05, max(0.0, until - time.time())))

    def _finish(self, job: Job, status: str, details: str | None) -> None:
        with self.lock:
            if job.status in TERMINAL:
                return  # cancelled meanwhile: the outputs, if any, are left but the job stays Cancelled
            job.status = status
            job.details = details
            job.finished_at = time.time()
        self.count(f"jobs_{status.lower()}")

    def _train(self, job: Job, sample_bytes: int | None = None) -> None:
        name, ref = next(iter(job.inputs.items()))
        data = (
            read_blob(ref, f"Inputs.{name}")
            if sample_bytes is None
            else stream_sample(ref, f"Inputs.{name}", sample_bytes)
        )
        dataset = ilearner.parse_dataset(
            data, ref.extension, job.global_parameters.get("Label Column", job.service.label_column)
        )
        model, evaluation = ilearner.train(dataset, job.id, job.global_parameters)
        for output_name, out in job.outputs.items():
            if job.cancel_requested:
                return
            if out.extension == ".ilearner":
                write_blob(out, ilearner.dumps(model), f"Outputs.{output_name}")
            else:
                write_blob(out, evaluation.to_csv().encode(), f"Outputs.{output_name}")

    def _score(self, job: Job) -> None:
        served = self.models.get(job.endpoint.service_id)
        if served is None:
            raise ServiceError("NotFound", "ModelPackageNotFound", "The endpoint has no trained model yet.")
        name, ref = next(iter(job.inputs.items()))
        dataset = ilearner.parse_dataset(read_blob(ref, f"Inputs.{name}"), ref.extension, "")
        names, rows = ilearner.score_table(served.model, dataset)
        text = ",".join(names) + "\n" + "".join(",".join(row) + "\n" for row in rows)
        for output_name, out in job.outputs.items():
            write_blob(out, text.encode(), f"Outputs.{output_name}")

    def status_body(self, job: Job) -> dict[str, Any]:
        with self.lock:
            job.status_polls += 1
            status, details = job.status, job.details
        results = None
        if status == "Finished":
            results = {
                name: result_reference(ref) | {k: v for k, v in (job.tampered_results or {}).items() if v}
                for name, ref in job.outputs.items()
            }
        self.count("status_calls")
        return {"StatusCode": status, "Results": results, "Details": details}

    # ---- models ---------------------------------------------------------------------------------

    def install_model(self, service_id: str, data: bytes) -> ServedModel:
        model = ilearner.loads(data)
        served = ServedModel(ilearner.version_of(data), model, time.time())
        with self.lock:
            self.models[service_id] = served
        self.count("models_installed")
        return served

    def snapshot(self) -> dict[str, Any]:
        """What the inspection endpoint reports."""
        with self.lock:
            return {
                "jobs": [
                    {
                        "id": j.id,
                        "service": j.service.name,
                        "endpoint": j.endpoint.name,
                        "status": j.status,
                        "details": j.details,
                        "queued": j.queued,
                        "created_at": j.created_at,
                        "started_at": j.started_at,
                        "finished_at": j.finished_at,
                        "status_polls": j.status_polls,
                        "outputs": [ref.relative_location for ref in j.outputs.values()],
                    }
                    for j in self.jobs.values()
                ],
                "endpoints": [
                    {
                        "web_service": service.name,
                        "endpoint": endpoint.name,
                        "service_id": endpoint.service_id,
                        "model_version": (m.version if (m := self.models.get(endpoint.service_id)) else None),
                        "model_training_job": (m.model.training_job_id if m else None),
                        "model_updated_at": (m.updated_at if m else None),
                    }
                    for service, endpoint in self.endpoints.values()
                    if service.kind == "scoring"
                ],
                "arm_web_services": [
                    {
                        "name": a.config.name,
                        "provisioning_state": a.provisioning_state,
                        "asset_uri": a.asset_uri,
                        "model_version": a.model.version if a.model else None,
                        "model_training_job": a.model.model.training_job_id if a.model else None,
                    }
                    for a in self.arm.values()
                ],
                "counters": dict(self.counters),
            }
