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

Every `POLLS_PER_EXECUTION` polls the monitor continues as new, carrying its counts and times
(`MonitorProgress`), so a replay never reads more than one execution's few dozen events: a 5-day
job polled every 5 minutes would otherwise replay about 12,000 on every wake-up. Five polls an
execution keeps a run's replay CPU within about 3x of one replay per durable action (`make bench`,
the replay figure). An event that arrives during the switch may be dropped (the Python SDK keeps
none); the next poll still sees the job's end, so it costs at most one poll interval.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.training import cancel_training_job, poll_training_job
from retraining.models import JobEnd, JobOutcome, JobStatusView, MonitorInput, MonitorProgress
from retraining.polling import PollPlanner
from retraining.retry import CANCEL_RETRY

from ._common import ActivityFailed, call, failure_reason, input_of, iso, parse_iso

MONITOR_ORCHESTRATOR = "monitor_training_job"
JOB_EVENT = "job_status_changed"
POLLS_PER_EXECUTION = 5  # then continue as new: about 45 history events at most, however long the job

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=MONITOR_ORCHESTRATOR)
def monitor_training_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any] | None]:
    monitor = MonitorInput.from_dict(input_of(context))
    job = monitor.job
    deadline = parse_iso(monitor.deadline)
    carried = monitor.progress or MonitorProgress(iso(context.current_utc_datetime))
    started = parse_iso(carried.started_at)
    planner = PollPlanner(
        monitor.history_s, first_s=monitor.poll_first_s, max_s=monitor.poll_max_s, fraction=monitor.poll_fraction
    )
    polls, failed, failing_in_a_row = carried.polls, carried.failed_polls, carried.failing_in_a_row
    woken, last_error = carried.woken_by_event, carried.last_error
    view = JobStatusView(carried.last_state, carried.last_details) if carried.last_state else None
    event = context.wait_for_external_event(JOB_EVENT) if monitor.events and not woken else None
    for _ in range(POLLS_PER_EXECUTION):
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
            ended = JobEnd.UNREACHABLE if unreachable else JobEnd.TIMED_OUT
            return JobOutcome(ended, reason, polls, elapsed, failed, cancelled, woken).to_dict()
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
    # Enough polls for one execution: go on as a new one, so no replay reads more than a bounded history.
    progress = MonitorProgress(
        carried.started_at,
        polls,
        failed,
        failing_in_a_row,
        woken,
        last_error,
        view.state if view else None,
        view.details if view else None,
    )
    context.continue_as_new(replace(monitor, progress=progress).to_dict())
    return None
