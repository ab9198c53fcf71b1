"""Sub-orchestration that watches one training job until it ends or its deadline passes (monitor pattern).

Each wait is a durable timer (`retraining.polling` chooses its length). A poll that fails (the
service throttles, answers 5xx, or cannot be reached) is counted and retried on the next, shorter
wait: an outage ends the watch only at the deadline. At the deadline the job is cancelled, with
retries, and the outcome is TimedOut (or Unreachable if its status could not be read lately).

Where the training service announces completion (Azure ML on Event Grid), the app raises
`JOB_EVENT` to this instance and the wait ends at once: the event only brings the next poll
forward, so a duplicate, late, forged or lost event changes nothing but timing. The waiter is
created once and used for one early wake-up, so both Durable engines treat buffered events alike.
With `polling.completionEvents` the pipeline says the events do reach the app: until one comes,
the monitor polls only every `maxInterval` (a lost event costs at most that), so a job costs two
status calls, the first and the one the event brings; once woken, the usual schedule resumes.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.training import cancel_training_job, poll_training_job
from retraining.models import JobEnd, JobOutcome, JobStatusView, MonitorInput
from retraining.polling import PollPlanner
from retraining.retry import CANCEL_RETRY

from ._common import ActivityFailed, call, failure_reason, input_of, iso, parse_iso

MONITOR_ORCHESTRATOR = "monitor_training_job"
JOB_EVENT = "job_status_changed"

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=MONITOR_ORCHESTRATOR)
def monitor_training_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    monitor = MonitorInput.from_dict(input_of(context))
    job = monitor.job
    deadline = parse_iso(monitor.deadline)
    started = context.current_utc_datetime
    planner = PollPlanner(
        monitor.history_s, first_s=monitor.poll_first_s, max_s=monitor.poll_max_s, fraction=monitor.poll_fraction
    )
    event = context.wait_for_external_event(JOB_EVENT) if monitor.events else None
    polls = failed = failing_in_a_row = 0
    woken = False
    last_error: str | None = None
    view: JobStatusView | None = None
    while True:
        try:
            view = JobStatusView.from_dict((yield context.call_activity(poll_training_job, job.to_dict())))
            failing_in_a_row = 0
        except Exception as exc:  # a failed poll: counted, retried on the next wait
            failed += 1
            failing_in_a_row += 1
            last_error = failure_reason(exc)
        polls += 1
        now = context.current_utc_datetime
        elapsed = round((now - started).total_seconds(), 3)
        context.set_custom_status(
            {
                "phase": "polling",
                "job_id": monitor.job.job_id,
                "polls": polls,
                "failed_polls": failed,
                "elapsed_s": elapsed,
                "job_state": view.state.value if view else None,
                "last_error": last_error if failing_in_a_row else None,
                "checked_at": iso(now),
                "expected_s": planner.expected_s,
                "woken_by_event": woken,
            }
        )
        if view is not None and failing_in_a_row == 0 and view.state.terminal:
            return JobOutcome(JobEnd(view.state.value), view.details, polls, elapsed, failed, None, woken).to_dict()
        if now >= deadline:
            cancelled = True
            try:
                yield from call(context, cancel_training_job, job, CANCEL_RETRY)
            except ActivityFailed as failure:
                cancelled, last_error = False, failure.reason
            unreachable = failing_in_a_row > 0
            what = (
                f"its status could not be read for the last {failing_in_a_row} polls ({last_error})"
                if unreachable
                else f"it was still {view.state.value if view else 'unknown'} after {polls} polls"
            )
            fate = (
                "it was cancelled" if cancelled else f"cancelling it failed too ({last_error}); it may still be running"
            )
            reason = f"the training job outlived the policy deadline {monitor.deadline}: {what}; {fate}"
            return JobOutcome(
                JobEnd.UNREACHABLE if unreachable else JobEnd.TIMED_OUT,
                reason,
                polls,
                elapsed,
                failed,
                cancelled,
                woken,
            ).to_dict()
        if event is not None and not woken and monitor.events_trusted and not failing_in_a_row:
            delay = monitor.poll_max_s  # the event is the signal; this poll only guards against losing it
        else:
            delay = planner.next_delay_s(elapsed, failing_in_a_row=failing_in_a_row)
        timer = context.create_timer(min(now + timedelta(seconds=delay), deadline))
        if event is not None and not woken:
            winner = yield context.task_any([event, timer])
            if winner is event:
                timer.cancel()
                woken = True
        else:
            yield timer
