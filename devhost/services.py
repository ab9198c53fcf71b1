"""Start the local stand-ins on free ports: Azurite (npm) for Blob storage, and the ML services emulator.

Used by devhost's CLI, the demo, the tests' session fixtures and the benchmarks. Each start waits
until the service answers and raises `ServiceStartError` with the service's own output if it cannot.

Children never outlive their parent: each runs in its own process group (stopped as a group) and
gets SIGTERM from the kernel when the parent dies, however it dies, even by SIGKILL (Linux's
parent-death signal). A data folder is locked while an Azurite uses it, so a second start on the
same folder fails instead of splitting the state between two Azurites.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret). `random_storage_key()` makes another.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def random_storage_key() -> str:
    """A fresh account key, in the shape of a real one (64 bytes, base64)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


class ServiceStartError(RuntimeError):
    """A local service did not come up; the message includes what it printed."""


def spawn(command: list[str], **options: Any) -> subprocess.Popen[Any]:
    """Start a supervised child: its own process group, and the kernel stops it when we die (devhost.guard)."""
    guarded = [sys.executable, "-m", "devhost.guard", str(os.getpid()), *command]
    environment = dict(options.pop("env", None) or os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), environment.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(guarded, start_new_session=True, env=environment, **options)


class FolderLock:
    """An exclusive lock on a data folder for as long as this process holds it."""

    def __init__(self, folder: Path, what: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / ".in-use.lock"
        self._file = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise ServiceStartError(
                f"{folder} is in use by {holder}: stop it before starting {what} on the same folder"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"process {os.getpid()}")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def private_log(path: Path) -> IO[bytes]:
    """A child's log, opened for appending and readable by this user only: a host prints its keys at start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    path.chmod(0o600)
    return handle


def eventgrid_url(base_url: str, function: str, key: str) -> str:
    """Where an Event Grid subscription delivers to `function` on a host (the webhook, with the extension's key)."""
    return f"{base_url}/runtime/webhooks/eventgrid?functionName={quote(function)}&code={key}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[Any], log: Path, timeout_s: float, name: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(f"{name} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise ServiceStartError(f"{name} did not listen on {port} within {timeout_s}s:\n{log.read_text()[-4000:]}")


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[Any]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)
    lock: FolderLock | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log:
            self._log.close()
        if self.lock:
            self.lock.release()


@dataclass
class Azurite(ManagedProcess):
    port: int = 0
    location: Path = Path()
    key: str = AZURITE_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={self.key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def restart(self) -> None:
        """Stop and start again on the same port with the same data (for storage-restart faults)."""
        self.stop()
        fresh = start_azurite(self.location, port=self.port, key=self.key)
        self.process, self._log, self.lock = fresh.process, fresh._log, fresh.lock


def azurite_binary() -> Path:
    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise ServiceStartError(f"{binary} is missing: run `npm install` (make does this) to install Azurite")
    return binary


def start_azurite(
    location: Path | None = None, *, port: int | None = None, key: str = AZURITE_KEY, timeout_s: float = 30
) -> Azurite:
    """Start Azurite's blob service (telemetry off) with data under `location`; its one account's key is `key`."""
    location = location or Path(tempfile.mkdtemp(prefix="azurite-"))
    lock = FolderLock(location, "Azurite")
    port = port or free_port()
    log_path = location / "azurite.log"
    log = private_log(log_path)
    command = [
        str(azurite_binary()),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
    ]
    try:
        process = spawn(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{key}"},
        )
        _wait_for_port(port, process, log_path, timeout_s, "Azurite")
    except BaseException:
        log.close()
        lock.release()
        raise
    return Azurite("azurite", process, log_path, log, lock, port=port, location=location, key=key)


@dataclass
class Emulator(ManagedProcess):
    http_base: str = ""
    https_base: str = ""
    ca_file: str = ""

    def services(self) -> dict[str, Any]:
        import requests

        response = requests.get(f"{self.http_base}/_emulator/services", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def start_emulator(
    state_dir: Path,
    *,
    config: Path | None = None,
    fresh_secrets: bool = False,
    timeout_s: float = 60,
    storage_connection_string: str | tuple[str, ...] | None = None,
) -> Emulator:
    """Start `python -m emulator` and wait for its ready line (`fresh_secrets`: random keys, see `Emulator.services`).

    `storage_connection_string` is the storage account Azure ML workspaces use (Azurite's, locally),
    or several: the first holds the datastores, the others are reachable by URL too.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "emulator.log"
    command = [sys.executable, "-m", "emulator", "--state-dir", str(state_dir)]
    if config:
        command += ["--config", str(config)]
    if fresh_secrets:
        command.append("--fresh-secrets")
    for connection_string in (
        (storage_connection_string,) if isinstance(storage_connection_string, str) else storage_connection_string or ()
    ):
        command += ["--storage-connection-string", connection_string]
    log = private_log(log_path)
    process = spawn(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line or process.poll() is not None:
            break
    if not line:
        process.kill()
        raise ServiceStartError(f"emulator did not start:\n{log_path.read_text()[-4000:]}")
    ready = json.loads(line)
    return Emulator(
        "emulator", process, log_path, log, http_base=ready["http"], https_base=ready["https"], ca_file=ready["caFile"]
    )


@dataclass
class HostProcess(ManagedProcess):
    """devhost in a process of its own (`retrain serve --settings`), so that it can be killed as a host dies."""

    base_url: str = ""
    function_key: str = ""
    eventgrid_key: str = ""

    def eventgrid_url(self, function: str) -> str:
        return eventgrid_url(self.base_url, function, self.eventgrid_key)

    def kill(self) -> None:
        """SIGKILL, as the kernel or the platform ends a host: no shutdown runs, nothing is flushed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.stop()


def start_host_process(state_dir: Path, settings_file: Path, *, port: int, timeout_s: float = 60) -> HostProcess:
    """Run `retrain serve --settings settings_file --port port` in `state_dir` (its `.devhost/serve.json` there)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state = state_dir / ".devhost" / "serve.json"
    state.unlink(missing_ok=True)
    log_path = state_dir / "devhost.log"
    log = private_log(log_path)
    command = [
        sys.executable,
        "-m",
        "devhost.cli",
        "serve",
        "--settings",
        str(settings_file.resolve()),
        "--port",
        str(port),
    ]
    process = spawn(command, cwd=state_dir, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log_path, timeout_s, "devhost")
        deadline = time.monotonic() + timeout_s
        while (written := _json_of(state)) is None:  # written once the host is up
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServiceStartError(f"devhost wrote no {state}:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.05)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        raise
    return HostProcess(
        "devhost",
        process,
        log_path,
        log,
        base_url=written["url"],
        function_key=written["key"],
        eventgrid_key=written["eventgridKey"],
    )


def _json_of(path: Path) -> dict[str, Any] | None:
    """The object in `path`, or None while it is missing or still being written."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
