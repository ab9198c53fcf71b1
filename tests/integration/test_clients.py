"""The retraining core's clients against the emulator and Azurite over real HTTP."""

from __future__ import annotations

import datetime as dt
import time
from time import time_ns
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite, Emulator
from retraining.errors import (
    AuthenticationError,
    ServiceError,
    ServiceUnreachableError,
    StorageError,
    TransientServiceError,
)
from retraining.http import DeadlinePassedError, ServiceClient
from retraining.models import BlobPath, JobState
from retraining.retry import Retry
from retraining.services.studio_classic.bes import BatchExecutionClient
from retraining.services.studio_classic.endpoints import ArmWebServiceClient, ClassicEndpointClient
from retraining.settings import Settings
from retraining.storage import TrainingStorage

pytestmark = pytest.mark.integration


def fault(emulator: Emulator, **rule: Any) -> None:
    requests.post(f"{emulator.http_base}/_emulator/faults", json=rule, timeout=10).raise_for_status()


@pytest.fixture
def storage(azurite: Azurite) -> TrainingStorage:
    return TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": azurite.connection_string}))


@pytest.fixture
def http() -> ServiceClient:
    return ServiceClient("BES", timeout_s=2.0, retry=Retry(attempts=4, first_s=0.05))


@pytest.fixture
def bes(services: dict[str, Any], http: ServiceClient) -> BatchExecutionClient:
    training = services["webServices"][0]
    return BatchExecutionClient(training["mlEndpoint"] + "?api-version=2.0", training["apiKey"], http)


def job_request(storage: TrainingStorage, container: str) -> dict[str, Any]:
    lifetime = dt.timedelta(minutes=10)

    def ref(name: str, write: bool) -> dict[str, Any]:
        path = BlobPath(container, name)
        return {
            "ConnectionString": None,
            "BaseLocation": storage.account_url,
            "RelativeLocation": str(path),
            "SasBlobToken": storage.sas(path, read=not write, write=write, lifetime=lifetime),
        }

    return {
        "Inputs": {"input1": ref("d.csv", False)},
        "Outputs": {"output1": ref("m.ilearner", True), "output2": ref("e.csv", True)},
        "GlobalParameters": {},
    }


def test_job_lifecycle_with_sas_scoped_blobs(
    bes: BatchExecutionClient, storage: TrainingStorage, blob_service: BlobServiceClient, container: str
) -> None:
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(80).to_csv())
    job_id = bes.submit(job_request(storage, container))
    assert bes.get_status(job_id).state is JobState.NOT_STARTED
    bes.start(job_id)
    bes.start(job_id)  # a retried start is not an error and makes no second job
    status = bes.get_status(job_id)
    while not status.state.terminal:
        status = bes.get_status(job_id)
    assert status.state is JobState.FINISHED, status.details
    assert status.results["output1"]["RelativeLocation"] == f"{container}/m.ilearner"


def test_transient_failures_are_retried_and_counted(
    bes: BatchExecutionClient, http: ServiceClient, services: dict[str, Any], emulator: Emulator, clean_faults: None
) -> None:
    service_id = services["webServices"][0]["endpoints"][0]["service_id"]
    fault(emulator, target=service_id, op="status", remaining=1)  # 503 RequestThrottled
    fault(
        emulator,
        target=service_id,
        op="status",
        remaining=1,
        status=500,
        code="InternalError",
        detail_code="InternalError",
        message="x",
    )
    fault(emulator, target=service_id, op="status", remaining=1, drop=True)
    with pytest.raises(ServiceError) as missing:
        bes.get_status("0" * 32)
    assert missing.value.status == 404  # after three absorbed faults, the real answer
    assert http.retries == 3


def test_exhausted_retries_raise_typed_errors(
    bes: BatchExecutionClient, services: dict[str, Any], emulator: Emulator, clean_faults: None
) -> None:
    service_id = services["webServices"][0]["endpoints"][0]["service_id"]
    fault(emulator, target=service_id, op="status", remaining=None)
    with pytest.raises(TransientServiceError) as throttled:
        bes.get_status("0" * 32)
    assert (throttled.value.status, throttled.value.code, throttled.value.detail_code) == (
        503,
        "ServiceUnavailable",
        "RequestThrottled",
    )
    requests.delete(f"{emulator.http_base}/_emulator/faults", timeout=10)
    fault(emulator, target=service_id, op="status", remaining=None, fail=False, delay_s=3.0)
    with pytest.raises(ServiceUnreachableError):
        bes.get_status("0" * 32)


def test_bad_key_is_an_authentication_error(services: dict[str, Any], http: ServiceClient) -> None:
    training = services["webServices"][0]
    with pytest.raises(AuthenticationError) as refused:
        BatchExecutionClient(training["mlEndpoint"], "not-the-key", http).submit({})
    assert (refused.value.status, refused.value.detail_code) == (401, "ScoreRequestUnauthorized")
    assert "not-the-key" not in str(refused.value)


def test_sas_tokens_allow_only_what_the_service_needs(
    storage: TrainingStorage, blob_service: BlobServiceClient, container: str
) -> None:
    blob_service.get_blob_client(container, "d.csv").upload_blob(b"a,b\n1,2\n")
    blob_service.get_blob_client(container, "other.csv").upload_blob(b"secret,data\n")
    read = storage.sas(BlobPath(container, "d.csv"), read=True, lifetime=dt.timedelta(minutes=5))
    write = storage.sas(BlobPath(container, "m.ilearner"), write=True, lifetime=dt.timedelta(minutes=5))
    base = storage.account_url + container

    def client(name: str, sas: str) -> BlobClient:
        return BlobClient.from_blob_url(f"{base}/{name}{sas}", retry_total=0)

    assert client("d.csv", read).download_blob().readall() == b"a,b\n1,2\n"
    forbidden = [
        lambda: client("d.csv", read).upload_blob(b"x", overwrite=True),  # read token cannot write
        lambda: client("d.csv", read).delete_blob(),  # nor delete
        lambda: client("other.csv", read).download_blob().readall(),  # nor read another blob
        lambda: client("m.ilearner", write).download_blob().readall(),  # write token cannot read
        lambda: client("other.csv", write).upload_blob(b"x", overwrite=True),  # nor write another blob
        lambda: client("m.ilearner", write).delete_blob(),  # nor delete
        lambda: list(ContainerClient.from_container_url(f"{base}{read}").list_blobs()),  # no listing
    ]
    for attempt in forbidden:
        with pytest.raises(HttpResponseError) as denied:
            attempt()
        assert denied.value.status_code in (403, 404)
    client("m.ilearner", write).upload_blob(b"model")  # what the service must do, it can
    assert "se=" in read and "sp=r&" in read and "sp=cw&" in write
    expiry = dt.datetime.fromisoformat(read.split("se=")[1].split("&")[0].replace("%3A", ":").replace("Z", "+00:00"))
    assert expiry - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=5, seconds=5)


def test_classic_update_and_arm_update_with_a_real_credential(
    services: dict[str, Any],
    storage: TrainingStorage,
    blob_service: BlobServiceClient,
    container: str,
    emulator: Emulator,
) -> None:
    from emulator import ilearner

    table = breast_cancer()
    model, _ = ilearner.train(ilearner.parse_dataset(table.to_csv(), ".csv", None), "it", {})
    blob_service.get_blob_client(container, "m.ilearner").upload_blob(ilearner.dumps(model))
    path = BlobPath(container, "m.ilearner")
    sas = storage.sas(path, read=True, lifetime=dt.timedelta(minutes=10))
    scoring = services["webServices"][1]
    endpoint2 = scoring["endpoints"][1]
    http = ServiceClient("scoring", timeout_s=10)
    classic = ClassicEndpointClient(endpoint2["updateResourceEndpoint"], endpoint2["apiKey"], http)
    classic.update_resource(
        scoring["resourceName"], base_location=storage.account_url, relative_location=str(path), sas_token=sas
    )
    deadline = time.monotonic() + 10
    while classic.resource_location(scoring["resourceName"]) != str(path):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    principal = services["servicePrincipals"][0]
    credential = ClientSecretCredential(
        principal["tenant"],
        principal["servicePrincipalId"],
        principal["servicePrincipalKey"],
        authority=services["authorityHost"],
        disable_instance_discovery=True,
        connection_verify=services["caFile"],
    )
    arm = ArmWebServiceClient(
        services["armWebServices"][0]["updateResourceEndpoint"],
        credential,
        ServiceClient("arm", timeout_s=10, verify=services["caFile"]),
    )
    operation = arm.update_trained_model(
        services["armWebServices"][0]["assetName"], uri=storage.url_of(path), credentials=sas
    )
    assert operation and "operationsStatus" in operation
    deadline = time.monotonic() + 10
    while arm.provisioning(storage.url_of(path)) != "Succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(ServiceError, match="no asset named"):
        arm.update_trained_model("Nope [trained model]", uri=storage.url_of(path), credentials=sas)


def test_a_retried_run_record_write_succeeds_and_a_different_one_is_refused(storage: TrainingStorage) -> None:
    from dataclasses import replace

    from retraining.lineage import Lineage
    from retraining.models import RunRequest, RunResult, RunStatus, Trigger, TriggerKind

    records = Lineage(storage, "recordsretry")
    request = RunRequest("weekly-retrain", Trigger(TriggerKind.HTTP, "http:1", "2026-11-21T00:00:00Z"))
    result = RunResult(
        f"20261121T000000Z-{time_ns() % 16**8:08x}", "weekly-retrain", RunStatus.SUCCEEDED, request, "a", "b"
    )
    path = records.write_record(result)
    assert records.write_record(result) == path  # the retry after a lost answer
    with pytest.raises(StorageError, match="never overwritten"):
        records.write_record(replace(result, status=RunStatus.FAILED))
    assert records.record("weekly-retrain", result.run_id) == result


def test_sas_tokens_are_https_only_on_an_https_account() -> None:
    key = "a2V5" * 11
    https = TrainingStorage.from_settings(
        Settings.from_env(
            {
                "TrainingStorage": f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
            }
        )
    )
    assert "spr=https&" in https.sas(BlobPath("data", "x.csv"), read=True, lifetime=dt.timedelta(minutes=5))
    local = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": "UseDevelopmentStorage=true"}))
    assert "spr=https%2Chttp&" in local.sas(BlobPath("data", "x.csv"), read=True, lifetime=dt.timedelta(minutes=5))


def test_user_delegation_keys_stay_within_seven_days() -> None:
    from azure.storage.blob import BlobServiceClient as Service

    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("no token is fetched before the lifetime is checked")

    identity = TrainingStorage(
        Service("https://acct.blob.core.windows.net", credential=NoCredential()), account_key=None
    )
    with pytest.raises(StorageError, match="Azure allows 7 days"):
        identity.sas(BlobPath("data", "x.csv"), read=True, lifetime=dt.timedelta(days=7))


def test_nothing_is_sent_after_a_deadline(services: dict[str, Any]) -> None:
    training = services["webServices"][0]
    late = ServiceClient("BES", timeout_s=2.0, deadline=time.monotonic() - 1)
    with pytest.raises(DeadlinePassedError):
        BatchExecutionClient(training["mlEndpoint"], training["apiKey"], late).get_status("0" * 32)
