"""Event Grid deliveries of workspace events to a real webhook over HTTP: handshake, retries, faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from .aml import Aml, unique
from .helpers import wait_until

pytestmark = pytest.mark.integration

PREFIX = "Microsoft.MachineLearningServices."


class Webhook:
    """A webhook that answers the validation handshake (unless told not to) and records notifications."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.echo_validation = True
        self.fail_next = 0  # answer 500 to this many notifications
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer: Any = None
                with hook.lock:
                    if body[0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent":
                        answer = {
                            "validationResponse": body[0]["data"]["validationCode"] if hook.echo_validation else "wrong"
                        }
                    elif hook.fail_next > 0:
                        hook.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    else:
                        hook.events += body
                        hook.headers.append(dict(self.headers))
                payload = json.dumps(answer).encode() if answer else b""
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/runtime/webhooks/eventgrid?functionName=on_aml&code=k"
        )

    def close(self) -> None:
        """Stop serving and close the socket, so later deliveries are refused rather than left unanswered."""
        self.server.shutdown()
        self.server.server_close()

    def of(self, run: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e for e in self.events if e["data"].get("runId") == run or e["subject"].startswith(f"models/{run}:")
            ]


@pytest.fixture
def webhook(aml: Aml) -> Iterator[Webhook]:
    hook = Webhook()
    response = requests.post(
        f"{aml.admin}/_emulator/azure-ml/event-subscriptions",
        json={"workspace": aml.ws["name"], "url": hook.url},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    yield hook
    requests.delete(f"{aml.admin}/_emulator/azure-ml/event-subscriptions/{response.json()['id']}", timeout=10)
    hook.close()


def test_job_and_model_events_arrive_in_event_grid_schema(aml: Aml, webhook: Webhook, training_csv: str) -> None:
    job = aml.train(training_csv, tags={"run": "42"})
    name = job["name"]
    events = wait_until(
        lambda: (found := webhook.of(name)) and any(e["eventType"] == PREFIX + "RunCompleted" for e in found) and found,
        what="RunCompleted",
    )
    statuses = {e["data"]["runStatus"] for e in events if e["eventType"] == PREFIX + "RunStatusChanged"}
    assert {"starting", "running", "finalizing", "completed"} <= statuses
    completed = next(e for e in events if e["eventType"] == PREFIX + "RunCompleted")
    assert completed["topic"] == aml.ws["resourceId"]
    assert completed["subject"] == f"experiments/{completed['data']['experimentId']}/runs/{name}"
    assert completed["data"]["experimentName"] == "emulator-tests" and completed["data"]["runTags"] == {"run": "42"}
    assert {"id", "eventTime", "dataVersion", "metadataVersion"} <= set(completed)
    assert webhook.headers[-1]["aeg-event-type"] == "Notification"
    assert "code=k" not in json.dumps(aml.state())  # the webhook's key is not shown

    model = unique("evmodel")
    aml.register(model, "1", f"azureml://jobs/{name}/outputs/model/paths/", tags={"t": "v"})
    registered = wait_until(lambda: webhook.of(model), what="ModelRegistered")[0]
    assert registered["eventType"] == PREFIX + "ModelRegistered" and registered["data"]["ModelTags"] == {"t": "v"}


def test_failed_deliveries_are_retried_and_faults_lose_or_duplicate(
    aml: Aml, webhook: Webhook, aml_clean: None
) -> None:
    webhook.fail_next = 2
    first = unique("retried")
    aml.register(first, "1", "azureml://datastores/workspaceblobstore/paths/x/")
    assert len(wait_until(lambda: webhook.of(first), what="retried delivery")) == 1
    assert aml.state()["counters"]["events_retried"] >= 2

    aml.fault({"kind": "aml_events", "action": "drop", "event_type": "*ModelRegistered"})
    lost = unique("lost")
    aml.register(lost, "1", "azureml://datastores/workspaceblobstore/paths/x/")
    aml.fault({"kind": "aml_events", "action": "duplicate", "event_type": "*ModelRegistered"})
    doubled = unique("doubled")
    aml.register(doubled, "1", "azureml://datastores/workspaceblobstore/paths/x/")
    copies = wait_until(lambda: len(webhook.of(doubled)) == 2 and webhook.of(doubled), what="two copies")
    assert copies[0]["id"] == copies[1]["id"]  # the same event, delivered twice: dedupe on id
    assert webhook.of(lost) == []

    aml.fault({"kind": "aml_events", "action": "delay", "delay_s": 0.5, "event_type": "*ModelRegistered"})
    late = unique("late")
    began = time.monotonic()
    aml.register(late, "1", "azureml://datastores/workspaceblobstore/paths/x/")
    wait_until(lambda: webhook.of(late), what="delayed delivery")
    assert time.monotonic() - began >= 0.5
    counters = aml.state()["counters"]
    assert counters["events_lost"] >= 1 and counters["events_duplicated"] >= 1 and counters["events_delayed"] >= 1


def test_a_webhook_that_fails_the_handshake_is_not_subscribed(aml: Aml) -> None:
    hook = Webhook()
    hook.echo_validation = False
    try:
        response = requests.post(
            f"{aml.admin}/_emulator/azure-ml/event-subscriptions",
            json={"workspace": aml.ws["name"], "url": hook.url},
            timeout=10,
        )
        assert response.status_code == 400 and "handshake" in response.json()["error"]["message"]
    finally:
        hook.close()
    for body in (
        {"workspace": aml.ws["name"], "url": "ftp://x"},
        {"workspace": "nope", "url": hook.url},
        {"workspace": aml.ws["name"], "url": hook.url, "eventTypes": ["Unknown"]},
        [],
    ):
        assert requests.post(
            f"{aml.admin}/_emulator/azure-ml/event-subscriptions", json=body, timeout=10
        ).status_code in (400, 404)
