"""Sub-orchestration that watches one BES job until it ends or its deadline passes (monitor pattern).

Each wait is a durable timer whose length is a share of the time the job has run so far (capped
exponential back-off). At the deadline the job is cancelled (DELETE) and the outcome is TimedOut.
Custom status shows the job id, poll count, elapsed time and the last state seen.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.training import cancel_training_job, get_training_job_status
from retraining.models import JobOutcome, JobStatusView, MonitorInput
from retraining.policy import next_poll_delay_s

from ._common import iso, parse_iso, retry_options

MONITOR_ORCHESTRATOR = "monitor_training_job"
STATUS_RETRIES = 5

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=MONITOR_ORCHESTRATOR)
def monitor_training_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    monitor = MonitorInput.from_dict(context.get_input())
    job = monitor.job.to_dict()
    deadline = parse_iso(monitor.deadline)
    started = context.current_utc_datetime
    retry = retry_options(STATUS_RETRIES, 2.0)
    polls = 0
    while True:
        view = JobStatusView.from_dict((yield context.call_activity_with_retry(get_training_job_status, retry, job)))
        polls += 1
        now = context.current_utc_datetime
        elapsed = (now - started).total_seconds()
        context.set_custom_status({"phase": "polling", "job_id": monitor.job.job_id, "polls": polls,
                                   "elapsed_s": round(elapsed, 3), "job_state": view.state.value, "checked_at": iso(now)})
        if view.state.terminal:
            return JobOutcome(view.state.value, view.details, polls, round(elapsed, 3)).to_dict()
        if now >= deadline:
            yield context.call_activity_with_retry(cancel_training_job, retry, job)
            reason = (f"the training job was still {view.state.value} at the policy deadline {monitor.deadline} "
                      f"after {polls} polls; it was cancelled")
            return JobOutcome("TimedOut", reason, polls, round(elapsed, 3)).to_dict()
        delay = next_poll_delay_s(elapsed, first_s=monitor.poll_first_s, max_s=monitor.poll_max_s, fraction=monitor.poll_fraction)
        yield context.create_timer(min(now + timedelta(seconds=delay), deadline))
