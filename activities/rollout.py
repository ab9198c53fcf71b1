"""Activities that roll a model out to a scoring target, one bounded step per call."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import RolloutPlanInput, RolloutStepInput
from retraining.runtime import answer, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def plan_rollout(payload: dict[str, Any]) -> Any:
    plan = RolloutPlanInput.from_dict(payload)
    current = settings()
    return answer(operations.rollout_steps(current, storage(current), plan.pipeline, plan.target, plan.model))


@bp.activity_trigger(input_name="payload")
def run_rollout_step(payload: dict[str, Any]) -> dict[str, Any]:
    call = RolloutStepInput.from_dict(payload)
    current = settings()
    return operations.rollout_step(
        current,
        storage(current),
        call.pipeline,
        call.target,
        call.step,
        call.model,
        call.state,
        call.moment("deadline"),
    ).to_dict()


@bp.activity_trigger(input_name="payload")
def roll_back_target(payload: dict[str, Any]) -> dict[str, Any]:
    call = RolloutStepInput.from_dict(payload)
    current = settings()
    return operations.roll_back(
        current, storage(current), call.pipeline, call.target, call.model, call.state, call.moment("deadline")
    ).to_dict()
