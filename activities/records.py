"""Activities that write run records to Blob storage."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import RunResult
from retraining.runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def write_run_record(payload: dict[str, Any]) -> str:
    result = RunResult.from_dict(payload)
    current = settings()
    return operations.write_record(current, storage(current), result)
