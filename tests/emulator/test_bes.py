"""BES against a real Azurite over real HTTP: training, results, and the documented errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite, Emulator
from emulator import ilearner

from .helpers import auth, blob_ref, run_job, sas_ref, submit, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture
def training(services: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = services["webServices"][0]
    assert service["kind"] == "training"
    return service


def training_body(cs: str, container: str, dataset: str) -> dict[str, Any]:
    return {
        "Inputs": {"input1": blob_ref(cs, container, dataset)},
        "Outputs": {
            "output1": blob_ref(cs, container, "out/model.ilearner"),
            "output2": blob_ref(cs, container, "out/evaluation.csv"),
        },
        "GlobalParameters": {},
    }


@pytest.mark.parametrize(
    "dataset, payload", [("data.csv", breast_cancer().to_csv), ("labeledexamples.arff", breast_cancer().to_arff)]
)
def test_training_job_writes_loadable_model_and_evaluation(
    training: dict[str, Any],
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
    dataset: str,
    payload: Any,
) -> None:
    blob_service.get_blob_client(container, dataset).upload_blob(payload())
    status = run_job(
        training["mlEndpoint"], training["apiKey"], training_body(azurite.connection_string, container, dataset)
    )

    assert status["StatusCode"] == "Finished", status
    model_ref = status["Results"]["output1"]
    assert model_ref["ConnectionString"] is None
    assert model_ref["RelativeLocation"] == f"{container}/out/model.ilearner"
    url = model_ref["BaseLocation"] + model_ref["RelativeLocation"] + model_ref["SasBlobToken"]
    model = ilearner.loads(requests.get(url, timeout=10).content)
    assert model.training_job_id == status["JobId"]
    assert len(model.feature_names) == 30
    evaluation = blob_service.get_blob_client(container, "out/evaluation.csv").download_blob().readall().decode()
    header, values = evaluation.splitlines()
    metrics = dict(zip(header.split(","), values.split(","), strict=True))
    assert {"AUC", "Accuracy", "Precision", "Recall", "F1 Score"} <= set(metrics)
    assert 0.8 < float(metrics["AUC"]) <= 1.0


def test_every_status_get_mints_a_fresh_sas(
    training: dict[str, Any], azurite: Azurite, blob_service: BlobServiceClient, container: str
) -> None:
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    status = run_job(
        training["mlEndpoint"], training["apiKey"], training_body(azurite.connection_string, container, "d.csv")
    )
    # Two GETs well within one second (SAS times have one-second resolution) must still differ.
    tokens = [
        wait_job(training["mlEndpoint"], training["apiKey"], status["JobId"])["Results"]["output1"] for _ in range(3)
    ]
    assert len({t["SasBlobToken"] for t in tokens}) == 3
    for ref in tokens:  # and each of them reads the model
        url = ref["BaseLocation"] + ref["RelativeLocation"] + ref["SasBlobToken"]
        assert requests.get(url, timeout=10).status_code == 200


def test_sas_inputs_and_outputs_work(training: dict[str, Any], blob_service: BlobServiceClient, container: str) -> None:
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(80).to_csv())
    body = {
        "Inputs": {"input1": sas_ref(blob_service, container, "d.csv")},
        "Outputs": {
            "output1": sas_ref(blob_service, container, "m.ilearner", read=False, write=True),
            "output2": sas_ref(blob_service, container, "e.csv", read=False, write=True),
        },
    }
    status = run_job(training["mlEndpoint"], training["apiKey"], body)
    assert status["StatusCode"] == "Finished", status
    ilearner.loads(blob_service.get_blob_client(container, "m.ilearner").download_blob().readall())


def test_subscriptions_url_form_and_legacy_single_input(
    training: dict[str, Any], azurite: Azurite, blob_service: BlobServiceClient, container: str
) -> None:
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    url = training["mlEndpoint"].replace("/workspaces/", "/subscriptions/")
    body = training_body(azurite.connection_string, container, "d.csv")
    body["Input"] = body.pop("Inputs")["input1"]
    assert run_job(url, training["apiKey"], body)["StatusCode"] == "Finished"


def error_of(response: requests.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["details"][0]["code"]


def test_missing_api_version_is_bad_version_call(training: dict[str, Any]) -> None:
    response = requests.post(training["mlEndpoint"], json={}, headers=auth(training["apiKey"]), timeout=10)
    assert error_of(response) == (400, "BadArgument", "BadVersionCall")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
def test_bad_credentials_are_401(training: dict[str, Any], headers: dict[str, str]) -> None:
    response = requests.post(f"{training['mlEndpoint']}?api-version=2.0", json={}, headers=headers, timeout=10)
    assert error_of(response) == (401, "Unauthorized", "ScoreRequestUnauthorized")
    assert response.json()["error"]["details"][0]["message"] == "Invalid credentials provided."


def bad_bodies(cs: str, container: str) -> list[tuple[Any, str]]:
    good = blob_ref(cs, container, "d.csv")
    outputs = {"output1": blob_ref(cs, container, "m.ilearner"), "output2": blob_ref(cs, container, "e.csv")}
    return [
        ({"Input": good, "Inputs": {"input1": good}, "Outputs": outputs}, "DuplicateInputInBatchCall"),
        ({"Inputs": {"inputX": good}, "Outputs": outputs}, "InvalidInputNames"),
        ({"Outputs": outputs}, "BatchJobInputsNotSpecified"),
        ({"Inputs": {"input1": blob_ref(cs, container, "d.xlsx")}, "Outputs": outputs}, "InvalidBlobExtension"),
        (
            {"Inputs": {"input1": good}, "Outputs": {"output1": blob_ref(cs, container, "m.csv")}},
            "InvalidBlobExtension",
        ),
        (
            {"Inputs": {"input1": good}, "Outputs": {"outputZ": blob_ref(cs, container, "m.ilearner")}},
            "InvalidOutputOverrideName",
        ),
        (
            {"Inputs": {"input1": {"RelativeLocation": "nocontainer"}}, "Outputs": outputs},
            "MissingInputBlobInformation",
        ),
        ({"Inputs": {"input1": {"RelativeLocation": 5}}, "Outputs": outputs}, "RequestBodyInvalid"),
        ({"Inputs": {"input1": good}, "Outputs": outputs, "GlobalParameters": {"a": 1}}, "RequestBodyInvalid"),
        ({"Inputs": {"input1": good}, "Outputs": outputs, "Surprise": True}, "RequestBodyInvalid"),
        ([1, 2, 3], "RequestBodyInvalid"),
        ("just a string", "RequestBodyInvalid"),
    ]


def test_invalid_submit_bodies_get_documented_400s(training: dict[str, Any], azurite: Azurite) -> None:
    for body, detail in bad_bodies(azurite.connection_string, "c"):
        response = submit(training["mlEndpoint"], training["apiKey"], body)
        assert error_of(response) == (400, "BadArgument", detail), (body, response.text)


def test_malformed_json_and_oversized_bodies(training: dict[str, Any]) -> None:
    url, headers = (
        f"{training['mlEndpoint']}?api-version=2.0",
        auth(training["apiKey"]) | {"Content-Type": "application/json"},
    )
    malformed = requests.post(url, data=b"{not json", headers=headers, timeout=10)
    assert error_of(malformed) == (400, "BadArgument", "RequestBodyInvalid")
    non_utf8 = requests.post(url, data=b"\xff\xfe\x00", headers=headers, timeout=10)
    assert error_of(non_utf8) == (400, "BadArgument", "RequestBodyInvalid")
    oversized = requests.post(url, data=b"[" + b"1," * 600_000 + b"1]", headers=headers, timeout=10)
    assert error_of(oversized) == (413, "MemoryQuotaViolation", "RequestBodyTooLarge")


def test_a_50_mb_body_gets_413_even_when_the_client_closes_after_one_request(training: dict[str, Any]) -> None:
    """urllib sends `Connection: close`: the answer must arrive whole, not as a connection reset."""
    request = urllib.request.Request(
        f"{training['mlEndpoint']}?api-version=2.0",
        data=b"x" * (50 * 1024 * 1024),
        method="POST",
        headers=auth(training["apiKey"]) | {"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=60)
    assert answer.value.code == 413
    assert json.loads(answer.value.read())["error"]["details"][0]["code"] == "RequestBodyTooLarge"


def test_start_twice_is_cannot_start_job(
    training: dict[str, Any],
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
    emulator: Emulator,
    clean_faults: None,
) -> None:
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "job", "target": training["id"], "duration_s": 1.0},
        timeout=10,
    )
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    job_id = submit(
        training["mlEndpoint"], training["apiKey"], training_body(azurite.connection_string, container, "d.csv")
    ).json()
    start = f"{training['mlEndpoint']}/{job_id}/start?api-version=2.0"
    assert requests.post(start, headers=auth(training["apiKey"]), timeout=10).status_code == 200
    again = requests.post(start, headers=auth(training["apiKey"]), timeout=10)
    assert error_of(again) == (400, "InvalidOperation", "CannotStartJob")
    assert "Running state" in again.json()["error"]["details"][0]["message"]


def test_unknown_job_is_404(training: dict[str, Any]) -> None:
    response = requests.get(
        f"{training['mlEndpoint']}/{'0' * 32}?api-version=2.0", headers=auth(training["apiKey"]), timeout=10
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


def test_missing_input_blob_fails_the_job_with_details(
    training: dict[str, Any], azurite: Azurite, container: str
) -> None:
    status = run_job(
        training["mlEndpoint"], training["apiKey"], training_body(azurite.connection_string, container, "absent.csv")
    )
    assert status["StatusCode"] == "Failed"
    assert "BlobNotFound" in status["Details"]
    assert status["Results"] is None


def test_expired_sas_input_fails_the_job(
    training: dict[str, Any], blob_service: BlobServiceClient, container: str
) -> None:
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    body = {
        "Inputs": {"input1": sas_ref(blob_service, container, "d.csv", minutes=-1)},
        "Outputs": {
            "output1": sas_ref(blob_service, container, "m.ilearner", write=True),
            "output2": sas_ref(blob_service, container, "e.csv", write=True),
        },
    }
    status = run_job(training["mlEndpoint"], training["apiKey"], body)
    assert status["StatusCode"] == "Failed"
    assert "denied" in status["Details"]


def test_delete_cancels_a_running_job(
    training: dict[str, Any],
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
    emulator: Emulator,
    clean_faults: None,
) -> None:
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "job", "target": training["id"], "duration_s": 30},
        timeout=10,
    )
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    job_id = submit(
        training["mlEndpoint"], training["apiKey"], training_body(azurite.connection_string, container, "d.csv")
    ).json()
    requests.post(
        f"{training['mlEndpoint']}/{job_id}/start?api-version=2.0", headers=auth(training["apiKey"]), timeout=10
    )
    deleted = requests.delete(
        f"{training['mlEndpoint']}/{job_id}?api-version=2.0", headers=auth(training["apiKey"]), timeout=10
    )
    assert deleted.status_code == 200
    assert wait_job(training["mlEndpoint"], training["apiKey"], job_id)["StatusCode"] == "Cancelled"


def test_injected_job_failure_carries_details(
    training: dict[str, Any],
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
    emulator: Emulator,
    clean_faults: None,
) -> None:
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "job", "target": training["id"], "fail_details": "Module 'Train Model' ran out of memory"},
        timeout=10,
    )
    blob_service.get_blob_client(container, "d.csv").upload_blob(breast_cancer().head(60).to_csv())
    status = run_job(
        training["mlEndpoint"], training["apiKey"], training_body(azurite.connection_string, container, "d.csv")
    )
    assert (status["StatusCode"], status["Details"]) == ("Failed", "Module 'Train Model' ran out of memory")


def test_injected_call_faults(training: dict[str, Any], emulator: Emulator, clean_faults: None) -> None:
    add = f"{emulator.http_base}/_emulator/faults"
    requests.post(
        add, json={"target": training["endpoints"][0]["service_id"], "op": "submit", "remaining": 2}, timeout=10
    )
    for _ in range(2):
        assert error_of(submit(training["mlEndpoint"], training["apiKey"], {})) == (
            503,
            "ServiceUnavailable",
            "RequestThrottled",
        )
    assert submit(training["mlEndpoint"], training["apiKey"], {}).status_code == 400  # the fault is used up
    requests.post(
        add,
        json={
            "op": "submit",
            "status": 500,
            "code": "InternalError",
            "detail_code": "InternalError",
            "message": "boom",
        },
        timeout=10,
    )
    assert error_of(submit(training["mlEndpoint"], training["apiKey"], {})) == (500, "InternalError", "InternalError")
    requests.post(add, json={"op": "submit", "drop": True}, timeout=10)
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        submit(training["mlEndpoint"], training["apiKey"], {})
    requests.post(add, json={"op": "submit", "fail": False, "delay_s": 1.0}, timeout=10)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{training['mlEndpoint']}?api-version=2.0", json={}, headers=auth(training["apiKey"]), timeout=0.3
        )
