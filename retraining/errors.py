"""Errors raised by the retraining core.

    RetrainingError
    ├── ConfigError               settings or a pipeline definition are invalid (names file and field)
    ├── ServiceError              an ML service answered with an error (HTTP status, error codes)
    │   ├── TransientServiceError     429, 5xx, 503 RequestThrottled: worth retrying
    │   └── AuthenticationError       401/403: a key or a service principal was refused
    ├── ServiceUnreachableError   connection refused or reset, or a timeout: worth retrying
    ├── ResponseFormatError       a service's answer does not match its documented contract
    ├── ForeignLocationError      a result points outside our storage account
    └── StorageError              our own Blob storage failed or is missing something
        └── StorageConflictError      a create-only blob exists, or a blob changed since it was read

Expected outcomes (a job that ends Failed, a candidate the gate rejects, a target that refuses an
update) are not errors: they are typed results in `retraining.models`.

    try:
        client.submit(request)
    except TransientServiceError:
        ...  # retried by the client already; the activity retry policy takes over
    except ServiceError as exc:
        log.error("BES refused: %s %s", exc.status, exc.detail_code)
"""

from __future__ import annotations


class RetrainingError(Exception):
    """Base class of every error the retraining core raises on purpose."""


class ConfigError(RetrainingError):
    """A setting or pipeline definition is missing or invalid; the message names where."""


class ServiceError(RetrainingError):
    """An ML service answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        detail_code: str | None = None,
        service: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail_code = detail_code
        self.service = service
        self.retry_after_s = retry_after_s  # the service's Retry-After, when it sent one (409 busy, 429)

    def __str__(self) -> str:
        codes = "/".join(c for c in (self.code, self.detail_code) if c)
        return f"{self.service or 'service'} answered {self.status}{' ' + codes if codes else ''}: {self.args[0]}"


class TransientServiceError(ServiceError):
    """A service error that may go away on retry (throttling, 5xx)."""


class AuthenticationError(ServiceError):
    """The service refused our credentials."""


class ServiceUnreachableError(RetrainingError):
    """No answer: connection refused, reset, or timed out."""


class ResponseFormatError(RetrainingError):
    """A service answered 2xx with a body that breaks its contract; the message names the field."""


class ForeignLocationError(RetrainingError):
    """A result location is outside the configured storage account or container."""


class StorageError(RetrainingError):
    """Our Blob storage failed, or a blob we need is missing."""


class StorageConflictError(StorageError):
    """A create-only write found the blob already there, or a conditional write lost a race."""
