"""Run `azure.durable_functions` generator orchestrators on Microsoft's durabletask engine.

durabletask owns the history, replay, timers and the in-memory backend. This module only
translates: `DurableContext` offers the part of `DurableOrchestrationContext` our orchestrators
use, and `_drive` passes each task the orchestrator yields to durabletask and sends its result
back, the way the Functions host's Durable extension and the Python SDK do. There is no replay
logic here. Where the SDK defines a value, the adapter computes it the SDK's way: `new_uuid` is
the SDK's name-based UUID, and a failed task raises the SDK's `Exception(f"{Reason} \\n {Details}")`
with the host's Reason and Details (`devhost.history`).

Where the two engines differ, and how the orchestrators are written so both decide the same:

- Buffered external events. durabletask keeps every event raised before anyone waits and hands
  them out one per waiter, in order. SDK 1.x keeps only the last one per name and hands it to
  every later waiter in the same replay (durable-python #507). The orchestrators wait for a given
  event name at most once per execution, or reuse one waiter, and events carry nothing they act on.
- `continue_as_new`: neither keeps unconsumed events (the Python SDK has no option to). The run
  queue keeps requests in storage, so an event it drops carries nothing that matters.
- Retries: the host implements `call_activity_with_retry` itself and records an extra timer after
  the last attempt; durabletask does not. The orchestrators retry with plain activities and timers.
- Timers: with schema V3 the SDK splits a timer longer than `maximumShortTimerDuration` (6 days on
  Azure Storage) into several; durabletask makes one. No orchestrator waits that long in one timer.
- Event names are case-insensitive in durabletask, case-sensitive in the SDK: ours are lower case.

`CheckingWorker` replays every episode through the SDK as well (`devhost.crosscheck`), so tests
see any other difference as a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Generator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import NAMESPACE_OID, uuid5

from durabletask import task as dt
from durabletask.client import TaskHubGrpcClient
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.testing import InMemoryOrchestrationBackend
from durabletask.worker import ConcurrencyOptions, TaskHubGrpcWorker

from .crosscheck import CrossCheck
from .discovery import FunctionApp
from .history import host_failure, sdk_exception
from .services import free_port

UUID_NAMESPACE = uuid5(NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")  # the SDK's namespace for new_uuid

logger = logging.getLogger(__name__)


class DurableTask:
    """What the orchestrator holds: like DF's TaskBase, its `result` is set once it completed."""

    def __init__(self, inner: dt.Task[Any], kind: str = "Activity", name: str = "") -> None:
        self.inner = inner
        self.kind = kind  # "Activity" or "Orchestrator": how the host words a failure
        self.name = name
        self.result: Any = None

    def failure(self, details: Any) -> Exception:
        """The exception the SDK raises for this task's failure, with the host's Reason and Details."""
        reason, serialised = host_failure(
            self.kind, self.name, details.error_type, details.message, details.stack_trace or ""
        )
        return sdk_exception(reason, serialised)

    def cancel(self) -> None:
        """Like the SDK's: mark the timer cancelled, leave it scheduled.

        On the host a cancelled timer is still created (the extension creates it and then cancels
        its .NET task), so it takes a sequence number and later fires unheeded. durabletask's own
        `cancel` would drop a timer created in the same episode, and number later tasks differently.
        """


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
        self._uuids = 0

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
        """The SDK's replay-safe UUID: name-based on the instance id, the orchestration time and a counter."""
        name = f"{self.instance_id}_{self.current_utc_datetime.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}_{self._uuids}"
        self._uuids += 1
        return str(uuid5(UUID_NAMESPACE, name))

    def set_custom_status(self, status: Any) -> None:
        self._ctx.set_custom_status(status)

    def call_activity(self, name: Any, input_: Any = None) -> DurableTask:
        function = _name_of(name)
        return DurableTask(self._ctx.call_activity(function, input=input_), "Activity", function)

    def call_activity_with_retry(self, name: Any, retry_options: Any, input_: Any = None) -> DurableTask:
        function = _name_of(name)
        return DurableTask(
            self._ctx.call_activity(function, input=input_, retry_policy=_retry_policy(retry_options)),
            "Activity",
            function,
        )

    def call_sub_orchestrator(self, name: Any, input_: Any = None, instance_id: str | None = None) -> DurableTask:
        function = _name_of(name)
        return DurableTask(
            self._ctx.call_sub_orchestrator(function, input=input_, instance_id=instance_id), "Orchestrator", function
        )

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
        winner.result = winner.failure(value.get_exception().details) if value.is_failed else value.get_result()
        return winner
    if isinstance(task, _AllTask):
        for child, result in zip(task.children, value, strict=True):
            child.result = result
    task.result = value
    return value


def _failed_child(task: DurableTask, failure: dt.TaskFailedError) -> DurableTask:
    """The task whose failure `failure` is (for task_all: the child that failed)."""
    if isinstance(task, _AllTask):
        for child in task.children:
            if child.inner.is_failed:
                return child
    return task


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
            to_throw = _failed_child(yielded, failure).failure(failure.details)
        else:
            to_send = _settle(yielded, value)


def wrap_orchestrator(generator_function: Callable[[Any], Any]) -> Callable[[dt.OrchestrationContext, Any], Any]:
    def orchestrator(ctx: dt.OrchestrationContext, orchestration_input: Any) -> Any:
        # The input as the SDK's get_input() gives it: a client-started instance's input is the JSON
        # string the Python client sent (see orchestrators._common.input_of), not a decoded value.
        produced = generator_function(DurableContext(ctx, orchestration_input))
        if not isinstance(produced, Generator):
            return produced
        return (yield from _drive(produced))

    return orchestrator


class ActivityClient(Protocol):
    """What an activity with a Durable client binding needs from the host: the binding, and its event loop."""

    def binding(self) -> str: ...

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any: ...


def wrap_activity(
    function: Callable[..., Any],
    input_name: str,
    client_name: str | None = None,
    client: ActivityClient | None = None,
) -> Callable[[dt.ActivityContext, Any], Any]:
    """The activity as durabletask calls it; an async one with a Durable client binding (`client_name`) gets the
    host's client and runs on the host's loop, as the Functions host runs it."""

    def activity(ctx: dt.ActivityContext, activity_input: Any) -> Any:
        kwargs = {input_name: activity_input}
        if client_name is not None:
            if client is None:
                raise RuntimeError(f"activity {function.__name__} needs a Durable client, and no host gives one")
            kwargs[client_name] = client.binding()
        result = function(**kwargs)
        if asyncio.iscoroutine(result):
            if client is None:
                raise RuntimeError(f"activity {function.__name__} is async, and no host loop runs it")
            result = client.run(result)
        return result

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


class CheckingWorker(TaskHubGrpcWorker):
    """durabletask's worker, handing each orchestration episode (request and decided response) to a check."""

    def __init__(
        self,
        *args: Any,
        on_episode: Callable[[pb.OrchestratorRequest, pb.OrchestratorResponse], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_episode = on_episode

    def _execute_orchestrator(self, req: pb.OrchestratorRequest, stub: Any, completionToken: Any) -> None:
        if self._on_episode is None:
            super()._execute_orchestrator(req, stub, completionToken)
            return
        on_episode = self._on_episode

        class Tap:
            def __getattr__(self, name: str) -> Any:
                return getattr(stub, name)

            def CompleteOrchestratorTask(self, response: pb.OrchestratorResponse) -> Any:
                on_episode(req, response)
                return stub.CompleteOrchestratorTask(response)

        super()._execute_orchestrator(req, Tap(), completionToken)


class DurableEngine:
    """The in-memory durabletask backend, a worker running the app's orchestrators and activities, and a client."""

    def __init__(
        self,
        app: FunctionApp,
        *,
        port: int | None = None,
        max_activities: int = 32,
        crosscheck: bool = False,
        activity_client: ActivityClient | None = None,
    ) -> None:
        self.port = port or free_port()
        self.backend = Backend(port=self.port)
        self.backend.start()
        address = f"localhost:{self.port}"
        self._log = quiet = logging.getLogger("devhost.durabletask")
        quiet.setLevel(logging.WARNING)  # durabletask logs every episode at INFO
        self.crosscheck = CrossCheck(app) if crosscheck else None
        self.worker = CheckingWorker(
            host_address=address,
            logger=quiet,
            concurrency_options=ConcurrencyOptions(
                maximum_concurrent_activity_work_items=max_activities, maximum_thread_pool_workers=max_activities + 4
            ),
            on_episode=self.crosscheck.check if self.crosscheck else None,
        )
        # durabletask registers functions under their __name__: give each wrapper its Functions name.
        for function in app.orchestrators:
            self.worker.add_orchestrator(_named(function.name, wrap_orchestrator(function.orchestrator_function)))
        for function in app.activities:
            binding = function.client_binding
            wrapped = wrap_activity(
                function.user_function, function.input_name, binding["name"] if binding else None, activity_client
            )
            self.worker.add_activity(_named(function.name, wrapped))
        self.client = TaskHubGrpcClient(host_address=address, logger=quiet)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self._log.setLevel(logging.ERROR)  # stopping cancels the work-item stream, which it reports as a warning
        try:
            self.worker.stop()
        finally:
            self.backend.stop()
