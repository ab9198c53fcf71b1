"""Activities over trained models: verify the outputs, apply the gate, remember what serves."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.models import ModelArtifact, SubmittedJob, UpdateRequest
from retraining.policy import decide

from ._runtime import settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def collect_model(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    return operations.collect_model(current, storage(current), SubmittedJob.from_dict(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def evaluate_gate(payload: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    pipeline = operations.pipeline(current, payload["pipeline"])
    serving = operations.serving_metrics(current, storage(current), pipeline.name) if pipeline.gate.not_worse_than_serving else None
    return decide(pipeline.gate, ModelArtifact.from_dict(payload["model"]).metrics, serving).to_dict()


@bp.activity_trigger(input_name="payload")
def record_serving_model(payload: dict[str, Any]) -> None:
    current = settings()
    operations.record_serving(current, storage(current), UpdateRequest.from_dict(payload["update"]), list(payload["targets"]))
