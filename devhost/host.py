"""devhost: run the same `function_app.py` the cloud runs, without Azure Functions Core Tools.

- orchestrations and activities on durabletask's in-memory backend and worker (`engine`);
- HTTP functions under `/api`, with keys checked as the host does (`x-functions-key` header or
  `?code=`): function routes take the function key (or the master key), admin routes the master
  key; the Durable management API takes the system key; the engine's RPC surface sits behind a
  per-process secret path (see `management`). devhost also serves `/openapi.json`, a description
  of the app's HTTP routes for callers and fuzzers;
- starters get a real `DurableOrchestrationClient`, built from the client-binding JSON the host
  passes, whose calls land on the instance-management API in `management`;
- timer functions on their NCRONTAB schedule (six fields, seconds first), and at start for those
  with `run_on_startup`;
- Event Grid `BlobCreated` functions fed by watching the training storage account in Azurite, with
  receipts kept in that account so a restarted devhost never fires twice for the same blob version;
- the Event Grid webhook (`/runtime/webhooks/eventgrid`, `eventgrid_extension` key), where event
  subscriptions (the emulator's Azure ML workspace) deliver;

Background threads (timers, the blob watcher) survive any exception: it is logged, the thread
backs off and goes on, and `/admin/host/status` reports each one's health. Orchestration state
lives in memory: if devhost dies, runs in flight stop; their requests stay in the run queue's store
in Azurite, and the app's startup sweep runs them again when devhost comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import azure.functions as func
import uvicorn
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from croniter import croniter
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from retraining.retry import Retry
from retraining.storage import blob_service

from . import eventgrid
from .discovery import FunctionApp, FunctionSpec, load_app, resolve_setting_expression
from .engine import DurableEngine
from .management import ManagementApi
from .openapi import describe_routes
from .services import eventgrid_url, free_port

logger = logging.getLogger("devhost")

RECEIPTS_CONTAINER = "azure-webjobs-devhost-receipts"
ROOT = Path(__file__).resolve().parent.parent
RESTART_RETRY = Retry(first_s=0.5, max_s=30.0)  # background work that failed restarts after 1, 2, 4 ... 30 s


def load_settings(path: Path | None) -> dict[str, str]:
    """Values of a `local.settings.json`-style file (`{"Values": {...}}`)."""
    if path is None or not path.exists():
        return {}
    raw = json.loads(path.read_text())
    values = raw.get("Values", {}) if isinstance(raw, dict) else {}
    return {str(k): str(v) for k, v in values.items()}


def new_key() -> str:
    """A random key that never starts with '-' (a command line would take it for an option)."""
    return "k" + secrets.token_urlsafe(24)


def fire_times(schedule: str, start: datetime) -> Iterator[datetime]:
    """The fire times of a six-field NCRONTAB schedule (seconds first) after `start`."""
    if len(schedule.split()) != 6:
        raise ValueError(f"NCRONTAB schedules have six fields (seconds first), got {schedule!r}")
    iterator = croniter(schedule, start, second_at_beginning=True)
    while True:
        yield iterator.get_next(datetime)


@dataclass
class _HostClient:
    """The Durable client binding and event loop an activity with a client binding gets (`engine.ActivityClient`)."""

    host: DevHost

    def binding(self) -> str:
        return self.host.management.client_binding()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.host.run_coroutine(coroutine)


def _route_pattern(route: str) -> re.Pattern[str]:
    parts = []
    for segment in route.strip("/").split("/"):
        match = re.fullmatch(r"\{(\w+)(?::[^}?]+)?(\?)?\}", segment)
        if match:
            name, optional = match.groups()
            parts.append(f"(?:/(?P<{name}>[^/]+)){'?' if optional else ''}")
        else:
            parts.append("/" + re.escape(segment))
    return re.compile("^" + "".join(parts) + "/?$")


@dataclass
class BackgroundHealth:
    alive: bool = True
    restarts: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ok: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "restarts": self.restarts,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_ok": self.last_ok,
        }


@dataclass
class _HttpRoute:
    function: FunctionSpec
    pattern: re.Pattern[str]
    methods: set[str]
    auth_level: str


class DevHost:
    def __init__(
        self,
        *,
        settings: Mapping[str, str] | None = None,
        port: int | None = None,
        app_module: str = "function_app",
        blob_poll_s: float = 1.0,
        function_key: str | None = None,
    ) -> None:
        if settings:
            os.environ.update(settings)  # the Functions host exposes app settings as environment variables
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.function_key = function_key or new_key()
        self.system_key = new_key()  # the Durable extension's key (durabletask_extension)
        self.eventgrid_key = new_key()  # the Event Grid extension's key (eventgrid_extension)
        self.master_key = new_key()  # admin routes
        self.rpc_secret = new_key()  # the engine's RPC surface: for functions in this process only
        self.blob_poll_s = blob_poll_s
        self.app: FunctionApp = load_app(app_module)
        self.host_config = json.loads((ROOT / "host.json").read_text()) if (ROOT / "host.json").exists() else {}
        self.task_hub = self._task_hub()
        self.engine = DurableEngine(
            self.app,
            max_activities=int(os.environ.get("DEVHOST_MAX_ACTIVITIES", "32")),
            crosscheck=os.environ.get("DEVHOST_CROSSCHECK", "").lower() in ("1", "true"),
            activity_client=_HostClient(self),
        )
        self.management = ManagementApi(
            self.engine.client,
            base_url=self.base_url,
            task_hub=self.task_hub,
            system_key=self.system_key,
            rpc_secret=self.rpc_secret,
            orchestrator_names={f.name for f in self.app.orchestrators},
        )
        self.routes = [self._http_route(f) for f in self.app.http]
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.invocations: dict[str, int] = {}
        self.health: dict[str, BackgroundHealth] = {}

    def _task_hub(self) -> str:
        hub = self.host_config.get("extensions", {}).get("durableTask", {}).get("hubName", "TestHubName")
        return resolve_setting_expression(hub, os.environ)

    def _http_route(self, function: FunctionSpec) -> _HttpRoute:
        trigger = function.trigger
        prefix = self.host_config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
        route = trigger.get("route") or function.name
        methods = {m.upper() for m in trigger.get("methods") or ["GET", "POST"]}
        return _HttpRoute(
            function, _route_pattern(f"{prefix}/{route}"), methods, str(trigger.get("authLevel", "function")).lower()
        )

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout_s: float = 30) -> None:
        self.engine.start()
        # Idle connections are kept 130 s, as Kestrel (the Functions host's server) keeps them: the DF client pools
        # its connections for 15 s, and a server closing sooner (uvicorn's default is 5 s) races its next request.
        config = uvicorn.Config(
            self._asgi(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=130,
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        server, loop = self.server, self.loop
        thread = threading.Thread(
            target=lambda: loop.run_until_complete(server.serve()), name="devhost-http", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"devhost HTTP server did not start on port {self.port}")
            time.sleep(0.02)
        for function in self.app.timers:
            self._spawn(f"timer-{function.name}", functools.partial(self._run_timer, function))
        if self.app.event_grid and os.environ.get("DEVHOST_WATCH_BLOBS", "true").lower() != "false":
            self._spawn("blob-watcher", self._watch_blobs, restart=True)
        logger.info("devhost listening on %s (%d functions)", self.base_url, len(self.app.all))

    def stop(self) -> None:
        """Stop serving, watching and running orchestrations (a host killed outright: `services.HostProcess`)."""
        # The DF SDK keeps one aiohttp session per process, bound to the loop that made it: close it
        # on that loop, and let the next host in this process make its own.
        from azure.durable_functions.models.utils import http_utils

        self._stopping.set()
        if self.loop is not None and self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(http_utils._close_session(), self.loop).result(5)
        http_utils._client_session = None
        if self.server:
            self.server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=10)
        self.engine.stop()

    def __enter__(self) -> DevHost:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None], *, restart: bool = False) -> None:
        """Run `target` on a thread that survives its errors: log, back off, and run it again."""
        health = self.health[name] = BackgroundHealth()

        def supervised() -> None:
            failures = 0
            while not self._stopping.is_set():
                try:
                    target()
                    if not restart:
                        break
                except Exception as exc:  # never let background work die silently
                    failures += 1
                    health.errors += 1
                    health.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                    logger.exception("background work %s failed; restarting it", name)
                if self._stopping.wait(RESTART_RETRY.delay_s(failures + 1)):
                    break
                health.restarts += 1
            health.alive = False

        thread = threading.Thread(target=supervised, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def run_coroutine(self, coroutine: Coroutine[Any, Any, Any], timeout_s: float = 120) -> Any:
        """Run a function invocation on the HTTP server's loop (the DF client's session lives there)."""
        assert self.loop is not None, "devhost is not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    # ---- invocation -----------------------------------------------------------------------------

    async def invoke(self, function: FunctionSpec, trigger_value: Any) -> Any:
        kwargs: dict[str, Any] = {function.input_name: trigger_value}
        client = function.client_binding
        if client is not None:
            kwargs[client["name"]] = self.management.client_binding()
        self.invocations[function.name] = self.invocations.get(function.name, 0) + 1
        began = time.monotonic()
        logger.info("Executing 'Functions.%s'", function.name)
        result = function.user_function(**kwargs)
        if asyncio.iscoroutine(result):
            result = await result
        logger.info("Executed 'Functions.%s' (%.0f ms)", function.name, (time.monotonic() - began) * 1000)
        return result

    def eventgrid_url(self, function: str) -> str:
        """Where an Event Grid subscription delivers to `function` (the webhook, with the extension's key)."""
        return eventgrid_url(self.base_url, function, self.eventgrid_key)

    def _key_of(self, request: Request) -> str:
        return request.headers.get("x-functions-key") or request.query_params.get("code") or ""

    def _allowed(self, request: Request, level: str) -> bool:
        """Whether the request carries the key `level` needs: anonymous, function (or master), admin (master only)."""
        if level == "anonymous":
            return True
        given = self._key_of(request)
        keys = [self.master_key] if level == "admin" else [self.function_key, self.master_key]
        return any(secrets.compare_digest(given, key) for key in keys)

    def status(self) -> dict[str, Any]:
        """What `/admin/host/status` reports: the functions and the health of each background thread."""
        return {
            "state": "Running",
            "functions": [f.name for f in self.app.all],
            "background": {name: h.to_dict() for name, h in self.health.items()},
            "crosscheck": (
                {"episodes": self.engine.crosscheck.episodes, "mismatches": len(self.engine.crosscheck.mismatches)}
                if self.engine.crosscheck
                else None
            ),
        }

    def _asgi(self) -> FastAPI:
        api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

        @api.exception_handler(StarletteHTTPException)
        async def bare(_: Request, exc: StarletteHTTPException) -> Response:  # as the host: a status, no body
            return Response(status_code=exc.status_code)

        api.include_router(self.management.router("/runtime/webhooks/durabletask", require_key=True))
        api.include_router(self.management.router(f"/durabletask/{self.rpc_secret}", require_key=False))
        api.include_router(eventgrid.router(lambda: self.app.event_grid, self.eventgrid_key, self.invoke))

        @api.get("/admin/host/status")
        async def host_status(request: Request) -> Response:
            if not self._allowed(request, "admin"):
                return Response(status_code=401)
            return Response(json.dumps(self.status()), media_type="application/json")

        @api.get("/openapi.json")
        async def openapi() -> Response:
            return Response(json.dumps(describe_routes(self.app, self.host_config)), media_type="application/json")

        @api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
        async def http_function(path: str, request: Request) -> Response:
            matching = [(route, match) for route in self.routes if (match := route.pattern.match("/" + path))]
            if matching and not any(request.method in route.methods for route, _ in matching):
                return Response(status_code=405)
            for route, match in matching:  # one route may have several functions, by method, as on the host
                if request.method not in route.methods:
                    continue
                if not self._allowed(request, route.auth_level):
                    return Response(status_code=401)
                body = await request.body()
                http_request = func.HttpRequest(
                    method=request.method,
                    url=str(request.url),
                    headers=dict(request.headers),
                    params=dict(request.query_params),
                    route_params={k: v for k, v in match.groupdict().items() if v is not None},
                    body=body,
                )
                try:
                    response = await self.invoke(route.function, http_request)
                except Exception:  # the host answers 500 without details; they go to the log
                    logger.exception("Function '%s' failed", route.function.name)
                    return Response(status_code=500)
                if not isinstance(response, func.HttpResponse):
                    return Response(status_code=204)
                headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
                return Response(
                    response.get_body(), status_code=response.status_code, headers=headers, media_type=response.mimetype
                )
            return Response(status_code=404)

        return api

    # ---- timers ---------------------------------------------------------------------------------

    def _run_timer(self, function: FunctionSpec) -> None:
        schedule = resolve_setting_expression(str(function.trigger["schedule"]), os.environ)
        if function.trigger.get("runOnStartup"):
            with contextlib.suppress(Exception):  # fire() logged it
                self.fire(function, TimerRequest(past_due=False))
        for due in fire_times(schedule, datetime.now(UTC)):
            while not self._stopping.is_set() and datetime.now(UTC) < due:
                self._stopping.wait(min(1.0, (due - datetime.now(UTC)).total_seconds()))
            if self._stopping.is_set():
                return
            late = (datetime.now(UTC) - due).total_seconds() > 60
            status = {"Next": due.isoformat(), "LastUpdated": datetime.now(UTC).isoformat()}  # the host's, pre-fire
            with contextlib.suppress(Exception):  # fire() logged it; the schedule goes on, as in the host
                self.fire(function, TimerRequest(past_due=late, schedule_status=status))

    def fire(self, function: FunctionSpec, trigger_value: Any) -> Any:
        """Invoke a non-HTTP function now (timers, events, tests)."""
        try:
            return self.run_coroutine(self.invoke(function, trigger_value))
        except Exception:
            logger.exception("Function '%s' failed", function.name)
            raise

    # ---- blob arrival ---------------------------------------------------------------------------

    def _blob_service(self) -> BlobServiceClient | None:
        connection = os.environ.get("TrainingStorage")  # noqa: SIM112 - the app's setting name
        return blob_service(connection_string=connection) if connection else None

    def _watch_blobs(self) -> None:
        service = self._blob_service()
        if service is None:
            logger.warning("no TrainingStorage setting: blob arrival is not watched")
            self._stopping.wait()
            return
        baseline = self._baseline(service)
        receipts = service.get_container_client(RECEIPTS_CONTAINER)
        health = self.health["blob-watcher"]
        while not self._stopping.wait(self.blob_poll_s):
            try:
                self.scan_blobs_once(service, receipts, baseline)
                health.last_ok = time.time()
            except AzureError as exc:
                health.last_error = f"storage unavailable ({type(exc).__name__})"
                logger.warning("blob watcher: storage unavailable (%s); retrying", type(exc).__name__)

    def _baseline(self, service: BlobServiceClient) -> datetime:
        """When watching began (kept in storage): like an Event Grid subscription, older blobs never fire."""
        container = service.get_container_client(RECEIPTS_CONTAINER)
        for _ in range(30):
            try:
                with contextlib.suppress(ResourceExistsError):
                    container.create_container()
                marker = container.get_blob_client("baseline")
                with contextlib.suppress(ResourceExistsError):
                    marker.upload_blob(datetime.now(UTC).isoformat().encode(), overwrite=False)
                began = datetime.fromisoformat(marker.download_blob().readall().decode())
                # Storage keeps whole seconds of a blob's last-modified time: a blob written in the
                # second watching began must not be taken for an older one.
                return began.replace(microsecond=0) - timedelta(seconds=1)
            except AzureError:
                time.sleep(1)
        raise RuntimeError("blob watcher: cannot reach the training storage account")

    def scan_blobs_once(self, service: BlobServiceClient, receipts: Any, baseline: datetime) -> int:
        """Deliver a BlobCreated event for each new blob version; a receipt is written once every function took it.

        A function that fails gets the same event again on the next scan, as Event Grid retries a
        failed delivery: the app de-duplicates by the blob's eTag, so a redelivery starts nothing twice.
        """
        fired = 0
        # The app's own bookkeeping (run records, their index, the run queue) never raises events in Azure:
        # the Event Grid subscriptions (infra/events.bicep) cover the pipelines' data containers only.
        records = os.environ.get("RETRAIN_RUN_RECORDS_CONTAINER") or "runrecords"
        for container in service.list_containers():
            if container.name.startswith(("azure-webjobs", "$")) or container.name == records:
                continue
            for blob in service.get_container_client(container.name).list_blobs():
                if blob.last_modified < baseline:
                    continue
                receipt = hashlib.sha256(f"{container.name}/{blob.name}@{blob.etag}".encode()).hexdigest()
                receipt_blob = receipts.get_blob_client(receipt)
                if receipt_blob.exists():
                    continue
                event = self._blob_created_event(service, container.name, blob)
                delivered = True
                for function in self.app.event_grid:
                    try:
                        self.fire(function, event)
                    except Exception:  # logged by fire(); delivered again on the next scan
                        delivered = False
                if not delivered:
                    continue
                with contextlib.suppress(ResourceExistsError):
                    receipt_blob.upload_blob(f"{container.name}/{blob.name}".encode(), overwrite=False)
                fired += 1
        return fired

    @staticmethod
    def _blob_created_event(service: BlobServiceClient, container: str, blob: Any) -> func.EventGridEvent:
        url = f"{service.url.rstrip('/')}/{container}/{quote(blob.name)}"
        data = {
            "api": "PutBlob",
            "contentType": blob.content_settings.content_type,
            "contentLength": blob.size,
            "blobType": "BlockBlob",
            "eTag": str(blob.etag),
            "url": url,
        }
        return func.EventGridEvent(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{url}@{blob.etag}")),
            data=data,
            topic=f"/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/{service.account_name}",
            subject=f"/blobServices/default/containers/{container}/blobs/{blob.name}",
            event_type="Microsoft.Storage.BlobCreated",
            event_time=blob.last_modified,
            data_version="",
        )
