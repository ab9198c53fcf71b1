"""What every Studio (classic) route needs: config, state, faults, tokens, and the lookups they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from .. import wire
from ..config import EmulatorConfig, EndpointConfig, WebServiceConfig
from ..faults import FaultRegistry
from ..security import TokenIssuer
from .errors import bad_argument, not_found, unauthorized
from .state import EmulatorState, Job

BES_API_VERSION = "2.0"


@dataclass(frozen=True)
class StudioContext:
    config: EmulatorConfig
    state: EmulatorState
    faults: FaultRegistry
    tokens: TokenIssuer
    http_base: str
    https_base: str
    ca_file: str

    async def read_json(self, request: Request) -> Any:
        return await wire.read_json(request, self.config.max_body_bytes)

    async def inject(self, target: str, op: str) -> None:
        await self.faults.inject(target, op)

    @staticmethod
    def require_api_version(request: Request) -> None:
        version = request.query_params.get("api-version")
        if version != BES_API_VERSION:
            raise bad_argument("BadVersionCall", f"Invalid api-version {version!r}; use api-version=2.0.")

    def resolve_endpoint(
        self, scope_kind: str, scope_id: str, service_id: str, request: Request
    ) -> tuple[WebServiceConfig, EndpointConfig]:
        if scope_kind not in ("workspaces", "subscriptions"):
            raise not_found("ResourceNotFound", "Unknown route.")
        if scope_kind == "workspaces" and scope_id != self.config.workspace_id:
            raise not_found("WorkspaceNotFound", f"Workspace {scope_id!r} was not found.")
        found = self.state.endpoints.get(service_id)
        if found is None:
            raise not_found("WebServiceNotFound", f"Web service {service_id!r} was not found.")
        if wire.bearer(request) not in (found[1].primary_key, found[1].secondary_key):
            raise unauthorized()
        return found

    async def call(
        self, scope_kind: str, scope_id: str, service_id: str, request: Request, op: str
    ) -> tuple[WebServiceConfig, EndpointConfig]:
        """What every BES/RRS call checks first (endpoint and key, api-version), then its fault rules."""
        found = self.resolve_endpoint(scope_kind, scope_id, service_id, request)
        self.require_api_version(request)
        await self.inject(service_id, op)
        return found

    def job_of(self, endpoint: EndpointConfig, job_id: str) -> Job:
        job = self.state.jobs.get(job_id)
        if job is None or job.endpoint.service_id != endpoint.service_id:
            raise not_found("JobNotFound", f"Job {job_id!r} was not found.")
        return job

    def web_service(self, ws: str, ws_id: str) -> WebServiceConfig:
        if ws != self.config.workspace_id:
            raise not_found("WorkspaceNotFound", f"Workspace {ws!r} was not found.")
        for service in self.config.web_services:
            if service.id == ws_id:
                return service
        raise not_found("WebServiceNotFound", f"Web service {ws_id!r} was not found.")

    def endpoints_of(self, service: WebServiceConfig) -> list[EndpointConfig]:
        return [*service.endpoints, *self.state.extra_endpoints.get(service.id, [])]
