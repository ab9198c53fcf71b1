"""One Azure ML workspace over its ARM REST API (api-version 2024-04-01), on `requests` and azure-identity.

The credential is made once per process (`retraining.identity`), so its token comes from
azure-identity's cache; HTTP connections are pooled per host (`retraining.http`). Errors keep the
service's status, its code and Azure ML's InnerError code (`JobPropertyImmutable`, `NotFound`, ...),
and a 409 keeps its Retry-After, so callers can wait for a busy endpoint.

Long-running operations (endpoints and deployments): the client follows the `Azure-AsyncOperation`
URL (else `Location`) the service hands back, but only on the management host: our bearer token
never goes to a host the workspace's answer names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from azure.core.credentials import TokenCredential

from ...definitions.azure_ml import Workspace
from ...errors import ConfigError, ResponseFormatError, ServiceError
from ...http import ServiceClient, json_body, retry_after_seconds
from ...identity import managed_identity, service_principal
from ...settings import Settings

if TYPE_CHECKING:
    import requests  # only for annotations: the HTTP client imports it when it first sends (cold start)

API_VERSION = "2024-04-01"
ARM_SCOPE = "https://management.azure.com/.default"
ML_SCOPE = "https://ml.azure.com/.default"  # online AADToken endpoints and batch invocation
TERMINAL = ("succeeded", "failed", "canceled")
REGION_API_SUFFIXES = (".api.azureml.ms", ".api.ml.azure.cn", ".api.ml.azure.us")  # where MLflow and run history live


def credential_of(workspace: Workspace, settings: Settings) -> TokenCredential:
    """A service principal when its secret setting holds a secret; else the managed identity (azure-identity's AZURE_CLIENT_ID rule)."""
    cred = workspace.credential
    secret = settings.optional_secret(cred.client_secret_setting) if cred.client_secret_setting else None
    if secret:
        return service_principal(
            cred.tenant or "", cred.client_id or "", secret, authority=cred.authority_host, ca_bundle=settings.ca_bundle
        )
    return managed_identity(cred.client_id)


@dataclass(frozen=True)
class Operation:
    """Where to follow a long-running operation, and how long the service asked us to wait."""

    url: str | None
    retry_after_s: float | None  # None: the service gave no Retry-After

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "retry_after_s": self.retry_after_s}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Operation | None:
        if not raw:
            return None
        after = raw.get("retry_after_s")
        return cls(raw.get("url"), None if after is None else float(after))


class WorkspaceClient:
    def __init__(self, workspace: Workspace, credential: TokenCredential, http: ServiceClient) -> None:
        self.workspace = workspace
        self._credential = credential
        self._http = http
        self._host = urlsplit(workspace.management_endpoint).netloc.lower()

    # ---- plumbing ---------------------------------------------------------------------------------

    def url(self, *segments: str, query: str = "") -> str:
        path = "".join("/" + quote(s, safe="") for s in segments)
        return (
            f"{self.workspace.management_endpoint}{self.workspace.resource_id}{path}?api-version={API_VERSION}{query}"
        )

    def headers(self, scope: str = ARM_SCOPE) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._credential.get_token(scope).token}",
            "Content-Type": "application/json",
        }

    def token(self, scope: str) -> str:
        return self._credential.get_token(scope).token

    def call(
        self, method: str, url: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204)
    ) -> requests.Response:
        return self._http.request(method, url, headers=self.headers(), json=body, ok=ok)

    def get(self, *segments: str, query: str = "") -> dict[str, Any] | None:
        """A resource, or None when it does not exist."""
        try:
            response = self.call("GET", self.url(*segments, query=query), ok=(200,))
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        return _object(json_body(response, f"GET {'/'.join(segments)}"), "/".join(segments))

    def put(self, segments: tuple[str, ...], body: Mapping[str, Any]) -> tuple[int, dict[str, Any], Operation]:
        response = self.call("PUT", self.url(*segments), dict(body), ok=(200, 201, 202))
        payload = json_body(response, f"PUT {'/'.join(segments)}") if response.content else {}
        return response.status_code, _object(payload, "/".join(segments)), self._operation(response)

    def post(self, *segments: str, body: Any = None) -> requests.Response:
        return self.call("POST", self.url(*segments), body, ok=(200, 202, 204))

    def delete(self, *segments: str) -> Operation | None:
        """Delete a resource; None when it was already gone."""
        try:
            response = self.call("DELETE", self.url(*segments), ok=(200, 202, 204))
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        return self._operation(response)

    def _operation(self, response: requests.Response) -> Operation:
        url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")
        if url and urlsplit(url).netloc.lower() != self._host:
            url = None  # never follow (with our token) a URL off the management host: fall back to reading the resource
        return Operation(url, retry_after_seconds(response.headers.get("Retry-After")))

    def operation_status(self, operation: Operation) -> tuple[str, str | None]:
        """(InProgress | Succeeded | Failed | Canceled, error message) of a long-running operation."""
        assert operation.url is not None
        try:
            response = self._http.request("GET", operation.url, headers=self.headers(), ok=(200, 201, 202, 204))
        except ServiceError as exc:
            if exc.status in (400, 404, 409, 500) and not exc.retry_after_s:
                return "Failed", exc.args[0] if exc.args else str(exc)
            raise
        if response.status_code == 202:
            return "InProgress", None
        body = json_body(response, "operation status") if response.content else {}
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            return "Succeeded", None  # a Location poll answers 200/204 when done
        error = body.get("error") if isinstance(body.get("error"), dict) else None
        message = str(error.get("message"))[:500] if error and error.get("message") else None
        return status, message

    # ---- workspace resources ------------------------------------------------------------------------

    def datastore(self, name: str) -> tuple[str, str]:
        """(blob account URL, container) of a datastore of the workspace."""
        found = self.get("datastores", name)
        if found is None:
            raise ConfigError(f"workspace {self.workspace.resource_id.rsplit('/', 1)[-1]} has no datastore {name!r}")
        props = properties(found, f"datastore {name}")
        account, container = props.get("accountName"), props.get("containerName")
        if (
            props.get("datastoreType") not in (None, "AzureBlob")
            or not isinstance(account, str)
            or not isinstance(container, str)
        ):
            raise ResponseFormatError(f"datastore {name!r} is not a blob container datastore")
        suffix = props.get("endpoint") if isinstance(props.get("endpoint"), str) else "core.windows.net"
        return f"https://{account}.blob.{suffix}", container

    def tracking_host(self) -> str | None:
        """The region API host (MLflow and run history), from the workspace's mlFlowTrackingUri."""
        with _TRACKING_LOCK:
            if self.workspace.resource_id in _TRACKING:
                return _TRACKING[self.workspace.resource_id]
        found = self.get()
        uri = (found or {}).get("properties", {}).get("mlFlowTrackingUri") if found else None
        host = urlsplit(uri).netloc if isinstance(uri, str) and uri.startswith("azureml://") else None
        with _TRACKING_LOCK:
            _TRACKING[self.workspace.resource_id] = host
        return host

    def _region_url(self, path: str) -> str | None:
        """A URL on the region API host, if that host is Azure ML's (or the management host itself, as in the emulator)."""
        host = self.tracking_host()
        if not host or not (host.lower() == self._host or host.lower().endswith(REGION_API_SUFFIXES)):
            return None
        return f"https://{host}{path}"

    def run_metrics(self, job: str) -> dict[str, float]:
        """The job's latest MLflow metrics (the run id is the job name); {} if none can be read."""
        url = self._region_url(
            f"/mlflow/v1.0{self.workspace.resource_id}/api/2.0/mlflow/runs/get?run_id={quote(job, safe='')}"
        )
        if url is None:
            return {}
        try:
            body = json_body(self._http.request("GET", url, headers=self.headers(), ok=(200,)), "MLflow run")
        except (ServiceError, ResponseFormatError):
            return {}
        data = (
            body.get("run", {}).get("data", {}) if isinstance(body, dict) and isinstance(body.get("run"), dict) else {}
        )
        metrics = data.get("metrics") if isinstance(data, dict) else None
        found: dict[str, float] = {}
        for item in metrics if isinstance(metrics, list) else []:
            value = item.get("value") if isinstance(item, dict) else None
            if (
                isinstance(item, dict)
                and isinstance(item.get("key"), str)
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
            ):
                found[item["key"][:100]] = float(value)
        return found

    def run_error(self, job: str) -> str | None:
        """Why a job failed, from run history (the ARM job carries no error); None if it cannot be read."""
        url = self._region_url(f"/history/v1.0{self.workspace.resource_id}/runs/{quote(job, safe='')}/details")
        if url is None:
            return None
        try:
            body = json_body(self._http.request("GET", url, headers=self.headers(), ok=(200,)), "run details")
        except (ServiceError, ResponseFormatError):
            return None
        error = body.get("error") if isinstance(body, dict) else None
        inner = error.get("error") if isinstance(error, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            code = inner.get("code")
            return f"{code}: {inner['message']}"[:500] if isinstance(code, str) else inner["message"][:500]
        return None


_TRACKING: dict[str, str | None] = {}
_TRACKING_LOCK = threading.Lock()


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseFormatError(f"{what}: expected a JSON object")
    return value


def properties(resource: Mapping[str, Any], what: str) -> dict[str, Any]:
    props = resource.get("properties")
    if not isinstance(props, dict):
        raise ResponseFormatError(f"{what}: the answer has no properties")
    return props


FIRST_LOOK_S, MAX_LOOK_S = 0.5, 30.0


def next_look(state: Mapping[str, Any], operation: Operation | None) -> tuple[float, dict[str, Any]]:
    """How long to wait before looking at an operation again: its Retry-After, else a back-off from
    half a second to 30 s (a swap can take a second, a new deployment many minutes); and the new state."""
    look = min(MAX_LOOK_S, float(state.get("look_s", FIRST_LOOK_S / 1.5)) * 1.5)
    wait = operation.retry_after_s if operation is not None and operation.retry_after_s is not None else look
    return wait, {**state, "look_s": look}


def wait_hint(exc: ServiceError, default: float = 5.0) -> float:
    """How long to wait before trying a busy (409) or throttled resource again."""
    return min(max(exc.retry_after_s or default, 1.0), 60.0)


def monotonic_ms(start: float) -> float:
    return (time.monotonic() - start) * 1000.0
