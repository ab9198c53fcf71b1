"""What every activity needs, built per invocation from the app settings (never at import)."""

from __future__ import annotations

from retraining.settings import Settings
from retraining.storage import TrainingStorage


def settings() -> Settings:
    return Settings.from_env()


def storage(current: Settings) -> TrainingStorage:
    return TrainingStorage.from_settings(current)
