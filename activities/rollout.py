"""Activities that roll a model out to a scoring target, one bounded step per call (`retraining.rollouts`)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import rollouts
from retraining.inputs import ReconcileCall, RolloutEnd, RolloutPlanInput, RolloutStepInput
from retraining.runtime import answer, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def plan_rollout(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(rollouts.steps(current, storage(current), RolloutPlanInput.from_dict(payload)))


@bp.activity_trigger(input_name="payload")
def run_rollout_step(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return rollouts.run_step(current, storage(current), RolloutStepInput.from_dict(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def roll_back_target(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return rollouts.roll_back(current, storage(current), RolloutStepInput.from_dict(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def settle_rollout(payload: dict[str, Any]) -> bool:
    current = settings()
    return rollouts.settle(current, storage(current), RolloutEnd.from_dict(payload))


@bp.activity_trigger(input_name="payload")
def reconcile_target(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return rollouts.reconcile(current, storage(current), ReconcileCall.from_dict(payload)).to_dict()
