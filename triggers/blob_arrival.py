"""New training data: Blob storage `BlobCreated` events delivered by Event Grid.

An Event Grid trigger receives the event only (URL, eTag, size), never the blob's bytes, so a
gigabyte of training data costs the app nothing. The event subscription on the storage account
delivers the events (this is also what Flex Consumption's Event Grid blob source does); each
pipeline's `data.container` and `data.watch` glob choose which blobs start which pipeline.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from retraining import operations
from retraining.errors import ConfigError
from retraining.models import BlobPath, RunRequest, Trigger, TriggerKind
from retraining.settings import Settings
from retraining.storage import TrainingStorage

from .starter import request_run

logger = logging.getLogger(__name__)
BLOB_CREATED = "Microsoft.Storage.BlobCreated"

bp = df.Blueprint()


def blob_of_event(event_type: str, data: Any, account_url: str) -> tuple[BlobPath, str] | None:
    """The blob a BlobCreated event names, with its eTag, if it lies in our account; else None."""
    if event_type != BLOB_CREATED or not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    url, ours = urlsplit(data["url"]), urlsplit(account_url)
    if (url.scheme, url.netloc.lower()) != (ours.scheme, ours.netloc.lower()):
        return None
    prefix = ours.path.rstrip("/") + "/"
    if not url.path.startswith(prefix):
        return None
    try:
        path = BlobPath.parse(unquote(url.path[len(prefix):]), "event url")
    except ConfigError:
        return None
    return path, str(data.get("eTag", ""))


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def training_data_arrived(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    settings = Settings.from_env()
    found = blob_of_event(event.event_type, event.get_json(), TrainingStorage.from_settings(settings).account_url)
    if found is None:
        logger.info("ignored event %s (%s): not a new blob in the training storage account", event.id, event.event_type)
        return
    blob, etag = found
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for pipeline in operations.definitions(settings).pipelines.values():
        if pipeline.watches(blob.container, blob.name):
            trigger = Trigger(TriggerKind.BLOB, f"blob:{blob}:{etag or event.id}", now, str(blob))
            outcome = await request_run(client, RunRequest(pipeline.name, trigger, blob))
            logger.info("pipeline %s: new data %s -> %s", pipeline.name, blob, outcome.action)
