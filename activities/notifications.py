"""Activities that tell people about runs: signed webhook notifications (`retraining.notify`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import Notification
from retraining.runtime import answer, settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def deliver_notification(payload: dict[str, Any]) -> Any:
    return answer(operations.notify(settings(), Notification.from_dict(payload)))
