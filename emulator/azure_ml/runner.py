"""The job state machine, and the work a job does at each step.

NotStarted -> Starting -> Preparing -> Queued -> Running -> Finalizing -> Completed, each step
`job_step_s` apart; the work (training, or batch scoring) runs in Running, which lasts at least
`job_running_s` (or a JobFault's `duration_s`); outputs are written in Finalizing (output
collection). Failed is reached from Running (bad data, unreachable storage, a JobFault) or
Finalizing (a write failed). Cancel moves any non-terminal job to CancelRequested, then Canceled
after `cancel_s`; work still under way is finished but its outputs are not written.

Every transition emits RunStatusChanged (runStatus in lower case, as the Event Grid docs show it);
Completed also emits RunCompleted.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .. import ilearner
from ..blobs import StorageError
from . import trainer
from .resources import Job, Workspace
from .state import AzureMlState
from .storage import Location, parse_uri

logger = logging.getLogger(__name__)

MODEL_OUTPUTS = ("custom_model", "mlflow_model")
_NEXT = {"NotStarted": "Starting", "Starting": "Preparing", "Preparing": "Queued", "Queued": "Running"}


class Runner:
    def __init__(self, state: AzureMlState) -> None:
        self.state = state

    def start(self, ws: Workspace, job: Job) -> None:
        job.fault = self.state.take_job_fault(ws, job)
        self.state.count("jobs_created")
        self.state.scheduler.call_later(self.state.timings.job_step_s, self._advance, ws, job)

    def cancel(self, ws: Workspace, job: Job) -> bool:
        """Request cancellation; False if the job had already ended."""
        with self.state.lock:
            if job.terminal or job.cancel_requested:
                return not job.terminal
            job.cancel_requested = True
        self._set(ws, job, "CancelRequested")
        self.state.scheduler.call_later(self.state.timings.cancel_s, self._end, ws, job, "Canceled", None)
        return True

    # ---- steps ----------------------------------------------------------------------------------

    def _advance(self, ws: Workspace, job: Job) -> None:
        status = _NEXT.get(job.status)
        if status is None or job.cancel_requested or job.terminal:
            return
        self._set(ws, job, status)
        if status == "Running":
            job.started_at = time.time()
            self._work(ws, job)
        else:
            self.state.scheduler.call_later(self.state.timings.job_step_s, self._advance, ws, job)

    def _work(self, ws: Workspace, job: Job) -> None:
        began = time.monotonic()
        error = None
        try:
            job.result = self._score(ws, job) if job.batch else self._train(ws, job)
        except (StorageError, ilearner.DatasetError, ilearner.ModelFormatError) as exc:
            error = {"code": "UserError", "message": getattr(exc, "message", str(exc))}
        except Exception as exc:  # a job must end, whatever went wrong inside it
            logger.exception("job %s crashed", job.name)
            error = {"code": "ServiceError", "message": f"Internal error ({type(exc).__name__})."}
        fault = job.fault
        if fault is not None and fault.fail_message:
            error = {"code": fault.fail_code, "message": fault.fail_message}
        running = (
            fault.duration_s if fault is not None and fault.duration_s is not None else self.state.timings.job_running_s
        )
        self.state.scheduler.call_later(running - (time.monotonic() - began), self._after_running, ws, job, error)

    def _after_running(self, ws: Workspace, job: Job, error: dict[str, str] | None) -> None:
        if job.cancel_requested or job.terminal:
            return
        if error is not None:
            self._end(ws, job, "Failed", error)
            return
        self._set(ws, job, "Finalizing")
        self.state.scheduler.call_later(self.state.timings.job_step_s, self._finalize, ws, job)

    def _finalize(self, ws: Workspace, job: Job) -> None:
        if job.cancel_requested or job.terminal:
            return
        try:
            self._write_outputs(ws, job)
        except StorageError as exc:
            self._end(ws, job, "Failed", {"code": "UserError", "message": exc.message})
            return
        self._end(ws, job, "Completed", None)

    def _set(self, ws: Workspace, job: Job, status: str) -> None:
        with self.state.lock:
            job.status = status
        self.state.publish(
            ws,
            "RunStatusChanged",
            f"experiments/{job.experiment_id}/runs/{job.name}",
            self._run_data(job) | {"runStatus": status.lower()},
        )

    def _end(self, ws: Workspace, job: Job, status: str, error: dict[str, str] | None) -> None:
        with self.state.lock:
            if job.terminal:
                return
            job.error, job.ended_at, job.result = error, time.time(), None
        self._set(ws, job, status)
        self.state.count(f"jobs_{status.lower()}")
        if status == "Completed":
            self.state.publish(
                ws, "RunCompleted", f"experiments/{job.experiment_id}/runs/{job.name}", self._run_data(job)
            )

    @staticmethod
    def _run_data(job: Job) -> dict[str, Any]:
        return {
            "experimentId": job.experiment_id,
            "experimentName": job.spec.get("experimentName", "Default"),
            "runId": job.name,
            "runType": "azureml.pipelinerun" if job.batch else "azureml.scriptrun",
            "runTags": dict(job.spec.get("tags", {})),
            "runProperties": dict(job.spec.get("properties", {})),
        }

    # ---- work -----------------------------------------------------------------------------------

    def _locate(self, ws: Workspace, uri: str) -> Location:
        return self.state.storage.locate(ws.cfg, parse_uri(uri), self.state.job_output_uri(ws))

    def _data_file(self, ws: Workspace, job: Job) -> tuple[str, bytes]:
        """(name, bytes) of the training data: the first uri_file input, else a file in the first uri_folder."""
        inputs = job.spec.get("inputs", {})
        for kind in ("uri_file", "uri_folder"):
            for name, item in inputs.items():
                if item["jobInputType"] != kind:
                    continue
                location = self._locate(ws, item["uri"])
                if kind == "uri_folder" or location.is_folder:
                    files = [
                        n
                        for n in self.state.storage.list(location, f"inputs.{name}")
                        if trainer.extension_of(n) in trainer.DATA_EXTENSIONS
                    ]
                    if not files:
                        raise StorageError(
                            "BlobNotFound", f"inputs.{name}: no .csv, .tsv or .arff file under {item['uri']}."
                        )
                    location = location.child(files[0])
                return location.path, self.state.storage.read(location, f"inputs.{name}")
        raise ilearner.DatasetError("the job has no uri_file or uri_folder input to train on")

    def _train(self, ws: Workspace, job: Job) -> trainer.Trained:
        name, data = self._data_file(ws, job)
        parameters, label = trainer.learner_settings(job.params)
        trained = trainer.train_on_bytes(data, name, label, job.name, parameters)
        job.metrics = trained.evaluation.to_dict()
        return trained

    def _score(self, ws: Workspace, job: Job) -> bytes:
        served = job.scorer
        assert served is not None
        rows: list[list[str]] = []
        header: list[str] = []
        for name, item in job.spec.get("inputs", {}).items():
            location = self._locate(ws, item["uri"])
            files = (
                [
                    location.child(n)
                    for n in self.state.storage.list(location, f"inputData.{name}")
                    if trainer.extension_of(n) in trainer.DATA_EXTENSIONS
                ]
                if location.is_folder
                else [location]
            )
            for file in files:
                data = self.state.storage.read(file, f"inputData.{name}")
                rows += trainer.score_file(served.model, data, file.path)
                header = header or [*served.model.feature_names, "label", "probability"]
        if not header:
            raise StorageError("BlobNotFound", "inputData: no .csv, .tsv or .arff file to score.")
        return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode()

    def _default_uri(self, ws: Workspace, job: Job, output: str) -> str:
        return f"azureml://datastores/{ws.cfg.default_datastore.name}/paths/azureml/{job.name}/{output}/"

    def _write_outputs(self, ws: Workspace, job: Job) -> None:
        outputs = {name: dict(item) for name, item in job.spec.get("outputs", {}).items()}
        for name, item in outputs.items():
            if not item.get("uri"):
                item["uri"] = self._default_uri(ws, job, name)
                if item["jobOutputType"] == "uri_file" and not job.batch:
                    item["uri"] += trainer.METRICS_FILE
        result = job.result
        if job.batch:
            name = next(iter(outputs))
            target = self._locate(ws, outputs[name]["uri"])
            if target.is_folder or outputs[name]["jobOutputType"] != "uri_file":
                target = target.child(job.spec["properties"].get("azureml.outputFileName", "predictions.csv"))
            self.state.storage.write(target, result, f"outputs.{name}")
        else:
            model_out = next((n for n, o in outputs.items() if o["jobOutputType"] in MODEL_OUTPUTS), None)
            if model_out is not None:
                trainer.write_model_folder(
                    self.state.storage, self._locate(ws, outputs[model_out]["uri"]).child(""), result, job.name
                )
            metrics_out = next((n for n, o in outputs.items() if o["jobOutputType"] == "uri_file"), None) or next(
                (n for n, o in outputs.items() if o["jobOutputType"] == "uri_folder"), None
            )
            if metrics_out is not None:
                target = self._locate(ws, outputs[metrics_out]["uri"])
                target = target.child(trainer.METRICS_FILE) if target.is_folder else target
                self.state.storage.write(target, trainer.metrics_json(result.evaluation), f"outputs.{metrics_out}")
        with self.state.lock:
            job.outputs = outputs
