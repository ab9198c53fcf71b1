"""Activities that push a trained model into scoring web services."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import UpdateRequest

from ._runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def update_scoring_target(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.update_target(current, storage(current), UpdateRequest.from_dict(payload)).to_dict()
