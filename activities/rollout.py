"""Activities that roll a model out to a scoring target, one bounded step per call."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import ModelArtifact
from retraining.services.base import RolloutStep

from ._runtime import answer, moment, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def plan_rollout(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(
        operations.rollout_steps(
            current, storage(current), payload["pipeline"], payload["target"], ModelArtifact.from_dict(payload["model"])
        )
    )


@bp.activity_trigger(input_name="payload")
def run_rollout_step(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.rollout_step(
        current,
        storage(current),
        payload["pipeline"],
        payload["target"],
        RolloutStep.from_dict(payload["step"]),
        ModelArtifact.from_dict(payload["model"]),
        payload.get("state") or {},
        moment(payload, "deadline"),
    ).to_dict()


@bp.activity_trigger(input_name="payload")
def roll_back_target(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.roll_back(
        current,
        storage(current),
        payload["pipeline"],
        payload["target"],
        ModelArtifact.from_dict(payload["model"]),
        payload.get("state") or {},
        moment(payload, "deadline"),
    ).to_dict()
