"""Blob access shared by the emulated services, through exactly the credentials they were given.

A BlobRef carries either a connection string (account key) or a base location + SAS token, and a
relative location `container/path/file.ext`. Studio (classic) builds them from BES requests; Azure
ML builds them from the storage accounts the workspace may use. Storage failures raise
`StorageError` with a BES-style detail code (BlobNotFound, InvalidBlob, ...); each service renders
that in its own error shape.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobSasPermissions, BlobServiceClient, ContainerClient, generate_blob_sas

MAX_BLOB_BYTES = 2 * 1024 * 1024 * 1024
SAS_LIFETIME = dt.timedelta(hours=24)
# The SDK waits `initial_backoff + increment_base ** n` seconds before retry n (18 s before the first
# by default). A pooled connection storage has just closed fails at once, and a storage restart lasts
# seconds: retry after 2, 4, 8 and 16 s (±0.5 s), 30 s in all.
RETRY: dict[str, Any] = {"retry_total": 4, "initial_backoff": 0, "increment_base": 2, "random_jitter_range": 0.5}

_sas_lock = threading.Lock()
_last_sas_expiry: dict[str, dt.datetime] = {}


class StorageError(Exception):
    """Storage refused or could not serve a blob; `code` is the BES detail code, `status` 400 or 413."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class BlobRef:
    connection_string: str | None
    relative_location: str
    base_location: str | None
    sas_blob_token: str | None

    @property
    def container(self) -> str:
        return self.relative_location.split("/", 1)[0]

    @property
    def blob_name(self) -> str:
        return self.relative_location.split("/", 1)[1]

    @property
    def extension(self) -> str:
        name = self.relative_location.rsplit("/", 1)[-1]
        return "." + name.rsplit(".", 1)[1].lower() if "." in name else ""

    def client(self) -> BlobClient:
        try:
            if self.connection_string:
                return BlobClient.from_connection_string(
                    self.connection_string, self.container, self.blob_name, **RETRY
                )
            base = (self.base_location or "").rstrip("/") + "/"
            token = (self.sas_blob_token or "").lstrip("?")
            return BlobClient.from_blob_url(f"{base}{self.relative_location}?{token}", **RETRY)
        except (ValueError, AzureError) as exc:
            raise StorageError("InvalidBlobConnectionString", f"Invalid blob reference: {exc}") from None


@contextmanager
def storage_errors(ref: BlobRef, where: str, action: str) -> Iterator[None]:
    """Map storage failures to StorageError (BlobNotFound, InvalidBlob)."""
    try:
        yield
    except ResourceNotFoundError:
        raise StorageError("BlobNotFound", f"{where}: blob {ref.relative_location!r} was not found.") from None
    except HttpResponseError as exc:
        raise _refused(exc, where, ref, action) from None
    except AzureError as exc:
        raise StorageError("InvalidBlob", f"{where}: storage unreachable ({type(exc).__name__}).") from None


def read_blob(ref: BlobRef, where: str) -> bytes:
    """Download a blob of at most MAX_BLOB_BYTES."""
    client = ref.client()
    with storage_errors(ref, where, "read"):
        if client.get_blob_properties().size > MAX_BLOB_BYTES:
            raise StorageError("BlobTooLarge", f"{where} is larger than {MAX_BLOB_BYTES} bytes.", 413)
        data: bytes = client.download_blob().readall()
    return data


def stream_sample(ref: BlobRef, where: str, sample_bytes: int) -> bytes:
    """Read the whole blob in chunks (as a service would) and keep its first whole lines up to `sample_bytes`."""
    client = ref.client()
    kept = bytearray()
    with storage_errors(ref, where, "read"):
        for chunk in client.download_blob(max_concurrency=2).chunks():
            if len(kept) < sample_bytes:
                kept += chunk[: sample_bytes - len(kept)]
    return bytes(kept[: kept.rfind(b"\n") + 1])


def write_blob(ref: BlobRef, data: bytes, where: str) -> None:
    client = ref.client()
    with storage_errors(ref, where, "write"):
        client.upload_blob(data, overwrite=True)


def list_blobs(ref: BlobRef, where: str) -> list[str]:
    """Names (without the container) of the blobs whose names start with the ref's path, sorted."""
    if not ref.connection_string:
        raise StorageError("InvalidBlob", f"{where}: listing needs the account key.")
    client = ContainerClient.from_connection_string(ref.connection_string, ref.container, **RETRY)
    with storage_errors(ref, where, "list"):
        return sorted(blob.name for blob in client.list_blobs(name_starts_with=ref.blob_name))


def ensure_container(connection_string: str, container: str) -> None:
    """Create the container unless it exists (a datastore's container is created on first use)."""
    ref = BlobRef(connection_string, f"{container}/", None, None)
    client = BlobServiceClient.from_connection_string(connection_string, **RETRY)
    with storage_errors(ref, container, "create"), suppress(ResourceExistsError):
        client.create_container(container)


def _refused(exc: HttpResponseError, where: str, ref: BlobRef, action: str) -> StorageError:
    if isinstance(exc, ClientAuthenticationError) or exc.status_code in (401, 403):
        return StorageError(
            "InvalidBlob", f"{where}: {action} of {ref.relative_location!r} was denied (bad or expired SAS?)."
        )
    return StorageError("InvalidBlob", f"{where}: storage refused the {action} ({exc.status_code}).")


def result_reference(ref: BlobRef) -> dict[str, Any]:
    """The Results entry for an output: a SAS location, minted fresh when we hold the account key."""
    if ref.connection_string:
        service = BlobServiceClient.from_connection_string(ref.connection_string)
        key = service.credential.account_key if service.credential else None
        if key:
            now = dt.datetime.now(dt.UTC)
            sas = generate_blob_sas(
                account_name=service.account_name or "",
                container_name=ref.container,
                blob_name=ref.blob_name,
                account_key=key,
                permission=BlobSasPermissions(read=True),
                expiry=_fresh_expiry(f"{service.url}{ref.relative_location}", now),
                start=now - dt.timedelta(minutes=5),
            )
            return {
                "ConnectionString": None,
                "RelativeLocation": ref.relative_location,
                "BaseLocation": service.url.rstrip("/") + "/",
                "SasBlobToken": "?" + sas,
            }
    # A SAS-given output: the emulator has no key to mint a new token, so it echoes the caller's.
    return {
        "ConnectionString": None,
        "RelativeLocation": ref.relative_location,
        "BaseLocation": ref.base_location,
        "SasBlobToken": ref.sas_blob_token,
    }


def _fresh_expiry(blob_url: str, now: dt.datetime) -> dt.datetime:
    """About 24 hours from now, but always a later second than the blob's previous SAS.

    SAS times have one-second resolution, so two mints within a second would otherwise be the
    same token; each status GET must mint a token of its own.
    """
    expiry = (now + SAS_LIFETIME).replace(microsecond=0)
    with _sas_lock:
        previous = _last_sas_expiry.get(blob_url)
        if previous is not None and expiry <= previous:
            expiry = previous + dt.timedelta(seconds=1)
        _last_sas_expiry[blob_url] = expiry
    return expiry
