"""The Azure ML training service and registry against the emulator's workspace and Azurite, without the Functions runtime."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite, Emulator
from devhost.stack import aml_settings, local_definitions
from retraining.models import BlobPath, JobState, ModelArtifact, SubmittedJob
from retraining.operations import pipeline
from retraining.services.azure_ml import AmlCommandJobs
from retraining.services.azure_ml.workspace import WorkspaceClient
from retraining.services.base import Provenance, ServiceContext
from retraining.settings import Settings
from retraining.storage import TrainingStorage
from tests.emulator.aml import Aml

pytestmark = pytest.mark.integration
DATA = BlobPath("mldata", "integration/breast-cancer.csv")


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory, azurite: Azurite, services: dict[str, Any]) -> ServiceContext:
    definitions = tmp_path_factory.mktemp("aml") / "pipelines.json"
    definitions.write_text(json.dumps(local_definitions()))
    env = {
        "TrainingStorage": azurite.connection_string,
        "RETRAIN_PIPELINES_FILE": str(definitions),
        "ML_CA_BUNDLE": services["caFile"],
        "AZURE_AUTHORITY_HOST": services["authorityHost"],
    } | aml_settings(services)
    settings = Settings.from_env(env)
    storage = TrainingStorage.from_settings(settings)
    storage.ensure_container(DATA.container)
    BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
        DATA.container, DATA.name
    ).upload_blob(breast_cancer().to_csv(), overwrite=True)
    return ServiceContext(settings, storage, pipeline(settings, "aml-retrain"))


@pytest.fixture(scope="module")
def aml(emulator: Emulator, services: dict[str, Any]) -> Aml:
    return Aml(services["azureMl"]["workspaces"][0], services["caFile"], emulator.http_base)


def wait(jobs: AmlCommandJobs, job: SubmittedJob, timeout_s: float = 60) -> JobState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = jobs.status(job)
        if view.state.terminal:
            return view.state
        time.sleep(0.1)
    raise AssertionError("the job did not end")


@pytest.fixture(scope="module")
def trained(context: ServiceContext) -> tuple[SubmittedJob, ModelArtifact]:
    jobs = AmlCommandJobs(context)
    run_id = "20261122T030000Z-1a2b3c4d"
    job = jobs.submit(run_id, DATA)
    assert jobs.submit(run_id, DATA) == job  # a retried submit finds the same job
    assert wait(jobs, job) is JobState.FINISHED
    return job, jobs.collect(job)


def test_one_job_per_run_and_its_model_collected_from_the_datastore(
    aml: Aml, trained: tuple[SubmittedJob, ModelArtifact]
) -> None:
    job, model = trained
    names = [j["name"] for j in aml.ok("GET", "/jobs")["value"]]
    assert names.count(job.job_id) == 1
    assert (
        model.location
        == "azureml://datastores/workspaceblobstore/paths/retrain/aml-retrain/20261122T030000Z-1a2b3c4d/model/"
    )
    assert model.size > 0 and len(model.sha256) == 64 and model.metrics["AUC"] > 0.9


def provenance(job: SubmittedJob, run_id: str | None = None) -> Provenance:
    return Provenance("aml-retrain", run_id or job.run_id, job.job_id, str(DATA), "0x1", "http:test")


def test_a_version_another_writer_took_is_skipped_never_overwritten(
    context: ServiceContext, aml: Aml, trained: tuple[SubmittedJob, ModelArtifact], monkeypatch: pytest.MonkeyPatch
) -> None:
    job, model = trained
    jobs = AmlCommandJobs(context)
    run_id = "20261122T040000Z-5e6f7a8b"  # a run of its own: another test may have registered the job's run already
    container = (
        aml.ok("GET", "/models/breast-cancer") if aml.call("GET", "/models/breast-cancer").status_code == 200 else None
    )
    taken = container["properties"]["nextVersion"] if container else "1"
    other_uri = "azureml://datastores/workspaceblobstore/paths/someone-else/model/"
    original = WorkspaceClient.get
    raced: list[str] = []

    def stale_then_real(self: WorkspaceClient, *segments: str, query: str = "") -> dict[str, Any] | None:
        found = original(self, *segments, query=query)
        if segments == ("models", "breast-cancer") and not raced:
            raced.append(taken)  # we read nextVersion; another writer registers it before our PUT
            aml.ok("PUT", f"/models/breast-cancer/versions/{taken}", {"properties": {"modelUri": other_uri}})
        return found

    monkeypatch.setattr(WorkspaceClient, "get", stale_then_real)
    registered = jobs.register(model, provenance(job, run_id))
    assert raced == [taken] and registered.version == str(int(taken) + 1)
    assert aml.ok("GET", f"/models/breast-cancer/versions/{taken}")["properties"]["modelUri"] == other_uri  # untouched
    ours = aml.ok("GET", f"/models/breast-cancer/versions/{registered.version}")["properties"]
    assert (
        ours["modelUri"] == model.location
        and ours["tags"]["retrain.run_id"] == run_id
        and ours["jobName"] == job.job_id
    )
    monkeypatch.undo()
    again = jobs.register(model, provenance(job, run_id))
    assert again.version == registered.version  # the same run again: the same version


def test_the_champion_tag_moves_and_only_one_version_carries_it(
    context: ServiceContext, aml: Aml, trained: tuple[SubmittedJob, ModelArtifact]
) -> None:
    job, model = trained
    jobs = AmlCommandJobs(context)
    first = jobs.register(model, provenance(job))
    jobs.crown(first)
    aml.ok(
        "PUT",
        "/models/breast-cancer/versions/900",
        {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/x/"}},
    )
    second = ModelArtifact(model.location, model.size, model.sha256, version="900")
    jobs.crown(second)
    jobs.crown(second)  # again: nothing changes
    crowned = [
        v["name"]
        for v in aml.ok("GET", "/models/breast-cancer/versions")["value"]
        if v["properties"]["tags"].get("retrain.champion") == "true"
    ]
    assert crowned == ["900"]
    assert (
        aml.ok("GET", f"/models/breast-cancer/versions/{first.version}")["properties"]["tags"]["retrain.run_id"]
        == job.run_id
    )


def test_cancel_of_an_ended_or_missing_job_is_fine(
    context: ServiceContext, trained: tuple[SubmittedJob, ModelArtifact]
) -> None:
    job, _ = trained
    jobs = AmlCommandJobs(context)
    jobs.cancel(job)
    jobs.cancel(SubmittedJob("aml-retrain", job.run_id, "aml-retrain-20991231T000000Z-00000000", {}))
    assert jobs.status(job).state is JobState.FINISHED
