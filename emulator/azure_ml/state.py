"""All Azure ML state of one emulator process: workspaces, operations, settings, counters, faults.

Route handlers and scheduled work share it under one re-entrant lock. Durations, the routing seed
and the page size start from the config and can be changed at run time through
`POST /_emulator/azure-ml/settings` (and restored with `DELETE`).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from ..faults import FaultRegistry, matches
from ..security import TokenIssuer
from .config import API_VERSION, AzureMlConfig, Timings
from .events import EventGrid
from .resources import (
    Audit,
    DeploymentFault,
    Endpoint,
    EventFault,
    Job,
    JobFault,
    Operation,
    Workspace,
)
from .scheduler import Scheduler
from .storage import Storage

ASYNC_TIMEOUT = "PT1H"


class AzureMlState:
    def __init__(
        self, config: AzureMlConfig, faults: FaultRegistry, tokens: TokenIssuer, base: str, max_body_bytes: int
    ) -> None:
        self.config = config
        self.faults = faults
        self.tokens = tokens
        self.base = base  # the TLS base standing in for management.azure.com and the data planes
        self.max_body_bytes = max_body_bytes
        self.lock = threading.RLock()
        self.timings: Timings = config.timings
        self.routing_seed: int | None = config.routing_seed
        self.page_size = config.page_size
        self.storage = Storage(config.storage_connection_strings)
        self.scheduler = Scheduler("aml", workers=8)
        self.workspaces = {w.name.lower(): Workspace(w) for w in config.workspaces}
        self.operations: dict[str, Operation] = {}
        self.counters: dict[str, int] = {}
        self.job_faults: list[JobFault] = []
        self.deployment_faults: list[DeploymentFault] = []
        self.event_faults: list[EventFault] = []
        faults.register("aml_job", JobFault, self.job_faults)
        faults.register("aml_deployment", DeploymentFault, self.deployment_faults)
        faults.register("aml_events", EventFault, self.event_faults)
        self.events = EventGrid(
            self.count,
            lambda wanted: faults.take_from(self.event_faults, wanted),
            lambda: (self.timings.event_delay_s, self.timings.event_retry_s, config.event_max_attempts),
        )
        self._rngs: dict[str, random.Random] = {}
        self.model_order = itertools.count(1)
        for ws in self.workspaces.values():
            system = Audit(created_by="emulator-config")
            for online in ws.cfg.online_endpoints:
                ws.online[online.name.lower()] = Endpoint(
                    online.name,
                    False,
                    ws.cfg.location,
                    {},
                    {"type": "SystemAssigned"},
                    online.auth_mode,
                    "",
                    {},
                    system,
                    state="Succeeded",
                )
            for name in ws.cfg.batch_endpoints:
                ws.batch[name.lower()] = Endpoint(
                    name,
                    True,
                    ws.cfg.location,
                    {},
                    {"type": "SystemAssigned"},
                    "AADToken",
                    "",
                    {},
                    system,
                    state="Succeeded",
                )
            for url in ws.cfg.event_webhooks:
                self.events.subscribe(ws.cfg.name, ws.cfg.resource_id, url, None, handshake_now=False)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    # ---- settings -------------------------------------------------------------------------------

    def update_settings(self, timings: Timings, routing_seed: int | None | str, page_size: int | None) -> None:
        """Apply validated settings (`routing_seed="keep"` leaves the seed alone); resets routing generators."""
        with self.lock:
            self.timings = timings
            if routing_seed != "keep":
                self.routing_seed = routing_seed if isinstance(routing_seed, int) else None
            if page_size is not None:
                self.page_size = page_size
            self._rngs.clear()

    def reset_settings(self) -> None:
        with self.lock:
            self.timings, self.routing_seed, self.page_size = (
                self.config.timings,
                self.config.routing_seed,
                self.config.page_size,
            )
            self._rngs.clear()

    def settings_body(self) -> dict[str, Any]:
        with self.lock:
            return {
                "timings": {f.name: getattr(self.timings, f.name) for f in fields(Timings)},
                "routingSeed": self.routing_seed,
                "pageSize": self.page_size,
            }

    def rng(self, key: str) -> random.Random:
        """The routing generator of one endpoint: reproducible per endpoint under a seed."""
        with self.lock:
            if key not in self._rngs:
                self._rngs[key] = (
                    random.Random(f"{self.routing_seed}:{key}") if self.routing_seed is not None else random.Random()
                )
            return self._rngs[key]

    # ---- lookups and URLs -----------------------------------------------------------------------

    def workspace_named(self, name: str) -> Workspace | None:
        return self.workspaces.get(name.lower())

    def endpoint_at(self, region: str, name: str, batch: bool) -> tuple[Workspace, Endpoint] | None:
        """The endpoint a scoring host name (`{name}.{region}`) stands for."""
        for ws in self.workspaces.values():
            found = ws.endpoints(batch).get(name.lower())
            if found is not None and found.location.lower() == region.lower():
                return ws, found
        return None

    def name_taken(self, region: str, name: str) -> bool:
        return any(self.endpoint_at(region, name, batch) for batch in (False, True))

    def scoring_uri(self, endpoint: Endpoint) -> str:
        return f"{self.base}/inference/{endpoint.location}/{endpoint.name}/{'jobs' if endpoint.batch else 'score'}"

    def mlflow_uri(self, ws: Workspace) -> str:
        return f"azureml://{self.base.split('://', 1)[1]}/mlflow/v1.0{ws.cfg.resource_id}"

    def job_output_uri(self, ws: Workspace) -> Callable[[str, str], str | None]:
        """For `azureml://jobs/{job}/outputs/{out}`: the finished job's output URI, if any."""

        def lookup(job_name: str, output: str) -> str | None:
            job = ws.jobs.get(job_name)
            if job is None or job.status != "Completed":
                return None
            uri = job.outputs.get(output, {}).get("uri")
            return uri if isinstance(uri, str) else None

        return lookup

    # ---- long-running operations ----------------------------------------------------------------

    def start_operation(self, ws: Workspace, kind: str, done_status: int = 200) -> Operation:
        op = Operation(
            f"{kind}:{uuid.uuid4()}:{uuid.uuid4()}", ws.cfg.name, ws.cfg.location, ws.cfg.subscription_id, done_status
        )
        with self.lock:
            self.operations[op.id] = op
        return op

    def finish_operation(self, op: Operation, error: dict[str, str] | None = None) -> None:
        with self.lock:
            op.status, op.error, op.ended = ("Failed" if error else "Succeeded"), error, time.time()

    def _operation_url(self, op: Operation, kind: str) -> str:
        return (
            f"{self.base}/subscriptions/{op.subscription}/providers/Microsoft.MachineLearningServices/locations/"
            f"{op.location}/{kind}/{op.id}?api-version={API_VERSION}"
        )

    def async_headers(self, op: Operation) -> dict[str, str]:
        """Headers of a PUT that started an operation; `Retry-After` as ARM's async-operation protocol allows
        on the initial answer (see `lro`), so pollers wait `retry_after_s` rather than their own default."""
        return {
            "Azure-AsyncOperation": self._operation_url(op, "mfeOperationsStatus"),
            "Retry-After": str(self.timings.retry_after_s),
            "x-ms-async-operation-timeout": ASYNC_TIMEOUT,
        }

    def location_headers(self, op: Operation) -> dict[str, str]:
        return {
            "Location": self._operation_url(op, "mfeOperationResults"),
            "Retry-After": str(self.timings.retry_after_s),
            "x-ms-async-operation-timeout": ASYNC_TIMEOUT,
        }

    # ---- faults and events ----------------------------------------------------------------------

    def take_job_fault(self, ws: Workspace, job: Job) -> JobFault | None:
        return self.faults.take_from(
            self.job_faults, lambda f: matches(f.workspace, ws.cfg.name) and matches(f.job, job.name)
        )

    def take_deployment_fault(self, ws: Workspace, endpoint: str, deployment: str) -> DeploymentFault | None:
        return self.faults.take_from(
            self.deployment_faults,
            lambda f: (
                matches(f.workspace, ws.cfg.name)
                and matches(f.endpoint.lower(), endpoint.lower())
                and matches(f.deployment, deployment)
            ),
        )

    def publish(self, ws: Workspace, event: str, subject: str, data: dict[str, Any]) -> None:
        self.events.publish(
            ws.cfg.name, ws.cfg.resource_id, f"Microsoft.MachineLearningServices.{event}", subject, data
        )
