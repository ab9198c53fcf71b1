"""Activities over trained models: verify the outputs, apply the gate, remember what serves, pick one to promote."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import ModelArtifact, SubmittedJob, check_run_id
from retraining.services.base import Provenance

from ._runtime import answer, moment, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def collect_model(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(
        operations.collect(
            current, storage(current), SubmittedJob.from_dict(payload["job"]), payload.get("schema") or {}
        )
    )


@bp.activity_trigger(input_name="payload")
def evaluate_gate(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.gate(
        current, storage(current), payload["pipeline"], ModelArtifact.from_dict(payload["model"])
    ).to_dict()


@bp.activity_trigger(input_name="payload")
def register_model(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(
        operations.register(
            current,
            storage(current),
            payload["pipeline"],
            ModelArtifact.from_dict(payload["model"]),
            Provenance.from_dict(payload["provenance"]),
        )
    )


@bp.activity_trigger(input_name="payload")
def record_serving_model(payload: dict[str, Any]) -> str | None:
    current = settings()
    return operations.record_serving(
        current,
        storage(current),
        payload["pipeline"],
        check_run_id(payload["run_id"]),
        ModelArtifact.from_dict(payload["model"]),
        list(payload["targets"]),
        bool(payload["champion"]),
        moment(payload),
    )


@bp.activity_trigger(input_name="payload")
def load_promotion(payload: dict[str, Any]) -> Any:
    current = settings()
    return answer(
        operations.promotion(
            current, storage(current), payload["pipeline"], str(payload["source_run"]), bool(payload.get("force"))
        )
    )
