"""Client for Studio (classic) Batch Execution Service jobs (api-version 2.0).

Accepts the `mlEndpoint` forms seen in the wild: with or without `?api-version=2.0`, on
`/workspaces/` or `/subscriptions/` URLs; and both status forms: names or the numbers 0-4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ...errors import ConfigError, ResponseFormatError, ServiceError
from ...http import ServiceClient, json_body
from ...models import JobState
from ...text import origin

API_VERSION = "2.0"
_NUMERIC_STATES = {
    0: JobState.NOT_STARTED,
    1: JobState.RUNNING,
    2: JobState.FAILED,
    3: JobState.CANCELLED,
    4: JobState.FINISHED,
}
_JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True)
class BesStatus:
    state: JobState
    results: dict[str, dict[str, Any]]
    details: str | None


def jobs_url(ml_endpoint: str) -> str:
    """Normalise an mlEndpoint to `.../jobs` without a query."""
    parts = urlsplit(ml_endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith("/jobs"):
        if not re.search(r"/(workspaces|subscriptions)/[^/]+/services/[^/]+$", path):
            raise ConfigError(f"mlEndpoint {origin(ml_endpoint)}{path} is not a BES jobs URL")
        path += "/jobs"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_state(value: Any) -> JobState:
    if isinstance(value, bool):
        raise ResponseFormatError(f"StatusCode {value!r} is not a job state")
    if isinstance(value, int) and value in _NUMERIC_STATES:
        return _NUMERIC_STATES[value]
    if isinstance(value, str):
        if value.strip().isdigit() and int(value) in _NUMERIC_STATES:
            return _NUMERIC_STATES[int(value)]
        try:
            return JobState(value)
        except ValueError:
            pass
    raise ResponseFormatError(f"StatusCode {str(value)[:40]!r} is not a known job state")


class BatchExecutionClient:
    def __init__(self, ml_endpoint: str, api_key: str, http: ServiceClient) -> None:
        self._jobs = jobs_url(ml_endpoint)
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._http = http

    def _url(self, suffix: str = "") -> str:
        return f"{self._jobs}{suffix}?api-version={API_VERSION}"

    def submit(self, request: dict[str, Any]) -> str:
        """Create (but do not start) a job; return its id."""
        response = self._http.request("POST", self._url(), headers=self._headers, json=request, ok=(200, 201))
        job_id = json_body(response, "submit")
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id.strip('"')):
            raise ResponseFormatError(f"submit answered {str(job_id)[:60]!r}, not a job id")
        return job_id.strip('"')

    def start(self, job_id: str) -> None:
        """Start a submitted job. Starting a job that already runs (a retried start) is not an error."""
        try:
            self._http.request("POST", self._url(f"/{quote(job_id)}/start"), headers=self._headers, ok=(200, 202, 204))
        except ServiceError as exc:
            if exc.detail_code == "CannotStartJob" and self.get_status(job_id).state is not JobState.NOT_STARTED:
                return
            raise

    def get_status(self, job_id: str) -> BesStatus:
        response = self._http.request("GET", self._url(f"/{quote(job_id)}"), headers=self._headers, ok=(200,))
        body = json_body(response, "status")
        if not isinstance(body, dict) or "StatusCode" not in body:
            raise ResponseFormatError("status body has no StatusCode")
        state = parse_state(body["StatusCode"])
        results = body.get("Results") or {}
        if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
            raise ResponseFormatError("status Results is not an object of blob references")
        details = body.get("Details")
        return BesStatus(state, results, details[:2000] if isinstance(details, str) else None)

    def delete(self, job_id: str) -> None:
        """Cancel a job (or forget an ended one); an unknown job is already gone."""
        try:
            self._http.request("DELETE", self._url(f"/{quote(job_id)}"), headers=self._headers, ok=(200, 202, 204))
        except ServiceError as exc:
            if exc.status != 404:
                raise
