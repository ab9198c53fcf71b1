"""Where Azure ML URIs point, and the workspace identity's access to them.

The workspace reaches storage as its managed identity would: only the accounts the emulator was
given (`--storage-connection-string`), with their keys; jobs carry no credentials. URI forms:

- `azureml://datastores/{ds}/paths/{p}`, and the long form
  `azureml://subscriptions/{s}/resourcegroups/{rg}/workspaces/{ws}/datastores/{ds}/paths/{p}`;
- `http(s)://{account blob endpoint}/{container}/{p}` for a configured account (a SAS in the query
  is ignored: the identity needs none);
- `azureml://jobs/{job}/outputs/{out}/paths/{p}`, resolved through the finished job's output.

A path ending in `/` names a folder. A datastore's container is created on first write.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from azure.storage.blob import BlobServiceClient

from ..blobs import BlobRef, StorageError, ensure_container, list_blobs, read_blob, write_blob
from .config import WorkspaceConfig

_SHORT = re.compile(r"^azureml://datastores/([^/]+)/paths/(.*)$", re.IGNORECASE)
_LONG = re.compile(
    r"^azureml://subscriptions/([^/]+)/resourcegroups/([^/]+)/(?:providers/microsoft\.machinelearningservices/)?"
    r"workspaces/([^/]+)/datastores/([^/]+)/paths/(.*)$",
    re.IGNORECASE,
)
_JOB = re.compile(r"^azureml://jobs/([^/]+)/outputs/([^/]+)(?:/paths/(.*))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Uri:
    """A parsed data URI: exactly one of (datastore, path), (url) or (job, output, path) is set."""

    text: str
    datastore: str | None = None
    path: str = ""
    url: str | None = None
    job: str | None = None
    output: str | None = None
    workspace: tuple[str, str, str] | None = None  # (subscription, resource group, workspace) of a long form


def parse_uri(text: str) -> Uri:
    """Parse a URI of the supported forms; ValueError (naming the form expected) otherwise."""
    if m := _SHORT.match(text):
        return Uri(text, datastore=m[1], path=m[2])
    if m := _LONG.match(text):
        return Uri(text, datastore=m[4], path=m[5], workspace=(m[1], m[2], m[3]))
    if m := _JOB.match(text):
        return Uri(text, job=m[1], output=m[2], path=m[3] or "")
    if text.lower().startswith(("http://", "https://")) and urlsplit(text).netloc:
        return Uri(text, url=text.split("?", 1)[0])
    if text.startswith("azureml:") and not text.startswith("azureml://"):
        raise ValueError(
            f"{text!r} names a data asset; this emulator supports datastore, job-output and blob URIs only"
        )
    raise ValueError(f"{text!r} is not an azureml://datastores/..., azureml://jobs/... or http(s) blob URI")


@dataclass(frozen=True)
class Location:
    """A blob, or a folder when `path` is empty or ends with '/', in one account's container."""

    connection_string: str
    container: str
    path: str

    @property
    def is_folder(self) -> bool:
        return self.path == "" or self.path.endswith("/")

    def child(self, name: str) -> Location:
        base = self.path if self.is_folder else self.path + "/"
        return Location(self.connection_string, self.container, base + name)

    def ref(self, path: str | None = None) -> BlobRef:
        return BlobRef(self.connection_string, f"{self.container}/{self.path if path is None else path}", None, None)


@dataclass(frozen=True)
class Account:
    name: str
    connection_string: str
    url: str  # blob endpoint, no trailing slash


class Storage:
    """The storage accounts every workspace's identity may use."""

    def __init__(self, connection_strings: tuple[str, ...]) -> None:
        self.accounts: list[Account] = []
        for cs in connection_strings:
            client = BlobServiceClient.from_connection_string(cs)
            self.accounts.append(Account(client.account_name or "", cs, client.url.rstrip("/")))
        self._containers: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def account_for(self, name: str | None) -> Account | None:
        if name is None:
            return self.accounts[0] if self.accounts else None
        return next((a for a in self.accounts if a.name == name), None)

    def datastore(self, ws: WorkspaceConfig, name: str) -> Location:
        store = next((d for d in ws.datastores if d.name == name), None)
        if store is None:
            raise StorageError("DatastoreNotFound", f"Datastore {name!r} was not found in workspace {ws.name}.")
        account = self.account_for(store.account)
        if account is None:
            raise StorageError(
                "StorageNotConfigured",
                f"Datastore {name!r}: the emulator was started without its storage "
                "account (--storage-connection-string).",
            )
        return Location(account.connection_string, store.container, "")

    def locate(self, ws: WorkspaceConfig, uri: Uri, job_output: Callable[[str, str], str | None]) -> Location:
        """The blob location a URI names, as the workspace identity reaches it."""
        if uri.datastore is not None:
            if uri.workspace and (uri.workspace[0].lower(), uri.workspace[1].lower(), uri.workspace[2].lower()) != (
                ws.subscription_id.lower(),
                ws.resource_group.lower(),
                ws.name.lower(),
            ):
                raise StorageError(
                    "AuthorizationFailure", f"{uri.text}: another workspace's datastore is out of reach."
                )
            root = self.datastore(ws, uri.datastore)
            return Location(root.connection_string, root.container, uri.path.lstrip("/"))
        if uri.job is not None:
            target = job_output(uri.job, uri.output or "")
            if target is None:
                raise StorageError(
                    "BlobNotFound", f"{uri.text}: job {uri.job!r} has no finished output {uri.output!r}."
                )
            base = self.locate(ws, parse_uri(target), job_output)
            return base.child(uri.path) if uri.path else base
        url = uri.url or ""
        for account in self.accounts:
            if url.lower().startswith(account.url.lower() + "/"):
                rest = url[len(account.url) + 1 :]
                container, _, path = rest.partition("/")
                return Location(account.connection_string, container, path)
        raise StorageError(
            "AuthorizationFailure", f"{url}: the workspace identity has no access to that storage account."
        )

    # ---- bytes ----------------------------------------------------------------------------------

    def read(self, location: Location, where: str) -> bytes:
        return read_blob(location.ref(), where)

    def list(self, folder: Location, where: str) -> list[str]:
        """Blob names (relative to the folder) under a folder location."""
        prefix = folder.path if folder.is_folder else folder.path + "/"
        names = list_blobs(folder.ref(prefix), where)
        return [name[len(prefix) :] for name in names]

    def write(self, location: Location, data: bytes, where: str) -> None:
        key = (location.connection_string, location.container)
        if key not in self._containers:
            ensure_container(*key)
            with self._lock:
                self._containers.add(key)
        write_blob(location.ref(), data, where)
