"""One retrain of one pipeline, from training data to updated scoring targets (a run of the run queue).

    resolve the pipeline; wait for the training data (the dataset's externalData policy, durable timers)
    read the data's columns: unusable data fails the run, changed columns reject it (unless allowed)
    check the data's drift from the champion's (`retraining.drift_check`): with retrainWhen, a run whose data
        meets no condition ends Skipped, and changed column kinds fail it; the scores are recorded either way
    submit the training job, then start it (separate activities: a retried start never makes a second job)
    monitor the job (sub-orchestration: polls, or a completion event; cancelled at the policy timeout)
    collect the model: outputs must be ours; record size, hash, metrics
    evaluation gate (optional): a rejected candidate ends the run Rejected and touches nothing
    register the candidate as a new model version, with its lineage (if the service has a registry)
    approval (optional, not for dry runs): wait for a person, up to gate.approval.timeout (`_approval`)
    roll the model out to every target in parallel (sub-orchestrations); record what serves
    notify the pipeline's webhook of what needs a person; write the run record

An operator may cancel the run (`retraining.decisions`): it looks before submitting the job, while
the job runs (the monitor's polls read the request), while waiting for approval, and before the
roll-out; a roll-out that started runs to its end. Whenever the run ends after its job started and
before the job ended, the job is cancelled and the record says so. Orchestrator code is replayed:
no I/O, clock, randomness or settings here.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.drift import check_data_drift
from activities.models import collect_model, evaluate_gate, register_model
from activities.training import (
    cancel_training_job,
    check_training_data,
    inspect_training_data,
    resolve_pipeline,
    start_training_job,
    submit_training_job,
)
from retraining.inputs import (
    DataCheck,
    DataInspection,
    DataPresence,
    DriftCheck,
    GateInput,
    InspectedData,
    JobSubmission,
    ModelCollection,
    Registration,
)
from retraining.instances import monitor_instance_id
from retraining.models import (
    DriftRecord,
    GateDecision,
    JobEnd,
    JobOutcome,
    ModelArtifact,
    MonitorInput,
    PipelinePlan,
    RunInput,
    RunResult,
    RunStatus,
    SubmittedJob,
)
from retraining.retry import CANCEL_RETRY, Retry
from retraining.services.base import Provenance

from ._approval import await_approval
from ._common import ActivityFailed, call, failure_reason, input_of, iso, refused
from ._run import RunProgress, metrics_summary
from .monitor_training_job import MONITOR_ORCHESTRATOR

RETRAIN_ORCHESTRATOR = "retrain_pipeline"

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=RETRAIN_ORCHESTRATOR)
def retrain_pipeline(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    run = _Retrain(context, RunInput.from_dict(input_of(context)))
    try:
        result = yield from run.execute()
    except Exception as exc:  # whatever failed, the job is not left running and the run still ends with a record
        yield from run.cancel_job_if_running()
        result = run.finish(
            RunStatus.FAILED, f"unexpected failure: {failure_reason(exc)}", job_id=run.job.job_id if run.job else None
        )
    final = yield from run.record(result)
    return final.to_dict()


class _Retrain(RunProgress):
    def __init__(self, context: df.DurableOrchestrationContext, run: RunInput) -> None:
        super().__init__(context, run)
        self.job: SubmittedJob | None = None
        self.job_ended = False
        self.data_etag: str | None = None
        self.drift: DriftRecord | None = None  # the drift check's outcome, once known: in every record after it

    def finish(self, status: RunStatus, reason: str | None = None, **fields: Any) -> RunResult:
        if self.drift is not None:
            fields.setdefault("drift", self.drift)
        return super().finish(status, reason, **fields)

    def execute(self) -> Generator[Any, Any, RunResult]:
        context, request = self.context, self.run.request
        self.status("resolving")
        resolved = yield from call(context, resolve_pipeline, request)
        if (why := refused(resolved)) is not None:
            return self.finish(RunStatus.FAILED, f"the pipeline cannot run: {why}")
        plan = PipelinePlan.from_dict(resolved)
        self.notify_events = plan.notify
        retry = Retry(attempts=plan.retry + 1, first_s=plan.retry_interval_s)

        self.status("waiting_for_data", data=str(plan.data))
        if not (yield from self._wait_for_data(plan)):
            return self.finish(RunStatus.NO_DATA, f"{plan.data} did not appear within the externalData policy")

        self.status("inspecting_data", data=str(plan.data))
        inspected = yield from call(context, inspect_training_data, DataInspection(plan.name, plan.data), retry)
        if (why := refused(inspected)) is not None:
            return self.finish(RunStatus.FAILED, f"the training data cannot be used: {why}")
        schema = InspectedData.from_dict(inspected)
        if schema.rejected:
            return self.finish(RunStatus.REJECTED, schema.rejected)
        skipped = yield from self._check_drift(plan, retry)
        if skipped is not None:
            return skipped
        if (cancel := (yield from self.cancelled())) is not None:
            return self.finish(
                RunStatus.CANCELLED, f"cancelled by {cancel.by} at {cancel.at} before the job was submitted"
            )

        job = yield from self._submit_and_start(plan, retry)
        if isinstance(job, RunResult):
            return job

        deadline = context.current_utc_datetime + timedelta(seconds=plan.timeout_s)
        monitor_id = monitor_instance_id(context.instance_id)
        self.status("polling", job_id=job.job_id, monitor=monitor_id, deadline=iso(deadline))
        monitor = MonitorInput(
            job,
            iso(deadline),
            plan.poll_first_s,
            plan.poll_max_s,
            plan.poll_fraction,
            plan.history_s,
            plan.events,
            plan.events_trusted,
        )
        outcome = JobOutcome.from_dict(
            (yield context.call_sub_orchestrator(MONITOR_ORCHESTRATOR, monitor.to_dict(), monitor_id))
        )
        self.job_ended = True  # finished, failed, or cancelled by the monitor
        if outcome.status is JobEnd.CANCELLED and (cancel := (yield from self.cancelled())) is not None:
            self.job_ended = False  # the monitor saw the request; the job itself is cancelled here
            yield from self.cancel_job_if_running()
            return self.finish(
                RunStatus.CANCELLED,
                f"cancelled by {cancel.by} at {cancel.at} while the job ran",
                job_id=job.job_id,
                job=outcome,
            )
        if outcome.status in (JobEnd.TIMED_OUT, JobEnd.UNREACHABLE):
            return self.finish(RunStatus.TIMED_OUT, outcome.details, job_id=job.job_id, job=outcome)
        if outcome.status is not JobEnd.FINISHED:
            return self.finish(
                RunStatus.FAILED,
                f"training job {outcome.status.value}: {outcome.details or 'no details'}",
                job_id=job.job_id,
                job=outcome,
            )

        self.status("collecting", job_id=job.job_id, polls=outcome.polls)
        collected = yield from call(context, collect_model, ModelCollection(job, schema), retry)
        if (why := refused(collected)) is not None:
            return self.finish(
                RunStatus.FAILED, f"the job's outputs are unusable: {why}", job_id=job.job_id, job=outcome
            )
        model = ModelArtifact.from_dict(collected)

        gate = None
        if plan.gate_enabled:
            self.status("evaluating", metrics=metrics_summary(model.metrics), metric_count=len(model.metrics))
            gate = GateDecision.from_dict((yield from call(context, evaluate_gate, GateInput(plan.name, model), retry)))
            if not gate.promote:
                return self.finish(
                    RunStatus.REJECTED, "; ".join(gate.reasons), job_id=job.job_id, job=outcome, model=model, gate=gate
                )

        self.status("registering", job_id=job.job_id)
        provenance = Provenance(
            plan.name,
            self.run_id,
            job.job_id,
            str(plan.data),
            self.data_etag,
            f"{request.trigger.kind.value}:{request.trigger.key}",
        )
        registered = yield from call(context, register_model, Registration(plan.name, model, provenance), retry)
        if (why := refused(registered)) is not None:
            return self.finish(
                RunStatus.FAILED,
                f"the model registry refused the candidate: {why}",
                job_id=job.job_id,
                job=outcome,
                model=model,
                gate=gate,
            )
        model = ModelArtifact.from_dict(registered)
        if request.dry_run:
            return self.finish(
                RunStatus.DRY_RUN,
                "dry run: no target was updated",
                job_id=job.job_id,
                job=outcome,
                model=model,
                gate=gate,
            )
        done: dict[str, Any] = {"job_id": job.job_id, "job": outcome, "model": model, "gate": gate}
        if plan.approval_s > 0:  # the wait looks for a cancel request too
            ended = yield from await_approval(self, plan, model)
        elif (cancel := (yield from self.cancelled())) is not None:
            ended = RunStatus.CANCELLED, f"cancelled by {cancel.by} at {cancel.at} before the roll-out"
        else:
            ended = None
        if ended is not None:
            return self.finish(*ended, **done)

        targets = yield from self.roll_out(plan, plan.targets, model)
        status, reason = yield from self.conclude(plan, model, targets)
        return self.finish(
            status, reason, job_id=job.job_id, job=outcome, model=model, gate=gate, targets=tuple(targets)
        )

    def _check_drift(self, plan: PipelinePlan, retry: Retry) -> Generator[Any, Any, RunResult | None]:
        """The drift check: a RunResult when the run ends here (skipped, or failed with retrainWhen), else None.

        Without retrainWhen the check only informs: if it cannot be done, the run notes why and trains as always."""
        context = self.context
        self.status("checking_drift", data=str(plan.data))
        check = DriftCheck(plan.name, self.run_id, plan.data, iso(context.current_utc_datetime))
        try:
            found = yield from call(context, check_data_drift, check, retry)
            why = refused(found)
        except ActivityFailed as failure:
            found, why = None, failure.reason
        if why is not None:
            if plan.retrain_when:
                return self.finish(RunStatus.FAILED, f"the drift check failed: {why}")
            self.notes.append(f"the drift check could not be done ({why}); the run trains, as without retrainWhen")
            return None
        self.drift = DriftRecord.from_dict(found, "drift check")
        if self.drift.detected:
            drifting = f" on {', '.join(self.drift.drifting)}" if self.drift.drifting else ""
            yield from self.notify(
                "drift_detected",
                "Training" if self.drift.train else RunStatus.SKIPPED.value,
                f"the data drifted{drifting}: " + "; ".join(self.drift.reasons),
            )
        if not self.drift.train:
            return self.finish(RunStatus.SKIPPED, "; ".join(self.drift.reasons))
        return None

    def _submit_and_start(self, plan: PipelinePlan, retry: Retry) -> Generator[Any, Any, SubmittedJob | RunResult]:
        context = self.context
        self.status("submitting")
        try:
            submission = JobSubmission(plan.name, self.run_id, plan.data, self.run.request_id)
            submitted = yield from call(context, submit_training_job, submission, retry)
            if (why := refused(submitted)) is not None:
                return self.finish(RunStatus.FAILED, f"the training service refused the job: {why}")
            self.job = SubmittedJob.from_dict(submitted)
            self.status("starting", job_id=self.job.job_id)
            started = yield from call(context, start_training_job, self.job, retry)
        except ActivityFailed as failure:
            yield from self.cancel_job_if_running()
            return self.finish(
                RunStatus.FAILED,
                f"could not start the training job: {failure.reason}",
                job_id=self.job.job_id if self.job else None,
            )
        if (why := refused(started)) is not None:
            yield from self.cancel_job_if_running()
            return self.finish(
                RunStatus.FAILED, f"the training service would not start the job: {why}", job_id=self.job.job_id
            )
        return self.job

    def cancel_job_if_running(self) -> Generator[Any, Any, None]:
        """Cancel the run's job unless it already ended; the record's notes say what happened."""
        if self.job is None or self.job_ended:
            return
        self.job_ended = True
        self.status("cancelling", job_id=self.job.job_id)
        try:
            yield from call(self.context, cancel_training_job, self.job, CANCEL_RETRY)
        except ActivityFailed as failure:
            self.notes.append(
                f"could not cancel training job {self.job.job_id}; it may still be running: {failure.reason}"
            )
            return
        self.notes.append(f"cancelled training job {self.job.job_id}")

    def _wait_for_data(self, plan: PipelinePlan) -> Generator[Any, Any, bool]:
        """Check for the data; retry every retryInterval until retryTimeout or maximumRetry runs out."""
        give_up = self.context.current_utc_datetime + timedelta(seconds=plan.data_retry_timeout_s)
        for attempt in range(plan.data_maximum_retry + 1):
            found = DataPresence.from_dict((yield from call(self.context, check_training_data, DataCheck(plan.data))))
            if found.exists:
                self.data_etag = found.etag
                return True
            next_check = self.context.current_utc_datetime + timedelta(seconds=plan.data_retry_interval_s)
            if attempt == plan.data_maximum_retry or next_check > give_up:
                return False
            self.status("waiting_for_data", data=str(plan.data), data_checks=attempt + 1)
            yield self.context.create_timer(next_check)
        return False
