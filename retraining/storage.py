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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, UserDelegationKey, generate_blob_sas

from .errors import StorageError
from .models import BlobPath
from .settings import Settings

logger = logging.getLogger(__name__)

HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class BlobInfo:
    size: int
    etag: str


class TrainingStorage:
    def __init__(self, service: BlobServiceClient, *, account_key: str | None) -> None:
        self._service = service
        self._account_key = account_key
        self._delegation: tuple[datetime, UserDelegationKey] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingStorage:
        retry = {"retry_total": 6, "retry_backoff_factor": 0.5, "retry_backoff_max": 8}
        if settings.storage_connection_string:
            try:
                service = BlobServiceClient.from_connection_string(settings.storage_connection_string, **retry)  # type: ignore[arg-type]
            except ValueError:
                raise StorageError("app setting TrainingStorage is not a valid storage connection string") from None
            key = getattr(service.credential, "account_key", None)
            return cls(service, account_key=key)
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
        return cls(BlobServiceClient(settings.storage_account_url or "", credential=credential, **retry), account_key=None)  # type: ignore[arg-type]

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

    def read_json(self, path: BlobPath, limit: int = 1024 * 1024) -> Any | None:
        if self.info(path) is None:
            return None
        try:
            return json.loads(self.read_small(path, limit))
        except ValueError:
            raise StorageError(f"{path} is not valid JSON") from None

    def write_json(self, path: BlobPath, value: Any, *, overwrite: bool = True) -> None:
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        try:
            self.ensure_container(path.container)
            self._service.get_blob_client(path.container, path.name).upload_blob(data, overwrite=overwrite)
        except ResourceExistsError:
            raise StorageError(f"{path} already exists and is never overwritten") from None
        except AzureError as exc:
            raise StorageError(f"cannot write {path}: {type(exc).__name__}") from None

    def ensure_container(self, container: str) -> None:
        try:
            self._service.create_container(container)
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise StorageError(f"cannot create container {container}: {type(exc).__name__}") from None

    def sas(self, path: BlobPath, *, read: bool = False, write: bool = False, lifetime: timedelta) -> str:
        """A SAS token (with leading `?`) for exactly one blob."""
        now = datetime.now(UTC)
        permission = BlobSasPermissions(read=read, write=write, create=write)
        common: dict[str, Any] = {
            "account_name": self.account_name, "container_name": path.container, "blob_name": path.name,
            "permission": permission, "start": now - timedelta(minutes=5), "expiry": now + lifetime, "protocol": None,
        }
        if self._account_key:
            return "?" + generate_blob_sas(account_key=self._account_key, **common)
        return "?" + generate_blob_sas(user_delegation_key=self._user_delegation_key(now, lifetime), **common)

    def _user_delegation_key(self, now: datetime, lifetime: timedelta) -> UserDelegationKey:
        if self._delegation is None or self._delegation[0] < now + lifetime:
            expiry = now + max(lifetime, timedelta(hours=6))
            key = self._service.get_user_delegation_key(now - timedelta(minutes=5), expiry)
            self._delegation = (expiry, key)
        return self._delegation[1]
