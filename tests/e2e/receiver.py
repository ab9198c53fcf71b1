"""A webhook receiver for the tests: records every delivery, answers 503 to the first `fail_first` of each, after `delay_s`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    fail_first: int = 0  # per delivery id: how many attempts get 503 before one gets 200
    delay_s: float = 0.0  # how long each answer takes
    credentials: str = ""  # user:password put in the URL (a receiver that authenticates by URL)
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        userinfo = f"{self.credentials}@" if self.credentials else ""
        return f"http://{userinfo}127.0.0.1:{self._server.server_address[1]}/hooks/retrain?token=url-token-{id(self)}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(receiver.delay_s)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    earlier = sum(
                        d.headers.get("x-retrain-delivery") == headers.get("x-retrain-delivery")
                        for d in receiver.deliveries
                    )
                    status = 503 if earlier < receiver.fail_first else 200
                    receiver.deliveries.append(Delivery(headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def of(self, pipeline: str, event: str | None = None) -> list[Delivery]:
        with self._lock:
            return [
                d
                for d in self.deliveries
                if d.headers.get("x-retrain-delivery", "").startswith(f"{pipeline}:")
                and (event is None or d.headers.get("x-retrain-event") == event)
            ]

    def delivered(self, pipeline: str, event: str, run_id: str, timeout_s: float = 30) -> list[Delivery]:
        """The run's deliveries of `event`, once one got 200 (deliveries run on their own, after the run)."""
        deadline = time.monotonic() + timeout_s
        while True:
            mine = [d for d in self.of(pipeline, event) if run_id in d.headers.get("x-retrain-delivery", "")]
            if any(d.answered == 200 for d in mine) or time.monotonic() > deadline:
                return mine
            time.sleep(0.2)
