"""Webhook notifications: a signed JSON POST per event, for any generic receiver.

    POST <notifications.webhook>
    Content-Type: application/json
    X-Retrain-Event: awaiting_approval | run_not_succeeded | rolled_back | target_on_old_model
    X-Retrain-Delivery: <pipeline>:<run id>:<event>       the same for every retry of one notification
    X-Retrain-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret setting's value>

    {"event", "pipeline", "run_id", "status", "reason", "at", "trigger", "targets": [{"target", "state", "error"}],
     "links": {"page", "run", "approve"?, "reject"?}}

A receiver verifies the signature over the exact bytes it received (as for GitHub's
`X-Hub-Signature-256`), compares in constant time, and may refuse an `at` that is too old. The
payload names runs, states and reasons only: no key, no SAS, no storage URL. Links point at the
status page (`RETRAIN_PAGE_URL`) and the API next to it; acting on them needs a function key.

2xx is delivered. 408, 429, 5xx and no answer are transient (raised, so the orchestrator retries
with back-off); any other status, or a missing secret setting, is a refusal the run notes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

from .definitions import Notifications
from .errors import ConfigError, ServiceError, ServiceUnreachableError, TransientServiceError
from .http import TRANSIENT_STATUSES, shared_session
from .settings import Settings
from .text import origin

SIGNATURE_HEADER = "X-Retrain-Signature-256"
EVENT_HEADER = "X-Retrain-Event"
DELIVERY_HEADER = "X-Retrain-Delivery"
PAYLOAD_FIELDS = ("event", "pipeline", "run_id", "status", "reason", "at", "trigger", "targets")


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header for `body`: `sha256=` and the hex HMAC-SHA256 keyed by `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature of the exact body and compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header)


def links(page_url: str | None, pipeline: str, run_id: str, event: str) -> dict[str, str]:
    """Where a person looks and acts: the pipeline's page at the run, and the run's API routes."""
    if not page_url:
        return {}
    api = page_url.rsplit("/", 1)[0]  # RETRAIN_PAGE_URL is https://APP/api/status
    run = f"{api}/pipelines/{quote(pipeline)}/runs/{quote(run_id)}"
    found = {"page": f"{page_url}/{quote(pipeline)}#run-{run_id}", "run": run}
    if event == "awaiting_approval":
        found |= {"approve": f"{run}/approve", "reject": f"{run}/reject"}
    return found


def body_of(payload: dict[str, Any], page_url: str | None) -> bytes:
    """The JSON body: the orchestrator's fields (nothing else), and the links."""
    message = {k: payload.get(k) for k in PAYLOAD_FIELDS}
    message["links"] = links(page_url, str(payload["pipeline"]), str(payload["run_id"]), str(payload["event"]))
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode("utf-8")


def deliver(settings: Settings, notifications: Notifications | None, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one notification; raise a transient error to be retried, a ServiceError or ConfigError to give up."""
    if notifications is None:
        raise ConfigError(f"pipeline {payload.get('pipeline')!r} has no notifications.webhook")
    secret = settings.secret(notifications.secret_setting)
    body = body_of(payload, settings.page_url)
    event = str(payload["event"])
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        SIGNATURE_HEADER: signature(secret, body),
        DELIVERY_HEADER: f"{payload['pipeline']}:{payload['run_id']}:{event}",
    }
    import requests  # here, not at import: cold start does not pay for it

    where = origin(notifications.webhook)  # its user, password, path and query may hold a token: never shown
    try:
        response = shared_session(notifications.webhook).post(
            notifications.webhook,
            data=body,
            headers=headers,
            timeout=min(settings.http_timeout_s, 30.0),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise ServiceUnreachableError(f"the webhook {where} did not answer ({type(exc).__name__})") from None
    if 200 <= response.status_code < 300:
        return {"delivered": True, "status": response.status_code}
    kind = TransientServiceError if response.status_code in TRANSIENT_STATUSES else ServiceError
    raise kind(f"the webhook {where} refused the {event} notification", status=response.status_code, service="webhook")
