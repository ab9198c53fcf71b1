"""Helpers shared by the orchestrators (pure, replay-safe).

Retries are done here, with plain activity calls and durable timers, rather than with the SDK's
`call_activity_with_retry`: the Functions host and durabletask record SDK retries differently
(the host adds a timer after the last attempt), retries could not honour a deadline, and the SDK's
`RetryOptions` has no back-off factor. The same code gives the same history on both engines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any, Protocol

import azure.durable_functions as df

from retraining.retry import ACTIVITY_RETRY, Retry

_HOST_PREFIX = re.compile(r"^\s*(?:Activity|Orchestrator) function '[^']*' failed:\s*")
_TYPE_PREFIX = re.compile(r"^\s*[A-Za-z_][\w.]*(?:Error|Exception|Exit|Failure|Interrupt):\s+")
_NOTHING = ("", "null", "None")  # how an absent Reason or Details reads once the SDK has joined them
_WORKER_MESSAGE = re.compile(r"Exception:\s*(.*?)(?:\nStack:|$)", re.S)


def input_of(context: df.DurableOrchestrationContext) -> Any:
    """The orchestration's input as a value.

    An instance started by the Python client arrives as a JSON string on the Functions host: the
    client sends `json.dumps(input)` as a JSON body, and the extension stores the string it gets
    (`HttpApiHandler.HandleStartOrchestratorRequestAsync`). Sub-orchestrations and continue-as-new
    pass values. Either way, this gives the value.
    """
    given = context.get_input()
    if isinstance(given, str):
        try:
            return json.loads(given)
        except ValueError:
            return given
    return given


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def failure_reason(exc: BaseException) -> str:
    """The message of an activity or sub-orchestration failure, from the form the runtime delivers it in.

    The Functions host hands the SDK `Reason` and `Details` of the TaskFailed event, and the SDK raises
    `Exception(f"{Reason} \\n {Details}")`: Reason is `Activity function 'x' failed: <message>` and
    Details a JSON serialisation of the .NET exception whose `Message` holds the message again, or the
    worker's `Result: Failure\\nException: <type>: <message>\\nStack: ...` (durable-extension #2990,
    durable-python #562). devhost delivers durabletask's failures in the same form. Anything else:
    its first line. A failure that carries no text at all (an empty Reason and `null` Details, as the
    Durable Task Scheduler may send) reads "no reason given", never "null" or "None".
    """
    text = str(exc)
    details: Any = None
    split = text.rfind(" \n {")
    if split >= 0:
        try:
            details = json.loads(text[split + 3 :])
            text = text[:split]
        except ValueError:
            details = None
    else:
        head, joined, tail = text.rpartition(" \n ")
        if joined and tail.strip() in _NOTHING:
            text = head
    if text.strip() in _NOTHING:
        text = ""
    message = _HOST_PREFIX.sub("", text, count=1).strip()
    if not message and isinstance(details, dict) and isinstance(details.get("Message"), str):
        message = details["Message"].strip()
    worker = _WORKER_MESSAGE.search(message) if message.startswith("Result:") else None
    if worker:
        message = worker.group(1).strip()
    message = _TYPE_PREFIX.sub("", message, count=1).strip()
    if message:
        return message.splitlines()[0].strip()[:500]
    return "no reason given" if type(exc) is Exception else type(exc).__name__


def name_of(function: Any) -> str:
    """The Functions name of a decorated function (or a name given as a string)."""
    inner = getattr(function, "_function", None)
    return str(inner.get_function_name()) if inner is not None else str(function)


class ActivityFailed(Exception):
    """Raised inside an orchestrator when an activity still failed after its retries."""

    def __init__(self, name: str, reason: str, attempts: int) -> None:
        super().__init__(f"{name} failed after {attempts} attempt(s): {reason}")
        self.reason = reason
        self.attempts = attempts


class Sendable(Protocol):
    """A typed payload (`retraining.payloads`, or a model with `to_dict`): what an activity may be given."""

    def to_dict(self) -> dict[str, Any]: ...


def call(
    context: df.DurableOrchestrationContext, activity: Any, payload: Sendable, retry: Retry = ACTIVITY_RETRY
) -> Generator[Any, Any, Any]:
    """Call `activity` with `payload`, retrying failures per `retry` on durable timers; ActivityFailed when they run out."""
    result, _ = yield from call_counted(context, activity, payload, retry)
    return result


def call_counted(
    context: df.DurableOrchestrationContext, activity: Any, payload: Sendable, retry: Retry = ACTIVITY_RETRY
) -> Generator[Any, Any, tuple[Any, int]]:
    """`call`, and how many attempts it took."""
    attempt = 1
    while True:
        try:
            return (yield context.call_activity(activity, payload.to_dict())), attempt
        except Exception as exc:  # activity failures reach orchestrators as plain Exception
            now = context.current_utc_datetime
            if retry.gives_up(attempt, now):
                raise ActivityFailed(name_of(activity), failure_reason(exc), attempt) from None
            yield context.create_timer(now + timedelta(seconds=retry.delay_s(attempt)))
            attempt += 1


def refused(result: Any) -> str | None:
    """The message of an expected failure an activity returned (`{"error": {...}}`), else None."""
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        error = result["error"]
        return str(error.get("message") or "refused")
    return None
