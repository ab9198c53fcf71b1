"""Activities that write run records to Blob storage."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import RunResult

from ._runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def write_run_record(payload: dict[str, Any]) -> str:
    current = settings()
    return operations.write_record(current, storage(current), RunResult.from_dict(payload))
