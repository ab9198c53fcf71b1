"""Run `azure.durable_functions` generator orchestrators on Microsoft's durabletask engine.

durabletask owns the history, replay, timers, retries and the in-memory backend. This module only
translates: `DurableContext` offers the part of `DurableOrchestrationContext` our orchestrators use,
and `_drive` passes each task the orchestrator yields to durabletask and sends its result back,
the way the Functions host's Durable extension does. There is no replay logic here.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from durabletask import task as dt
from durabletask.client import TaskHubGrpcClient
from durabletask.testing import InMemoryOrchestrationBackend
from durabletask.worker import ConcurrencyOptions, TaskHubGrpcWorker

from .discovery import FunctionApp
from .services import free_port

logger = logging.getLogger(__name__)


class DurableTask:
    """What the orchestrator holds: like DF's TaskBase, its `result` is set once it completed."""

    def __init__(self, inner: dt.Task[Any]) -> None:
        self.inner = inner
        self.result: Any = None

    def cancel(self) -> None:
        cancel = getattr(self.inner, "cancel", None)
        if callable(cancel):
            cancel()


class _AnyTask(DurableTask):
    def __init__(self, inner: dt.Task[Any], children: list[DurableTask]) -> None:
        super().__init__(inner)
        self.children = children


class _AllTask(DurableTask):
    def __init__(self, inner: dt.Task[Any], children: list[DurableTask]) -> None:
        super().__init__(inner)
        self.children = children


def _name_of(target: Any) -> str:
    """A function name, or the name of a decorated Functions builder (what DF resolves too)."""
    if isinstance(target, str):
        return target
    function = getattr(target, "_function", None)
    if function is not None:
        return str(function.get_function_name())
    raise TypeError(f"expected a function name or a decorated function, got {target!r}")


def _retry_policy(options: Any) -> dt.RetryPolicy:
    return dt.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=options.first_retry_interval_in_milliseconds),
        max_number_of_attempts=options.max_number_of_attempts,
    )


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class DurableContext:
    """The `DurableOrchestrationContext` surface our orchestrators use, backed by durabletask."""

    def __init__(self, ctx: dt.OrchestrationContext, orchestration_input: Any) -> None:
        self._ctx = ctx
        self._input = orchestration_input

    @property
    def instance_id(self) -> str:
        return self._ctx.instance_id

    @property
    def is_replaying(self) -> bool:
        return self._ctx.is_replaying

    @property
    def current_utc_datetime(self) -> datetime:
        return self._ctx.current_utc_datetime.replace(tzinfo=UTC)

    def get_input(self) -> Any:
        return self._input

    def new_uuid(self) -> str:
        return self._ctx.new_uuid()

    def set_custom_status(self, status: Any) -> None:
        self._ctx.set_custom_status(status)

    def call_activity(self, name: Any, input_: Any = None) -> DurableTask:
        return DurableTask(self._ctx.call_activity(_name_of(name), input=input_))

    def call_activity_with_retry(self, name: Any, retry_options: Any, input_: Any = None) -> DurableTask:
        return DurableTask(self._ctx.call_activity(_name_of(name), input=input_, retry_policy=_retry_policy(retry_options)))

    def call_sub_orchestrator(self, name: Any, input_: Any = None, instance_id: str | None = None) -> DurableTask:
        return DurableTask(self._ctx.call_sub_orchestrator(_name_of(name), input=input_, instance_id=instance_id))

    def call_sub_orchestrator_with_retry(self, name: Any, retry_options: Any, input_: Any = None,
                                         instance_id: str | None = None) -> DurableTask:
        return DurableTask(self._ctx.call_sub_orchestrator(_name_of(name), input=input_, instance_id=instance_id,
                                                           retry_policy=_retry_policy(retry_options)))

    def create_timer(self, fire_at: datetime) -> DurableTask:
        return DurableTask(self._ctx.create_timer(_utc_naive(fire_at)))

    def wait_for_external_event(self, name: str) -> DurableTask:
        return DurableTask(self._ctx.wait_for_external_event(name))

    def task_all(self, activities: list[DurableTask]) -> DurableTask:
        return _AllTask(dt.when_all([a.inner for a in activities]), list(activities))

    def task_any(self, activities: list[DurableTask]) -> DurableTask:
        return _AnyTask(dt.when_any([a.inner for a in activities]), list(activities))

    def continue_as_new(self, input_: Any) -> None:
        self._ctx.continue_as_new(input_)


def _settle(task: DurableTask, value: Any) -> Any:
    """Turn durabletask's value for `task` into what DF would send back into the generator."""
    if isinstance(task, _AnyTask):
        winner = next(child for child in task.children if child.inner is value)
        # DF hands back the first child to finish, failed or not; a failed child's result is its exception.
        winner.result = Exception(value.get_exception().details.message) if value.is_failed else value.get_result()
        return winner
    if isinstance(task, _AllTask):
        for child, result in zip(task.children, value, strict=True):
            child.result = result
    task.result = value
    return value


def _drive(generator: Generator[Any, Any, Any]) -> Generator[dt.Task[Any], Any, Any]:
    """Pass each yielded task to durabletask; send results (or throw failures) back into the orchestrator."""
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            yielded = generator.throw(to_throw) if to_throw else generator.send(to_send)
        except StopIteration as stop:
            return stop.value
        to_send, to_throw = None, None
        if not isinstance(yielded, DurableTask):
            raise TypeError(f"orchestrators must yield durable tasks, got {yielded!r}")
        try:
            value = yield yielded.inner
        except dt.TaskFailedError as failure:
            to_throw = Exception(f"{failure.details.message}")
        else:
            to_send = _settle(yielded, value)


def wrap_orchestrator(generator_function: Callable[[Any], Any]) -> Callable[[dt.OrchestrationContext, Any], Any]:
    def orchestrator(ctx: dt.OrchestrationContext, orchestration_input: Any) -> Any:
        if isinstance(orchestration_input, str):
            with contextlib.suppress(ValueError):
                orchestration_input = json.loads(orchestration_input)
        produced = generator_function(DurableContext(ctx, orchestration_input))
        if not isinstance(produced, Generator):
            return produced
        return (yield from _drive(produced))

    return orchestrator


def wrap_activity(function: Callable[..., Any], input_name: str) -> Callable[[dt.ActivityContext, Any], Any]:
    def activity(ctx: dt.ActivityContext, activity_input: Any) -> Any:
        return function(**{input_name: activity_input})

    return activity


class Backend(InMemoryOrchestrationBackend):
    """durabletask's in-memory backend, with sub-orchestrations watched for as long as they run.

    In durabletask 1.12 the watcher waits with `timeout=None`, which `_wait_for_state` turns into
    30 s: a sub-orchestration that runs longer (our job monitor, for any real training job) then
    never delivers its completion, and the parent waits forever. Waiting in chunks until the
    instance ends, is purged, or the backend stops fixes that.
    """

    watch_chunk_s = 30.0

    def _wait_for_state(self, instance_id: str, predicate: Callable[[Any], bool], timeout: float | None) -> Any:
        if timeout is not None:
            return super()._wait_for_state(instance_id, predicate, timeout)
        while not self._shutdown_event.is_set():
            found = super()._wait_for_state(instance_id, predicate, self.watch_chunk_s)
            if found is not None:
                return found
            with self._lock:
                if instance_id not in self._instances:
                    return None
        return None


def _named(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    function.__name__ = function.__qualname__ = name
    return function


class DurableEngine:
    """The in-memory durabletask backend, a worker running the app's orchestrators and activities, and a client."""

    def __init__(self, app: FunctionApp, *, port: int | None = None, max_activities: int = 32) -> None:
        self.port = port or free_port()
        self.backend = Backend(port=self.port)
        self.backend.start()
        address = f"localhost:{self.port}"
        self._log = quiet = logging.getLogger("devhost.durabletask")
        quiet.setLevel(logging.WARNING)  # durabletask logs every episode at INFO
        self.worker = TaskHubGrpcWorker(
            host_address=address, logger=quiet,
            concurrency_options=ConcurrencyOptions(maximum_concurrent_activity_work_items=max_activities,
                                                   maximum_thread_pool_workers=max_activities + 4),
        )
        # durabletask registers functions under their __name__: give each wrapper its Functions name.
        for function in app.orchestrators:
            self.worker.add_orchestrator(_named(function.name, wrap_orchestrator(function.orchestrator_function)))
        for function in app.activities:
            self.worker.add_activity(_named(function.name, wrap_activity(function.user_function, function.input_name)))
        self.client = TaskHubGrpcClient(host_address=address, logger=quiet)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self._log.setLevel(logging.ERROR)  # stopping cancels the work-item stream, which it reports as a warning
        try:
            self.worker.stop()
        finally:
            self.backend.stop()
