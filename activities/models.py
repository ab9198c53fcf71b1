"""Activities over trained models: verify the outputs, apply the gate, remember what serves, pick one to promote."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from retraining import operations
from retraining.inputs import GateInput, ModelCollection, PromotionLookup, Registration, RunRef, ServingRecord
from retraining.models import check_run_id
from retraining.runtime import answer, settings, storage

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def collect_model(payload: dict[str, Any]) -> Any:
    collection = ModelCollection.from_dict(payload)
    current = settings()
    return answer(operations.collect(current, storage(current), collection.job, collection.schema))


@bp.activity_trigger(input_name="payload")
def evaluate_gate(payload: dict[str, Any]) -> dict[str, Any]:
    gate = GateInput.from_dict(payload)
    current = settings()
    return operations.gate(current, storage(current), gate.pipeline, gate.model).to_dict()


@bp.activity_trigger(input_name="payload")
def register_model(payload: dict[str, Any]) -> Any:
    registration = Registration.from_dict(payload)
    current = settings()
    return answer(
        operations.register(
            current, storage(current), registration.pipeline, registration.model, registration.provenance
        )
    )


@bp.activity_trigger(input_name="payload")
def record_serving_model(payload: dict[str, Any]) -> str | None:
    serving = ServingRecord.from_dict(payload)
    current = settings()
    return operations.record_serving(
        current,
        storage(current),
        serving.pipeline,
        check_run_id(serving.run_id),
        serving.model,
        list(serving.targets),
        serving.champion,
        serving.moment(),
        {t.target: (t.state or "unknown", t.error or "") for t in serving.unsettled},
    )


@bp.activity_trigger(input_name="payload")
def load_promotion(payload: dict[str, Any]) -> Any:
    lookup = PromotionLookup.from_dict(payload)
    current = settings()
    return answer(operations.promotion(current, storage(current), lookup.pipeline, lookup.source_run, lookup.force))


@bp.activity_trigger(input_name="payload")
def load_champion(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The pipeline's champion model (the serving record's), or None before there is one."""
    ref = RunRef.from_dict(payload)
    current = settings()
    found = operations.lineage(current, storage(current)).serving(ref.pipeline).champion
    return None if found is None else found.model.to_dict()
