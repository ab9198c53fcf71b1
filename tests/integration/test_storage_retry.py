"""A connection storage dropped is retried at once, not after the SDK's default 15 s (real Azurite)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
from azure.core.pipeline.transport import HttpTransport

from devhost.services import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from retraining.models import BlobPath
from retraining.settings import Settings
from retraining.storage import TrainingStorage
from retraining.storage_retry import QuickRetry

pytestmark = pytest.mark.integration


class DroppingProxy:
    """Forwards to Azurite, but closes its first connection after reading a request, without an answer:
    what a client sees when it reuses a pooled connection the server has just closed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections == 1:
                client.recv(65536)
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(azurite: Azurite) -> Iterator[DroppingProxy]:
    server = DroppingProxy(azurite.port)
    yield server
    server.close()


def test_a_dropped_connection_is_retried_within_a_second(
    azurite: Azurite, proxy: DroppingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": azurite.connection_string}))
    path = BlobPath(f"r{uuid.uuid4().hex[:12]}", "signals.json")
    direct.write_json(path, {"cancel": None})

    waits: list[float] = []
    monkeypatch.setattr(HttpTransport, "sleep", lambda self, seconds: waits.append(seconds))
    through_proxy = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{proxy.port}/{AZURITE_ACCOUNT};"
    )
    store = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": through_proxy}))
    assert store.read_json(path) == {"cancel": None}
    assert proxy.connections == 2  # the dropped one, then the retry
    assert len(waits) == 1 and waits[0] <= 0.1, waits  # the SDK's default would have waited 15 to 21 s


def test_the_retries_still_outlast_a_storage_restart() -> None:
    policy = QuickRetry()
    waits = [policy.get_backoff_time({"count": n}) for n in range(1, policy.total_retries + 1)]
    assert waits[0] <= 0.1 and waits == sorted(waits) and 20 <= sum(waits) <= 40, waits
