"""One HTTP path to the ML services: timeouts, retries for transient failures, typed errors.

Transient means 408, 429, 5xx (Studio throttles with 503 RequestThrottled), connection refused or
reset, and timeouts. `Retry-After` is honoured up to `max_retry_after_s`. Anything else becomes a
`ServiceError` carrying the HTTP status and the service's error codes. URLs are shown (logs,
errors) as `scheme://host[:port]` only (`text.origin`), and neither headers nor bodies are ever logged.

A client may carry a deadline: no request is sent after it, and each request's timeout is cut to
the time left, so whatever a caller reports at its deadline is final. Connections are pooled in
one `requests.Session` per service host and process, reused by every activity call. Each session
reads the environment's proxy and CA-bundle variables once, when it is made, not on every request
(which scans every app setting, and netrc, each time).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import (
    AuthenticationError,
    ResponseFormatError,
    ServiceError,
    ServiceUnreachableError,
    TransientServiceError,
)
from .retry import HTTP_RETRY, QUICK_FIRST_S, Retry
from .text import origin

if TYPE_CHECKING:  # requests is imported when the first request is made: keeps cold start light
    import requests

logger = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_ERROR_BODY = 64 * 1024


_SESSIONS: dict[str, requests.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def shared_session(url: str) -> requests.Session:
    """The process's pooled session for the host of `url` (thread-safe for our use: no cookies, no auth state)."""
    import requests

    parts = urlsplit(url)
    key = f"{parts.scheme}://{parts.netloc.lower()}"
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            session = _SESSIONS[key] = requests.Session()
            session.trust_env = False
            session.proxies = requests.utils.get_environ_proxies(url)  # HTTP(S)_PROXY, honouring NO_PROXY
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        return session


class DeadlinePassedError(ServiceUnreachableError):
    """The caller's deadline passed before a request could be sent (nothing was sent)."""


class ServiceClient:
    """`requests` with the retry and error policy above, on pooled sessions."""

    def __init__(
        self,
        service: str,
        *,
        timeout_s: float = 30.0,
        verify: str | bool = True,
        retry: Retry = HTTP_RETRY,
        max_retry_after_s: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
    ) -> None:
        self.service = service
        self.timeout_s = timeout_s
        self.verify = verify
        self.policy = retry
        self.max_retry_after_s = max_retry_after_s
        self._session = session
        self.sleep = sleep
        self.deadline = deadline  # time.monotonic() value after which nothing is sent
        self.retries = 0  # transient failures absorbed, for diagnostics and benchmarks

    def _timeout(self, method: str, url: str) -> float:
        if self.deadline is None:
            return self.timeout_s
        left = self.deadline - time.monotonic()
        if left <= 0.05:
            raise DeadlinePassedError(f"{self.service}: the deadline passed before {method} {origin(url)} was sent")
        return min(self.timeout_s, left)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        ok: Iterable[int] = (200, 201, 202, 204),
        retry: bool = True,
    ) -> requests.Response:
        import requests

        accepted = set(ok)
        attempts = self.policy.attempts if retry else 1
        session = self._session or shared_session(url)
        for attempt in range(1, attempts + 1):
            delay = self.policy.delay_s(attempt)
            timeout = self._timeout(method, url)
            try:
                response = session.request(
                    method,
                    url,
                    headers=headers,
                    json=json,
                    timeout=timeout,
                    verify=None if self.verify is True else self.verify,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                failure: Exception = ServiceUnreachableError(
                    f"{self.service}: {method} {origin(url)} got no answer ({type(exc).__name__})"
                )
                if attempt == 1:  # likeliest a pooled connection the server closed as it was reused: retry at once
                    delay = min(delay, QUICK_FIRST_S)
            else:
                if response.status_code in accepted:
                    return response
                failure = error_from_response(response, self.service)
                if not isinstance(failure, TransientServiceError):
                    raise failure
                delay = max(delay, self._retry_after(response))
            if attempt == attempts or (self.deadline is not None and time.monotonic() + delay >= self.deadline):
                raise failure
            self.retries += 1
            logger.warning(
                "%s: %s %s failed (%s); retry %d/%d in %.1fs",
                self.service,
                method,
                origin(url),
                failure,
                attempt,
                attempts - 1,
                delay,
            )
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _retry_after(self, response: requests.Response) -> float:
        return min(retry_after_seconds(response.headers.get("Retry-After")) or 0.0, self.max_retry_after_s)


MAX_RESPONSE_BYTES = 1024 * 1024


def json_body(response: requests.Response, what: str) -> Any:
    """A service's JSON answer, or ResponseFormatError: never a crash on hostile bodies."""
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise ResponseFormatError(f"{what} answered {len(response.content)} bytes; expected a small JSON document")
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):  # deeply nested JSON exhausts the parser's recursion
        raise ResponseFormatError(f"{what} answered with a body that is not JSON") from None


def error_from_response(response: requests.Response, service: str) -> ServiceError:
    """Build a typed error from a Studio, ARM or Azure AD error body (or from no body at all)."""
    code = detail_code = None
    message = response.reason or "error"
    body: Any = None
    if len(response.content) <= MAX_ERROR_BODY:
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = _text(error.get("code"))
        message = _text(error.get("message")) or message
        details = error.get("details")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            detail_code = _text(details[0].get("code"))
            detail_message = _text(details[0].get("message"))
            if detail_message:
                message = f"{message} {detail_message}"
        if detail_code is None:
            detail_code = _inner_code(error.get("additionalInfo"))
    elif isinstance(body, dict) and isinstance(body.get("error"), str):  # Azure AD
        code = body["error"]
        message = _text(body.get("error_description")) or message
    status = response.status_code
    kind: type[ServiceError] = ServiceError
    if status in TRANSIENT_STATUSES:
        kind = TransientServiceError
    elif status in (401, 403):
        kind = AuthenticationError
    return kind(
        message[:500],
        status=status,
        code=code,
        detail_code=detail_code,
        service=service,
        retry_after_s=retry_after_seconds(response.headers.get("Retry-After")),
    )


def _inner_code(additional: Any) -> str | None:
    """Azure ML's useful code: `additionalInfo[type=InnerError].info.code` (`NotFound`, `Immutable`, ...)."""
    if not isinstance(additional, list):
        return None
    for item in additional:
        if isinstance(item, dict) and item.get("type") == "InnerError" and isinstance(item.get("info"), dict):
            return _text(item["info"].get("code"))
    return None


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value[:500] if isinstance(value, str) else None
