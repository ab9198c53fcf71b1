"""The main orchestration: one retrain of one pipeline, from training data to updated scoring services.

    wait for the training data (the dataset's externalData policy, with durable timers)
    submit the BES training job, then start it (separate activities: a retried start never makes a second job)
    monitor the job (sub-orchestration; cancelled at the policy timeout)
    collect the model: outputs must exist in our storage; record size, hash and metrics
    evaluation gate (optional): a rejected candidate ends the run as Rejected and touches nothing
    update every scoring target in parallel; each target's outcome is reported
    write the run record; then run at most one follow-up on the newest trigger that arrived meanwhile

One instance per pipeline (`instance_id_for`), so runs of a pipeline never overlap.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities.models import collect_model, evaluate_gate, record_serving_model
from activities.records import write_run_record
from activities.training import check_training_data, resolve_pipeline, start_training_job, submit_training_job
from retraining.models import (
    GateDecision,
    JobOutcome,
    ModelArtifact,
    MonitorInput,
    PipelinePlan,
    RunRequest,
    RunResult,
    RunStatus,
    SubmittedJob,
    TargetOutcome,
    UpdateRequest,
)

from ._common import failure_reason, iso, retry_options
from .monitor_training_job import MONITOR_ORCHESTRATOR
from .update_scoring_target import UPDATE_ORCHESTRATOR, update_input

RETRAIN_ORCHESTRATOR = "retrain_pipeline"
FOLLOW_UP_EVENT = "retrain_requested"

bp = df.Blueprint()


def instance_id_for(pipeline: str) -> str:
    return f"retrain-{pipeline}"


@bp.orchestration_trigger(context_name="context", orchestration=RETRAIN_ORCHESTRATOR)
def retrain_pipeline(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    run = _Run(context, RunRequest.from_dict(context.get_input()))
    try:
        result = yield from run.execute()
    except Exception as exc:  # whatever failed, the run still ends with a record
        result = run.finish(RunStatus.FAILED, f"unexpected failure: {failure_reason(exc)}")
    result = replace(result, record=(yield context.call_activity_with_retry(write_run_record, retry_options(5, 2.0), result.to_dict())))
    run.status("done", status=result.status.value, record=result.record)
    follow_up = yield from _newest_follow_up(context, run.request)
    if follow_up is not None:
        context.continue_as_new(follow_up.to_dict())
    return result.to_dict()


class _Run:
    """State of one execution; every method is replay-safe."""

    def __init__(self, context: df.DurableOrchestrationContext, request: RunRequest) -> None:
        self.context = context
        self.request = request
        self.started = context.current_utc_datetime
        self.run_id = f"{self.started:%Y%m%dT%H%M%SZ}-{str(context.new_uuid())[:8]}"
        self.phases: dict[str, float] = {}
        self._phase_started = self.started
        self._status: dict[str, Any] = {"run_id": self.run_id, "pipeline": request.pipeline, "trigger": request.trigger.kind.value,
                                        "started_at": iso(self.started)}

    def status(self, phase: str, **fields: Any) -> None:
        now = self.context.current_utc_datetime
        previous = self._status.get("phase")
        if previous:
            self.phases[previous] = round(self.phases.get(previous, 0.0) + (now - self._phase_started).total_seconds(), 3)
        self._phase_started = now
        self._status.update(fields, phase=phase, elapsed_s=round((now - self.started).total_seconds(), 3))
        self.context.set_custom_status(dict(self._status))

    def finish(self, status: RunStatus, reason: str | None = None, **fields: Any) -> RunResult:
        self.status("recording", outcome=status.value)
        return RunResult(run_id=self.run_id, pipeline=self.request.pipeline, status=status, request=self.request,
                         started_at=iso(self.started), finished_at=iso(self.context.current_utc_datetime), reason=reason,
                         phases=dict(self.phases), **fields)

    def execute(self) -> Generator[Any, Any, RunResult]:
        context = self.context
        self.status("resolving")
        plan = PipelinePlan.from_dict((yield context.call_activity(resolve_pipeline, self.request.to_dict())))
        activity_retry = retry_options(plan.retry, plan.retry_interval_s)

        self.status("waiting_for_data", data=str(plan.data))
        if not (yield from self._wait_for_data(plan)):
            return self.finish(RunStatus.NO_DATA, f"{plan.data} did not appear within the externalData policy")

        self.status("submitting")
        try:
            job = SubmittedJob.from_dict((yield context.call_activity_with_retry(
                submit_training_job, activity_retry, {"request": self.request.to_dict(), "run_id": self.run_id, "data": str(plan.data)})))
            self.status("starting", job_id=job.job_id)
            yield context.call_activity_with_retry(start_training_job, activity_retry, job.to_dict())
        except Exception as exc:  # activity failures reach orchestrators as plain Exception
            return self.finish(RunStatus.FAILED, f"could not start the training job: {failure_reason(exc)}")

        deadline = context.current_utc_datetime + timedelta(seconds=plan.timeout_s)
        monitor_id = f"{context.instance_id}:{self.run_id}:monitor"
        self.status("polling", job_id=job.job_id, monitor=monitor_id, deadline=iso(deadline))
        monitor = MonitorInput(job, iso(deadline), plan.poll_first_s, plan.poll_max_s, plan.poll_fraction)
        outcome = JobOutcome.from_dict((yield context.call_sub_orchestrator(MONITOR_ORCHESTRATOR, monitor.to_dict(), monitor_id)))
        if outcome.status == "TimedOut":
            return self.finish(RunStatus.TIMED_OUT, outcome.details, job_id=job.job_id, job=outcome)
        if outcome.status != "Finished":
            return self.finish(RunStatus.FAILED, f"training job {outcome.status}: {outcome.details or 'no details'}",
                               job_id=job.job_id, job=outcome)

        self.status("collecting", job_id=job.job_id, polls=outcome.polls)
        try:
            model = ModelArtifact.from_dict((yield context.call_activity_with_retry(collect_model, activity_retry, job.to_dict())))
        except Exception as exc:
            return self.finish(RunStatus.FAILED, f"the job's outputs are unusable: {failure_reason(exc)}", job_id=job.job_id, job=outcome)

        gate = None
        if plan.gate_enabled:
            self.status("evaluating", metrics=model.metrics)
            gate = GateDecision.from_dict((yield context.call_activity_with_retry(
                evaluate_gate, activity_retry, {"pipeline": plan.name, "model": model.to_dict()})))
            if not gate.promote:
                return self.finish(RunStatus.REJECTED, "; ".join(gate.reasons), job_id=job.job_id, job=outcome, model=model, gate=gate)
        if self.request.dry_run:
            return self.finish(RunStatus.DRY_RUN, "dry run: no target was updated", job_id=job.job_id, job=outcome, model=model, gate=gate)

        self.status("updating", targets=[t.name for t in plan.targets])
        targets = yield from self._update_targets(plan, model)
        updated = [t.target for t in targets if t.updated]
        if not targets or len(updated) == len(targets):
            status, reason = RunStatus.SUCCEEDED, None
        elif updated:
            status, reason = RunStatus.PARTIALLY_UPDATED, f"{len(targets) - len(updated)} of {len(targets)} targets failed"
        else:
            status, reason = RunStatus.FAILED, "no target could be updated"
        if updated:
            update = UpdateRequest(plan.name, updated[0], model, self.run_id)
            try:
                yield context.call_activity_with_retry(record_serving_model, activity_retry, {"update": update.to_dict(), "targets": updated})
            except Exception as exc:  # the targets were updated all the same: keep their outcomes in the record
                reason = "; ".join(r for r in (reason, f"could not record the served model for the next gate: {failure_reason(exc)}") if r)
        return self.finish(status, reason, job_id=job.job_id, job=outcome, model=model, gate=gate, targets=tuple(targets))

    def _wait_for_data(self, plan: PipelinePlan) -> Generator[Any, Any, bool]:
        """Check for the data; retry every retryInterval until retryTimeout or maximumRetry runs out."""
        give_up = self.context.current_utc_datetime + timedelta(seconds=plan.data_retry_timeout_s)
        for attempt in range(plan.data_maximum_retry + 1):
            found = yield self.context.call_activity(check_training_data, {"data": str(plan.data)})
            if found["exists"]:
                return True
            next_check = self.context.current_utc_datetime + timedelta(seconds=plan.data_retry_interval_s)
            if attempt == plan.data_maximum_retry or next_check > give_up:
                return False
            self.status("waiting_for_data", data=str(plan.data), data_checks=attempt + 1)
            yield self.context.create_timer(next_check)
        return False

    def _update_targets(self, plan: PipelinePlan, model: ModelArtifact) -> Generator[Any, Any, list[TargetOutcome]]:
        """Update every target in parallel; each sub-orchestration reports its own outcome."""
        updates = [
            self.context.call_sub_orchestrator(
                UPDATE_ORCHESTRATOR, update_input(UpdateRequest(plan.name, t.name, model, self.run_id), t),
                f"{self.context.instance_id}:{self.run_id}:update:{t.name}")
            for t in plan.targets
        ]
        if not updates:
            return []
        results = yield self.context.task_all(updates)
        return [TargetOutcome.from_dict(r) for r in results]


def _newest_follow_up(context: df.DurableOrchestrationContext, current: RunRequest) -> Generator[Any, Any, RunRequest | None]:
    """Drain the follow-up requests that arrived during the run and keep the newest distinct one.

    A request already seen ends the drain: DF's Python SDK hands a buffered event to every later
    waiter in the same replay, so looping on duplicates would never end.
    """
    newest: RunRequest | None = None
    seen = {current.trigger.key}
    while True:
        event = context.wait_for_external_event(FOLLOW_UP_EVENT)
        timer = context.create_timer(context.current_utc_datetime)
        winner = yield context.task_any([event, timer])
        if winner is not event:
            return newest
        timer.cancel()
        candidate = RunRequest.from_dict(_event_payload(event.result))
        if candidate.trigger.key in seen:
            return newest
        seen.add(candidate.trigger.key)
        if newest is None or _at(candidate) >= _at(newest):
            newest = candidate


def _event_payload(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _at(request: RunRequest) -> datetime:
    return datetime.fromisoformat(request.trigger.at.replace("Z", "+00:00"))
