"""The delivery of one run's notification, off the run's critical path.

    deliver, retried with back-off (`NOTIFY_RETRY`) until it is delivered, refused for good, or
        `DELIVERY_BOUND` has passed since the delivery began
    write how it ended beside the run's record ({records}/{pipeline}/deliveries/{run_id}/{event}.json)

A run starts this (through `send_notification`) and goes on: its record and `finished_at` are the
run's, whatever the receiver does; the delivery's outcome is written when it is known.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.notifications import NOTIFY_ORCHESTRATOR, deliver_notification, record_delivery
from retraining.inputs import Delivery, Notification
from retraining.retry import NOTIFY_RETRY, RECORD_RETRY

from ._common import ActivityFailed, call, call_counted, input_of, iso, refused

DELIVERY_BOUND = timedelta(minutes=15)  # a receiver down longer than this misses the notification (it is recorded)

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=NOTIFY_ORCHESTRATOR)
def notify_webhook(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    note = Notification.from_dict(input_of(context))
    retry = NOTIFY_RETRY.until(context.current_utc_datetime + DELIVERY_BOUND)
    try:
        answered, attempts = yield from call_counted(context, deliver_notification, note, retry)
        why = refused(answered)
    except ActivityFailed as failure:
        why, attempts = failure.reason, failure.attempts
    ended = Delivery(
        note.pipeline, note.run_id, note.event, why is None, attempts, iso(context.current_utc_datetime), why
    )
    with contextlib.suppress(ActivityFailed):  # the outcome is also this orchestration's output
        yield from call(context, record_delivery, ended, RECORD_RETRY)
    return ended.to_dict()
