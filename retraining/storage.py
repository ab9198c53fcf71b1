"""Our Blob storage: training data, trained models, run records, and the SAS tokens we hand out.

SAS tokens are scoped to one blob with the fewest permissions the ML service needs (read for an
input or a model, create+write for an output) and expire shortly after the job's timeout. With an
account key they are signed by the key; with a managed identity, by a user delegation key. They
are returned to activity code only and never leave it except towards the ML service.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from .errors import StorageConflictError, StorageError
from .models import BlobPath
from .settings import Settings

if TYPE_CHECKING:  # azure-storage-blob is imported when storage is first used: keeps cold start light
    from azure.storage.blob import BlobServiceClient, UserDelegationKey

logger = logging.getLogger(__name__)

HASH_CHUNK = 4 * 1024 * 1024
# Azure signs a user delegation key for at most 7 days from its start; ours start 5 minutes back.
MAX_DELEGATION = timedelta(days=7) - timedelta(minutes=10)


@dataclass(frozen=True)
class BlobInfo:
    size: int
    etag: str


@dataclass(frozen=True)
class ListedBlob:
    name: str
    etag: str
    metadata: dict[str, str]


def blob_service(
    account_url: str = "", *, connection_string: str | None = None, credential: Any = None
) -> BlobServiceClient:
    """A Blob service client that retries as `storage_retry.QuickRetry` does: every storage client of ours is made here."""
    from azure.storage.blob import BlobServiceClient

    from .storage_retry import QuickRetry

    if connection_string is not None:
        return BlobServiceClient.from_connection_string(connection_string, retry_policy=QuickRetry())
    return BlobServiceClient(account_url, credential=credential, retry_policy=QuickRetry())


class TrainingStorage:
    def __init__(self, service: BlobServiceClient, *, account_key: str | None) -> None:
        self._service = service
        self._account_key = account_key
        self._delegation: tuple[datetime, UserDelegationKey] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingStorage:
        if settings.storage_connection_string:
            try:
                service = blob_service(connection_string=settings.storage_connection_string)
            except ValueError:
                raise StorageError("app setting TrainingStorage is not a valid storage connection string") from None
            key = getattr(service.credential, "account_key", None)
            return cls(service, account_key=key)
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
        return cls(blob_service(settings.storage_account_url or "", credential=credential), account_key=None)

    @property
    def account_url(self) -> str:
        """The blob endpoint, ending in `/` (the BaseLocation the ML services expect)."""
        return self._service.url.rstrip("/") + "/"

    @property
    def account_name(self) -> str:
        return self._service.account_name or ""

    def url_of(self, path: BlobPath) -> str:
        """The blob's URL without any SAS."""
        return self._service.get_blob_client(path.container, path.name).url

    def info(self, path: BlobPath) -> BlobInfo | None:
        try:
            properties = self._service.get_blob_client(path.container, path.name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageError(f"cannot read properties of {path}: {type(exc).__name__}") from None
        return BlobInfo(int(properties.size), str(properties.etag))

    def read_small(self, path: BlobPath, limit: int) -> bytes:
        """Read a blob that must be small (metrics, records); refuse anything larger than `limit`."""
        info = self.info(path)
        if info is None:
            raise StorageError(f"{path} does not exist")
        if info.size > limit:
            raise StorageError(f"{path} is {info.size} bytes, more than the {limit} expected")
        try:
            data: bytes = self._service.get_blob_client(path.container, path.name).download_blob().readall()
        except AzureError as exc:
            raise StorageError(f"cannot read {path}: {type(exc).__name__}") from None
        return data

    def read_head(self, path: BlobPath, limit: int) -> tuple[bytes, bool]:
        """The first `limit` bytes of a blob, and whether that is all of it."""
        info = self.info(path)
        if info is None:
            raise StorageError(f"{path} does not exist")
        if info.size == 0:
            return b"", True
        try:
            data: bytes = (
                self._service.get_blob_client(path.container, path.name).download_blob(offset=0, length=limit).readall()
            )
        except AzureError as exc:
            raise StorageError(f"cannot read {path}: {type(exc).__name__}") from None
        return data, info.size <= limit

    def digest(self, path: BlobPath) -> tuple[int, str]:
        """Size and SHA-256 of a blob, streamed in chunks so memory stays flat."""
        digest, size = hashlib.sha256(), 0
        try:
            stream = self._service.get_blob_client(path.container, path.name).download_blob()
            for chunk in stream.chunks():
                digest.update(chunk)
                size += len(chunk)
        except ResourceNotFoundError:
            raise StorageError(f"{path} does not exist") from None
        except AzureError as exc:
            raise StorageError(f"cannot read {path}: {type(exc).__name__}") from None
        return size, digest.hexdigest()

    def chunks(self, path: BlobPath, size: int = HASH_CHUNK) -> Iterator[bytes]:
        """The blob's bytes in ranged reads of `size` (4 MB), each fetched when the one before was consumed, so memory
        stays flat in the blob's size; all from the version first seen (a blob replaced mid-read is a StorageError)."""
        info = self.info(path)
        if info is None:
            raise StorageError(f"{path} does not exist")
        client = self._service.get_blob_client(path.container, path.name)
        for offset in range(0, info.size, size):
            try:
                data: bytes = client.download_blob(
                    offset=offset,
                    length=min(size, info.size - offset),
                    etag=info.etag,
                    match_condition=MatchConditions.IfNotModified,
                ).readall()
            except ResourceModifiedError:
                raise StorageError(f"{path} changed while it was read") from None
            except ResourceNotFoundError:
                raise StorageError(f"{path} disappeared while it was read") from None
            except AzureError as exc:
                raise StorageError(f"cannot read {path}: {type(exc).__name__}") from None
            yield data

    def read_json(self, path: BlobPath, limit: int = 1024 * 1024) -> Any | None:
        found = self.read_json_with_etag(path, limit)
        return None if found is None else found[0]

    def read_json_with_etag(self, path: BlobPath, limit: int = 1024 * 1024) -> tuple[Any, str] | None:
        """A JSON blob and the ETag it had when read (for a conditional write back); None if absent."""
        client = self._service.get_blob_client(path.container, path.name)
        try:
            downloader = client.download_blob()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageError(f"cannot read {path}: {type(exc).__name__}") from None
        if downloader.size > limit:
            raise StorageError(f"{path} is {downloader.size} bytes, more than the {limit} expected")
        try:
            data = downloader.readall()
        except AzureError as exc:
            raise StorageError(f"cannot read {path}: {type(exc).__name__}") from None
        try:
            return json.loads(data), str(downloader.properties.etag)
        except (ValueError, RecursionError):
            raise StorageError(f"{path} is not valid JSON") from None

    def write_json(
        self,
        path: BlobPath,
        value: Any,
        *,
        overwrite: bool = True,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Write a JSON blob; return its new ETag.

        `overwrite=False` creates only (StorageConflictError if it exists); `if_match` replaces only
        the version read with that ETag (StorageConflictError if someone wrote it meanwhile).
        """
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        options: dict[str, Any] = {"overwrite": overwrite or if_match is not None, "metadata": metadata}
        if if_match is not None:
            options.update(etag=if_match, match_condition=MatchConditions.IfNotModified)
        client = self._service.get_blob_client(path.container, path.name)
        try:
            try:
                result = client.upload_blob(data, **options)
            except ResourceNotFoundError:  # the container does not exist yet
                self.ensure_container(path.container)
                result = client.upload_blob(data, **options)
        except ResourceExistsError:
            raise StorageConflictError(f"{path} already exists and is never overwritten") from None
        except ResourceModifiedError:
            raise StorageConflictError(f"{path} changed since it was read") from None
        except AzureError as exc:
            raise StorageError(f"cannot write {path}: {type(exc).__name__}") from None
        return str(result.get("etag", ""))

    def list(self, container: str, prefix: str) -> list[ListedBlob]:
        """The blobs under `prefix`, with their metadata (one listing call per 5,000 blobs)."""
        try:
            items = self._service.get_container_client(container).list_blobs(
                name_starts_with=prefix, include=["metadata"]
            )
            return [ListedBlob(b.name, str(b.etag), dict(b.metadata or {})) for b in items]
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise StorageError(f"cannot list {container}/{prefix}: {type(exc).__name__}") from None

    def delete(self, path: BlobPath) -> None:
        """Delete a blob; one that is already gone is fine."""
        try:
            self._service.get_blob_client(path.container, path.name).delete_blob()
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise StorageError(f"cannot delete {path}: {type(exc).__name__}") from None

    def ensure_container(self, container: str) -> None:
        try:
            self._service.create_container(container)
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise StorageError(f"cannot create container {container}: {type(exc).__name__}") from None

    def sas(self, path: BlobPath, *, read: bool = False, write: bool = False, lifetime: timedelta) -> str:
        """A SAS token (with leading `?`) for exactly one blob, HTTPS-only when the account is HTTPS."""
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        now = datetime.now(UTC)
        permission = BlobSasPermissions(read=read, write=write, create=write)
        common: dict[str, Any] = {
            "account_name": self.account_name,
            "container_name": path.container,
            "blob_name": path.name,
            "permission": permission,
            "start": now - timedelta(minutes=5),
            "expiry": now + lifetime,
            "protocol": "https" if self.account_url.startswith("https:") else "https,http",
        }
        if self._account_key:
            return "?" + generate_blob_sas(account_key=self._account_key, **common)
        if lifetime > MAX_DELEGATION:
            raise StorageError(
                f"a SAS valid for {lifetime} cannot be signed with a user delegation key "
                f"(Azure allows 7 days): shorten the policy timeout or RETRAIN_SAS_MINUTES_MARGIN"
            )
        return "?" + generate_blob_sas(user_delegation_key=self._user_delegation_key(now, lifetime), **common)

    def _user_delegation_key(self, now: datetime, lifetime: timedelta) -> UserDelegationKey:
        """One key per process, re-issued when it would expire before a new SAS does (never beyond 7 days)."""
        if self._delegation is None or self._delegation[0] < now + lifetime:
            expiry = now + min(max(lifetime, timedelta(hours=6)), MAX_DELEGATION)
            key = self._service.get_user_delegation_key(now - timedelta(minutes=5), expiry)
            self._delegation = (expiry, key)
        return self._delegation[1]
