"""devhost as the bench runs it: `retrain serve`, with a trace of the app's own code for chosen instances.

`python -m bench.devhost_traced serve --settings ...` is `python -m devhost.cli serve ...` with four
wrappers installed first, so the overhead figure can split a run's time into the app's code, the
waits the app chose, and what is left: devhost's dispatch (the Durable engine, gRPC, its timer and
work-item threads, the HTTP server). Nothing of devhost or the app changes; the wrappers only time:

- each activity call (wall and thread CPU), from the worker's call to its return;
- each step of an orchestrator's generator (the app's orchestrator code, replays included), and each
  episode's start;
- each durable timer an orchestrator creates (not replaying): the wait from the episode's time to its due time;
- each HTTP-triggered function's invocation, and within it each Durable client call (start, status,
  raise event, purge: the host's API, which the Functions host serves on Azure).

Only instances whose id is one of `BENCH_TRACE_INSTANCES` (comma-separated) or starts with one of
them followed by ":" (its runs, monitors, rollouts), and HTTP calls whose path contains one of
`BENCH_TRACE_PATHS`, are traced, one JSON line each to `BENCH_TRACE_FILE`; everything else pays one
string comparison.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Generator
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import azure.durable_functions as df  # noqa: E402

from devhost import cli, engine, host  # noqa: E402

TRACE = os.environ.get("BENCH_TRACE_FILE")
INSTANCES = tuple(p for p in os.environ.get("BENCH_TRACE_INSTANCES", "").split(",") if p)
PATHS = tuple(p for p in os.environ.get("BENCH_TRACE_PATHS", "").split(",") if p)
_lock = threading.Lock()
_out = open(TRACE, "a", buffering=1) if TRACE else None  # noqa: SIM115 - open for the process's life


def traced(instance: str) -> bool:
    return _out is not None and any(instance == p or instance.startswith(p + ":") for p in INSTANCES)


def write(**entry: Any) -> None:
    if _out is not None:
        with _lock:
            _out.write(json.dumps(entry) + "\n")


def wrap_activity(
    function: Callable[..., Any], input_name: str, *args: Any, **kwargs: Any
) -> Callable[[Any, Any], Any]:
    inner = original_wrap_activity(function, input_name, *args, **kwargs)  # the client binding, if it has one

    def activity(ctx: Any, activity_input: Any) -> Any:
        if not traced(ctx.orchestration_id):
            return inner(ctx, activity_input)
        start, cpu = time.time(), time.thread_time()
        try:
            return inner(ctx, activity_input)
        finally:
            write(
                kind="activity",
                name=getattr(function, "__name__", "?"),
                instance=ctx.orchestration_id,
                start=start,
                end=time.time(),
                cpu=time.thread_time() - cpu,
            )

    return activity


def _steps(generator: Generator[Any, Any, Any], instance: str, name: str) -> Generator[Any, Any, Any]:
    """Drive the app's generator, timing each step of its own code."""
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        start = time.time()
        try:
            yielded = generator.throw(to_throw) if to_throw else generator.send(to_send)
        except StopIteration as stop:
            write(kind="step", name=name, instance=instance, start=start, end=time.time())
            return stop.value
        write(kind="step", name=name, instance=instance, start=start, end=time.time())
        to_send, to_throw = None, None
        try:
            to_send = yield yielded
        except GeneratorExit:
            generator.close()
            raise
        except BaseException as exc:  # a failed task, thrown into the orchestrator as devhost does
            to_throw = exc


def wrap_orchestrator(generator_function: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    name = getattr(generator_function, "__name__", "?")

    def timed(context: Any) -> Any:
        instance = context.instance_id
        if not traced(instance):
            return generator_function(context)
        write(kind="episode", name=name, instance=instance, start=time.time(), replaying=context.is_replaying)
        start = time.time()
        produced = generator_function(context)
        write(kind="step", name=name, instance=instance, start=start, end=time.time())
        if not isinstance(produced, Generator):
            return produced
        return _steps(produced, instance, name)

    return original_wrap_orchestrator(timed)


def create_timer(self: Any, fire_at: Any) -> Any:
    if not self.is_replaying and traced(self.instance_id):
        now = self.current_utc_datetime
        due = fire_at if fire_at.tzinfo else fire_at.replace(tzinfo=UTC)
        write(kind="timer", instance=self.instance_id, start=now.timestamp(), end=due.timestamp(), at=time.time())
    return original_create_timer(self, fire_at)


async def invoke(self: Any, function: Any, trigger_value: Any) -> Any:
    url = getattr(trigger_value, "url", None)
    if _out is None or not isinstance(url, str) or not any(p in url for p in PATHS):
        return await original_invoke(self, function, trigger_value)
    start = time.time()
    try:
        return await original_invoke(self, function, trigger_value)
    finally:
        write(kind="http", name=function.name, instance="", start=start, end=time.time())


def client_call(name: str, instance_at: int) -> Callable[..., Any]:
    """A Durable client method, timed when the instance it names is traced (the id is argument `instance_at`)."""
    original = getattr(df.DurableOrchestrationClient, name)

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        instance = kwargs.get("instance_id", args[instance_at] if len(args) > instance_at else None)
        if not isinstance(instance, str) or not traced(instance):
            return await original(self, *args, **kwargs)
        start = time.time()
        try:
            return await original(self, *args, **kwargs)
        finally:
            write(kind="client", name=name, instance=instance, start=start, end=time.time())

    return call


for method, at in (("start_new", 1), ("get_status", 0), ("raise_event", 0), ("purge_instance_history", 0)):
    setattr(df.DurableOrchestrationClient, method, client_call(method, at))
original_wrap_activity = engine.wrap_activity
original_wrap_orchestrator = engine.wrap_orchestrator
original_create_timer = engine.DurableContext.create_timer
original_invoke = host.DevHost.invoke
engine.wrap_activity = wrap_activity
engine.wrap_orchestrator = wrap_orchestrator
engine.DurableContext.create_timer = create_timer  # type: ignore[method-assign]
host.DevHost.invoke = invoke  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(cli.main())
