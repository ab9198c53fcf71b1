"""Composition root of the retraining Function App: wiring only, one blueprint per concern."""

import azure.durable_functions as df
import azure.functions as func

from activities import models, records, scoring, training
from orchestrators import monitor_training_job, retrain_pipeline, update_scoring_target
from triggers import blob_arrival, http_start, promote, schedule

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    training.bp,
    models.bp,
    scoring.bp,
    records.bp,
    monitor_training_job.bp,
    update_scoring_target.bp,
    retrain_pipeline.bp,
    http_start.bp,
    promote.bp,
    schedule.bp,
    blob_arrival.bp,
):
    app.register_functions(blueprint)
