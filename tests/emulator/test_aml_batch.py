"""Batch endpoints: deployments through the LRO, invocation with an ml.azure.com token, a scored file in Azurite."""

from __future__ import annotations

from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite

from .aml import Aml, registered_from_job, unique

pytestmark = pytest.mark.integration


def unlabelled_csv(rows: int) -> bytes:
    names, values = breast_cancer().features(rows)
    return (",".join(names) + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in values)).encode()


def test_batch_deployment_scores_a_file_into_storage(
    aml: Aml, azurite: Azurite, blob_service: BlobServiceClient, container: str, training_csv: str
) -> None:
    endpoint = aml.ws["batchEndpoints"][0]["name"]
    model = registered_from_job(aml, training_csv)
    body = {
        "location": aml.ws["location"],
        "properties": {
            "model": {"referenceType": "Id", "assetId": model},
            "compute": aml.ws["computeId"],
            "miniBatchSize": "5",
            "retrySettings": {"maxRetries": "2", "timeout": "PT30S"},
            "outputFileName": "scores.csv",
            "outputAction": "AppendRow",
        },
    }
    created = aml.call("PUT", f"/batchEndpoints/{endpoint}/deployments/{unique('bd')}", body)
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["miniBatchSize"] == 5  # the REST sample's strings are coerced
    assert aml.wait_operation(created)["status"] == "Succeeded"
    deployment = created.json()["name"]
    definition = aml.ok("GET", f"/batchEndpoints/{endpoint}")
    definition["properties"]["defaults"] = {"deploymentName": deployment}
    assert aml.wait_operation(aml.call("PUT", f"/batchEndpoints/{endpoint}", definition))["status"] == "Succeeded"

    blob_service.get_blob_client(container, "in/unlabelled.csv").upload_blob(unlabelled_csv(12))
    invoke = {
        "properties": {
            "InputData": {
                "in1": {"JobInputType": "UriFile", "Uri": f"{azurite.blob_endpoint}/{container}/in/unlabelled.csv"}
            }
        }
    }
    scoring_uri = aml.ws["batchEndpoints"][0]["scoringUri"]
    ml_token = aml.token("https://ml.azure.com")
    response = aml.http("POST", scoring_uri, json=invoke, headers={"Authorization": f"Bearer {ml_token}"})
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["properties"]["status"] == "NotStarted" and started["id"].endswith(f"/jobs/{started['name']}")
    job = aml.wait_job(started["name"])
    assert job["properties"]["status"] == "Completed", job
    assert job["properties"]["tags"]["azureml.batchrun"] == "true"
    out = job["properties"]["outputs"]["score"]["uri"]
    store = aml.ws["datastores"][0]
    path = out.split("/paths/", 1)[1] + "scores.csv"
    scored = blob_service.get_blob_client(store["container"], path).download_blob().readall().decode().splitlines()
    assert scored[0].endswith(",label,probability") and len(scored) == 13
    assert {line.split(",")[-2] for line in scored[1:]} <= {"malignant", "benign"}

    folder_out = f"azureml://datastores/{store['name']}/paths/batch-out/{container}/"
    camel = {
        "properties": {
            "inputData": {"in1": {"jobInputType": "UriFolder", "uri": f"{azurite.blob_endpoint}/{container}/in/"}},
            "outputData": {"out1": {"jobOutputType": "UriFolder", "uri": folder_out}},
        }
    }
    again = aml.http(
        "POST",
        scoring_uri,
        json=camel,
        headers={"Authorization": f"Bearer {ml_token}", "azureml-model-deployment": deployment},
    )
    assert again.status_code == 200, again.text
    assert aml.wait_job(again.json()["name"])["properties"]["status"] == "Completed"
    assert blob_service.get_blob_client(store["container"], f"batch-out/{container}/scores.csv").exists()


def test_batch_invoke_errors(aml: Aml, azurite: Azurite, container: str) -> None:
    scoring_uri = aml.ws["batchEndpoints"][0]["scoringUri"]
    good = {
        "properties": {
            "inputData": {"in1": {"jobInputType": "UriFile", "uri": f"{azurite.blob_endpoint}/{container}/x.csv"}}
        }
    }
    arm_token = {"Authorization": f"Bearer {aml.token()}"}
    assert aml.http("POST", scoring_uri, json=good, headers=arm_token).status_code == 401  # wrong audience
    assert aml.http("POST", scoring_uri, json=good).status_code == 401
    ml = {"Authorization": f"Bearer {aml.token('https://ml.azure.com')}"}
    bad_bodies: list[Any] = [
        {},
        {"properties": {"inputData": {}}},
        {"properties": {"inputData": {"a": {"jobInputType": "MLTable", "uri": "x"}}}},
        {"properties": {"inputData": {"a": {"jobInputType": "UriFile", "uri": 3}}}},
        [1],
    ]
    for body in bad_bodies:
        assert aml.http("POST", scoring_uri, json=body, headers=ml).status_code == 400, body
    unknown = aml.http("POST", scoring_uri, json=good, headers=ml | {"azureml-model-deployment": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["message"].startswith(
        "No valid deployments to route to"
    )
