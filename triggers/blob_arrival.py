"""New training data: Blob storage `BlobCreated` events delivered by Event Grid.

An Event Grid trigger receives the event only (URL, eTag, size), never the blob's bytes, so a
gigabyte of training data costs the app nothing. The event subscription on the storage account
delivers the events (this is also what Flex Consumption's Event Grid blob source does); each
pipeline's `data.container` and `data.watch` glob choose which blobs start which pipeline.

The trigger's time is the event's (when the blob was written), so the newest data wins however
the events arrive; an event time more than a few minutes ahead of the clock is replaced by the
arrival time, and the trigger's detail says so. An empty blob never starts a run: ADLS Gen2 raises
BlobCreated for `CreateFile` before any data is written (the data's own event, `FlushWithClose`, follows).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.errors import ConfigError
from retraining.models import BlobPath, RunRequest, Trigger, TriggerKind
from retraining.runtime import storage
from retraining.settings import Settings
from retraining.text import is_clean

from .starter import enqueue

logger = logging.getLogger(__name__)
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of ours an event's clock may be

bp = df.Blueprint()


def blob_of_event(event_type: str, data: Any, account_url: str) -> tuple[BlobPath, str] | None:
    """The blob a BlobCreated event names, with its eTag, if it lies in our account and has data; else None."""
    if event_type != BLOB_CREATED or not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    if data.get("api") == "CreateFile" or data.get("contentLength") == 0:
        return None  # an empty file (ADLS Gen2 CreateFile): its data arrives with a later event
    url, ours = urlsplit(data["url"]), urlsplit(account_url)
    if (url.scheme, url.netloc.lower()) != (ours.scheme, ours.netloc.lower()):
        return None
    prefix = ours.path.rstrip("/") + "/"
    if not url.path.startswith(prefix):
        return None
    try:
        path = BlobPath.parse(unquote(url.path[len(prefix) :], errors="strict"), "event url")
    except (ConfigError, UnicodeDecodeError):
        return None
    etag = data.get("eTag", "")
    etag = etag.strip('"') if isinstance(etag, str) and len(etag) <= 100 and is_clean(etag) else ""
    return path, etag


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_time(given: datetime | None, arrived: datetime) -> tuple[str, str]:
    """The trigger's moment: the event's time, unless it is missing or beyond the arrival time plus `CLOCK_SKEW`
    (then the arrival time); and a note for the trigger's detail when the event's time was not used.

    Newest first orders runs by this moment, so one event stamped in the year 9999 would win over every later
    blob for ever; a clock a few minutes ahead is tolerated."""
    if given is None:
        return _iso(arrived), ""
    if given.tzinfo is None:
        given = given.replace(tzinfo=UTC)
    if given > arrived + CLOCK_SKEW:
        return _iso(arrived), f" (eventTime {_iso(given)} is in the future: ordered by its arrival instead)"
    return _iso(given), ""


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def training_data_arrived(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    settings = Settings.from_env()
    found = blob_of_event(event.event_type, event.get_json(), storage(settings).account_url)
    if found is None:
        logger.info("ignored an Event Grid event (%s): not new data in the training storage account", event.event_type)
        return
    blob, etag = found
    event_id = event.id if isinstance(event.id, str) and is_clean(event.id) else ""
    at, note = event_time(event.event_time, datetime.now(UTC))
    if note:
        logger.warning("new data %s:%s", blob, note)
    for pipeline in operations.definitions(settings).pipelines.values():
        if pipeline.watches(blob.container, blob.name):
            trigger = Trigger(TriggerKind.BLOB, f"blob:{blob}:{etag or event_id}", at, f"{blob}{note}")
            enqueued = await enqueue(client, settings, RunRequest(pipeline.name, trigger, blob))
            logger.info("pipeline %s: new data %s -> %s", pipeline.name, blob, enqueued.action)
