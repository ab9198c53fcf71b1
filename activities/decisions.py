"""Activities over operators' decisions on runs (`retraining.decisions`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import RunRef
from retraining.models import check_run_id
from retraining.runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def read_run_signals(payload: dict[str, Any]) -> dict[str, Any]:
    """The run's approval decision and cancel request, as stored by the HTTP routes."""
    run = RunRef.from_dict(payload)
    current = settings()
    return operations.signals(current, storage(current), run.pipeline, check_run_id(run.run_id)).to_dict()
