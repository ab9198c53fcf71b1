"""The process runtime that activities and starters share: settings read at each invocation (never at
import), one storage client per storage configuration, and how an activity answers."""

from __future__ import annotations

import functools
from typing import Any

from .operations import Refusal
from .settings import Settings
from .storage import TrainingStorage


def settings() -> Settings:
    return Settings.from_env()


def storage(current: Settings) -> TrainingStorage:
    """One storage client per storage configuration and process: Azure SDK clients are thread-safe."""
    return _storage(current.storage_connection_string, current.storage_account_url, current.storage_client_id)


@functools.lru_cache(maxsize=8)
def _storage(connection_string: str | None, account_url: str | None, client_id: str | None) -> TrainingStorage:
    return TrainingStorage.from_settings(
        Settings.from_env(
            {
                k: v
                for k, v in (
                    ("TrainingStorage", connection_string),
                    ("TrainingStorage__blobServiceUri", account_url),
                    ("TrainingStorage__clientId", client_id),
                )
                if v
            }
        )
    )


def answer(value: Any) -> Any:
    """An activity's return value: a Refusal as `{"error": ...}`, a payload as its dict, else as is."""
    if isinstance(value, Refusal):
        return value.to_dict()
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value
