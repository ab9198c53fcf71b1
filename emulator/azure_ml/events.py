"""Event Grid deliveries of a workspace's events to webhook subscribers, at least once.

Subscribers are registered at run time (`POST /_emulator/azure-ml/event-subscriptions`) or listed
in the workspace config (`event_webhooks`). Before the first delivery a subscriber must pass the
`Microsoft.EventGrid.SubscriptionValidationEvent` handshake by answering 200 with
`{"validationResponse": <data.validationCode>}`; a run-time registration fails (400) if it does
not. Each event is POSTed alone, as an Event Grid schema array of one, with the `aeg-*` headers
Event Grid sends. Any answer but 2xx (or no answer within 5 s) is retried after
`event_retry_s`, doubling, up to `event_max_attempts` attempts; then the event is dead-lettered.
Deliveries run on their own worker pool, so they may arrive out of order, as Event Grid's may.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from ..faults import matches
from .resources import EventFault, now_iso
from .scheduler import Scheduler

logger = logging.getLogger(__name__)

EVENT_TYPES = tuple(
    f"Microsoft.MachineLearningServices.{t}"
    for t in ("RunStatusChanged", "RunCompleted", "ModelRegistered", "ModelDeployed", "DatasetDriftDetected")
)
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
DELIVERY_TIMEOUT_S = 5.0


class HandshakeFailed(Exception):
    """The subscriber did not echo the validation code."""


@dataclass
class Subscription:
    id: str
    workspace: str
    topic: str
    url: str
    event_types: tuple[str, ...] | None  # None: all
    validated: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def shown_url(self) -> str:
        """The URL without its query: a webhook's query usually holds its key (`code=`)."""
        return self.url.split("?", 1)[0] + ("?…" if "?" in self.url else "")

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type.lower() in (t.lower() for t in self.event_types)


class EventGrid:
    def __init__(
        self,
        count: Callable[[str], None],
        take_fault: Callable[[Callable[[EventFault], bool]], EventFault | None],
        settings: Callable[[], tuple[float, float, int]],
    ) -> None:
        """`settings()` answers (delay before delivery, first retry back-off, attempts) at publish time."""
        self._count = count
        self._take_fault = take_fault
        self._settings = settings
        self._lock = threading.Lock()
        self.subscriptions: dict[str, Subscription] = {}
        self._scheduler = Scheduler("aml-events", workers=4)

    def subscribe(
        self, workspace: str, topic: str, url: str, event_types: tuple[str, ...] | None, handshake_now: bool
    ) -> Subscription:
        sub = Subscription(uuid.uuid4().hex, workspace, topic, url, event_types)
        if handshake_now:
            self._validate(sub)  # raises HandshakeFailed
        with self._lock:
            self.subscriptions[sub.id] = sub
        return sub

    def unsubscribe(self, sub_id: str) -> bool:
        with self._lock:
            return self.subscriptions.pop(sub_id, None) is not None

    def publish(self, workspace: str, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        event = {
            "topic": topic,
            "subject": subject,
            "eventType": event_type,
            "eventTime": now_iso(),
            "id": str(uuid.uuid4()),
            "data": data,
            "dataVersion": "",
            "metadataVersion": "1",
        }
        with self._lock:
            targets = [s for s in self.subscriptions.values() if s.workspace == workspace and s.wants(event_type)]
        self._count("events_published")
        delay, _, _ = self._settings()
        for sub in targets:
            copies, extra_delay = 1, 0.0
            fault = self._take_fault(
                lambda f: (
                    matches(f.workspace, workspace)
                    and matches(f.event_type, event_type)
                    and matches(f.run_status.lower(), str(data.get("runStatus", "")).lower())
                )
            )
            if fault is not None and fault.action == "drop":
                self._count("events_lost")
                continue
            if fault is not None and fault.action == "duplicate":
                copies = 2
                self._count("events_duplicated")
            if fault is not None and fault.action == "delay":
                extra_delay = fault.delay_s
                self._count("events_delayed")
            for _ in range(copies):
                self._scheduler.call_later(delay + extra_delay, self._deliver, sub, event, 1)

    # ---- delivery -------------------------------------------------------------------------------

    def _deliver(self, sub: Subscription, event: dict[str, Any], attempt: int) -> None:
        if sub.id not in self.subscriptions:
            return
        try:
            if not sub.validated:
                self._validate(sub)
            response = requests.post(
                sub.url, json=[event], timeout=DELIVERY_TIMEOUT_S, headers=self._headers(sub, "Notification", attempt)
            )
            delivered = 200 <= response.status_code < 300
        except (requests.RequestException, HandshakeFailed) as exc:
            logger.info("event delivery to %s failed: %s", sub.shown_url, type(exc).__name__)
            delivered = False
        if delivered:
            self._count("events_delivered")
            return
        _, backoff, attempts = self._settings()
        if attempt >= attempts:
            self._count("events_dead_lettered")
            return
        self._count("events_retried")
        self._scheduler.call_later(backoff * 2 ** (attempt - 1), self._deliver, sub, event, attempt + 1)

    def _validate(self, sub: Subscription) -> None:
        with sub.lock:
            if sub.validated:
                return
            code = str(uuid.uuid4())
            event = {
                "id": str(uuid.uuid4()),
                "topic": sub.topic,
                "subject": "",
                "eventType": VALIDATION_EVENT,
                "eventTime": now_iso(),
                "metadataVersion": "1",
                "dataVersion": "2",
                "data": {"validationCode": code, "validationUrl": None},
            }
            try:
                response = requests.post(
                    sub.url,
                    json=[event],
                    timeout=DELIVERY_TIMEOUT_S,
                    headers=self._headers(sub, "SubscriptionValidation", 1),
                )
                answer = response.json() if response.status_code == 200 else None
            except (requests.RequestException, ValueError):
                answer = None
            if not isinstance(answer, dict) or answer.get("validationResponse") != code:
                self._count("events_handshakes_failed")
                raise HandshakeFailed(f"{sub.shown_url} did not answer the validation handshake with the code")
            sub.validated = True

    @staticmethod
    def _headers(sub: Subscription, kind: str, attempt: int) -> dict[str, str]:
        return {
            "aeg-event-type": kind,
            "aeg-subscription-name": sub.id.upper(),
            "aeg-delivery-count": str(attempt - 1),
            "aeg-data-version": "",
            "aeg-metadata-version": "1",
        }
