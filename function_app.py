"""Composition root of the retraining Function App: wiring only, one blueprint per concern."""

import azure.durable_functions as df
import azure.functions as func

from activities import decisions, drift, models, notifications, queue, records, rollout, training
from orchestrators import (
    monitor_training_job,
    notify_webhook,
    promote_model,
    reconcile_targets,
    retrain_pipeline,
    roll_out_target,
    run_queue,
)
from triggers import (
    aml_events,
    blob_arrival,
    http_start,
    page,
    pipelines,
    promote,
    recovery,
    retention,
    schedule,
    status,
)
from triggers import decisions as decision_routes

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    queue.bp,
    training.bp,
    drift.bp,
    models.bp,
    rollout.bp,
    records.bp,
    decisions.bp,
    notifications.bp,
    run_queue.bp,
    retrain_pipeline.bp,
    promote_model.bp,
    monitor_training_job.bp,
    roll_out_target.bp,
    notify_webhook.bp,
    reconcile_targets.bp,
    http_start.bp,
    status.bp,
    promote.bp,
    schedule.bp,
    blob_arrival.bp,
    aml_events.bp,
    recovery.bp,
    decision_routes.bp,
    pipelines.bp,
    page.bp,
    retention.bp,
):
    app.register_functions(blueprint)
