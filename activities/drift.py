"""The drift check before a run's job: compare the training data with the champion's, train or skip (`retraining.drift_check`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import drift_check
from retraining.inputs import DriftCheck
from retraining.runtime import answer, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def check_data_drift(payload: dict[str, Any]) -> Any:
    """The run's DriftRecord (train or skip, scores, thresholds), or a refusal naming changed columns or bad data."""
    check = DriftCheck.from_dict(payload)
    current = settings()
    return answer(
        drift_check.check_drift(current, storage(current), check.pipeline, check.run_id, check.data, check.moment())
    )
