"""Azure ML command jobs against a real Azurite over real HTTP: training, outputs, cancel, idempotent PUT."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite
from emulator import ilearner

from .aml import Aml, unique

pytestmark = pytest.mark.integration


def blob_of(blob_service: BlobServiceClient, aml: Aml, uri: str) -> bytes:
    """The bytes at an azureml://datastores/{default}/paths/... URI."""
    store = aml.ws["datastores"][0]
    prefix = f"azureml://datastores/{store['name']}/paths/"
    assert uri.startswith(prefix), uri
    data: bytes = blob_service.get_blob_client(store["container"], uri[len(prefix) :]).download_blob().readall()
    return data


@pytest.mark.parametrize("form", ["csv via datastore URI", "arff via blob URL"])
def test_command_job_trains_and_reports_its_outputs(
    aml: Aml, azurite: Azurite, blob_service: BlobServiceClient, container: str, training_csv: str, form: str
) -> None:
    if form.startswith("arff"):
        blob_service.get_blob_client(container, "train.arff").upload_blob(breast_cancer().to_arff())
        data_uri = f"{azurite.blob_endpoint}/{container}/train.arff"
    else:
        data_uri = training_csv
    name = unique("job")
    created = aml.call(
        "PUT", f"/jobs/{name}", aml.command_job({"training_data": {"jobInputType": "uri_file", "uri": data_uri}})
    )
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["status"] == "NotStarted"
    assert created.json()["properties"]["outputs"]["model"]["uri"] is None

    job = aml.wait_job(name)
    props = job["properties"]
    assert props["status"] == "Completed", props
    model_uri = props["outputs"]["model"]["uri"]
    assert model_uri == f"azureml://datastores/workspaceblobstore/paths/azureml/{name}/model/"
    descriptor = json.loads(blob_of(blob_service, aml, model_uri + "MLmodel"))
    assert descriptor["metadata"]["label_column"] == "class"
    assert descriptor["metadata"]["feature_columns"] == list(breast_cancer().names[:-1])
    model_bytes = blob_of(blob_service, aml, model_uri + "model.ilearner")
    model = ilearner.loads(model_bytes)
    assert model.training_job_id == name and len(model.feature_names) == 30
    assert descriptor["metadata"]["model_version"] == ilearner.version_of(model_bytes)
    metrics = json.loads(blob_of(blob_service, aml, props["outputs"]["metrics"]["uri"]))
    assert props["outputs"]["metrics"]["uri"].endswith(f"/azureml/{name}/metrics/metrics.json")
    assert {"AUC", "Accuracy", "Precision", "Recall", "F1 Score"} <= set(metrics) and 0.8 < metrics["AUC"] <= 1.0
    assert props["services"]["Tracking"]["endpoint"].startswith("azureml://")


def test_explicit_output_uris_are_written_and_echoed(
    aml: Aml, azurite: Azurite, blob_service: BlobServiceClient, container: str, training_csv: str
) -> None:
    model_uri = f"azureml://datastores/workspaceblobstore/paths/explicit/{container}/model/"
    metrics_uri = f"{azurite.blob_endpoint}/{container}/scores/metrics-out.json"
    job = aml.train(
        training_csv,
        outputs={
            "model": {"jobOutputType": "custom_model", "uri": model_uri},
            "eval": {"jobOutputType": "uri_file", "uri": metrics_uri},
        },
    )
    outputs = job["properties"]["outputs"]
    assert (outputs["model"]["uri"], outputs["eval"]["uri"]) == (model_uri, metrics_uri)
    ilearner.loads(blob_of(blob_service, aml, model_uri + "model.ilearner"))
    assert "AUC" in json.loads(
        blob_service.get_blob_client(container, "scores/metrics-out.json").download_blob().readall()
    )


def test_literal_inputs_tune_the_learner_and_show_in_mlflow(aml: Aml, training_csv: str) -> None:
    name = unique("tuned")
    inputs = {
        "training_data": {"jobInputType": "uri_file", "uri": training_csv},
        "regularization": {"jobInputType": "literal", "value": "0.001"},
        "label_column": {"jobInputType": "literal", "value": "class"},
    }
    aml.ok("PUT", f"/jobs/{name}", aml.command_job(inputs))
    assert aml.wait_job(name)["properties"]["status"] == "Completed"
    baseline = aml.train(training_csv)["name"]

    def run(job: str) -> dict[str, Any]:
        tracking = aml.ok("GET", f"/jobs/{job}")["properties"]["services"]["Tracking"]["endpoint"]
        url = tracking.replace("azureml://", "https://") + "/api/2.0/mlflow/runs/get"
        response = aml.http("GET", url, params={"run_id": job}, headers={"Authorization": f"Bearer {aml.token()}"})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["run"]
        return result

    tuned, default = run(name), run(baseline)
    assert tuned["info"]["status"] == "FINISHED"
    assert {"key": "regularization", "value": "0.001"} in tuned["data"]["params"]
    auc = {
        r["info"]["run_id"]: next(m["value"] for m in r["data"]["metrics"] if m["key"] == "AUC")
        for r in (tuned, default)
    }
    assert auc[name] != auc[baseline]  # C=0.001 regularises hard: a different model


def test_cancel_mid_run(aml: Aml, training_csv: str, aml_clean: None) -> None:
    name = unique("cancel")
    aml.fault({"kind": "aml_job", "job": name, "duration_s": 30})
    aml.ok(
        "PUT", f"/jobs/{name}", aml.command_job({"training_data": {"jobInputType": "uri_file", "uri": training_csv}})
    )
    from .helpers import wait_until

    wait_until(lambda: aml.ok("GET", f"/jobs/{name}")["properties"]["status"] == "Running", what="Running")
    cancel = aml.call("POST", f"/jobs/{name}/cancel")
    assert cancel.status_code == 202 and "Location" in cancel.headers and cancel.headers["Retry-After"].isdigit()
    assert aml.ok("GET", f"/jobs/{name}")["properties"]["status"] in ("CancelRequested", "Canceled")
    assert aml.wait_location(cancel).status_code == 200
    job = aml.ok("GET", f"/jobs/{name}")
    assert job["properties"]["status"] == "Canceled"
    assert job["properties"]["outputs"]["model"]["uri"] is None  # nothing was written
    again = aml.call("POST", f"/jobs/{name}/cancel")
    assert again.status_code == 200  # already ended: nothing to do


def test_put_with_an_existing_name(aml: Aml, training_csv: str) -> None:
    name = unique("idem")
    body = aml.command_job({"training_data": {"jobInputType": "uri_file", "uri": training_csv}}, tags={"run": "1"})
    assert aml.call("PUT", f"/jobs/{name}", body).status_code == 201
    same = aml.call("PUT", f"/jobs/{name}", body)
    assert same.status_code == 200, same.text
    finished = aml.wait_job(name)
    assert aml.state()["counters"]["jobs_created"] >= 1
    assert sum(1 for j in aml.state()["workspaces"][0]["jobs"] if j["name"] == name) == 1

    round_trip = finished | {"properties": finished["properties"] | {"tags": {"run": "2"}, "description": "re-tagged"}}
    updated = aml.call("PUT", f"/jobs/{name}", round_trip)
    assert updated.status_code == 200, updated.text
    assert updated.json()["properties"]["tags"] == {"run": "2"}
    assert updated.json()["properties"]["status"] == "Completed"

    changed = body | {"properties": body["properties"] | {"command": "python other.py --x ${{inputs.training_data}}"}}
    refused = aml.call("PUT", f"/jobs/{name}", changed)
    assert refused.status_code == 400
    error = refused.json()["error"]
    info = {i["type"]: i["info"]["value"] for i in error["additionalInfo"]}
    assert error["code"] == "UserError" and "cannot be changed" in error["message"]
    assert info["InnerError"]["code"] == "JobPropertyImmutable" and info["MessageParameters"] == {"property": "command"}
    assert info["ComponentName"] == "managementfrontend" and set(info["Correlation"]) == {"operation", "request"}


def test_injected_failure_and_missing_data_fail_the_job_with_details(
    aml: Aml, training_csv: str, aml_clean: None
) -> None:
    name = unique("fails")
    aml.fault({"kind": "aml_job", "job": name, "fail_message": "Out of memory in train.py"})
    failed = aml.train(training_csv, name=name)
    assert failed["properties"]["status"] == "Failed"
    missing = aml.train("azureml://datastores/workspaceblobstore/paths/data/absent.csv")
    assert missing["properties"]["status"] == "Failed"

    def details(job: str) -> dict[str, Any]:
        base = aml.ws["managementEndpoint"]
        url = f"{base}/history/v1.0{aml.ws['resourceId']}/runs/{job}/details"
        response = aml.http("GET", url, headers={"Authorization": f"Bearer {aml.token()}"})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    assert details(name)["error"]["error"]["message"] == "Out of memory in train.py"
    assert "absent.csv" in details(missing["name"])["error"]["error"]["message"]


def test_job_body_errors_are_400_naming_the_field(aml: Aml, training_csv: str) -> None:
    good = aml.command_job({"training_data": {"jobInputType": "uri_file", "uri": training_csv}})
    props = good["properties"]
    cases = [
        ({"properties": props | {"jobType": "Sweep"}}, "jobType"),
        ({"properties": {k: v for k, v in props.items() if k != "command"}}, "command"),
        ({"properties": props | {"environmentId": aml.ws["environmentId"].replace("/1", "/9")}}, "environmentId"),
        ({"properties": props | {"computeId": aml.ws["computeId"] + "x"}}, "computeId"),
        ({"properties": props | {"inputs": {"d": {"jobInputType": "uri_file", "uri": "ftp://x"}}}}, "inputs.d"),
        ({"properties": props | {"inputs": {"d": {"jobInputType": "parquet", "uri": training_csv}}}}, "jobInputType"),
        ({"properties": props | {"inputs": {"lr": {"jobInputType": "literal", "value": 0.1}}}}, "value"),
        ({"properties": props | {"tags": {"a": 1}}}, "tags"),
        ({"properties": props | {"command": "python x.py ${{inputs.nope}}"}}, "inputs.nope"),
        (
            {
                "properties": props
                | {"outputs": {"m": {"jobOutputType": "uri_file", "uri": "azureml://datastores/nostore/paths/x"}}}
            },
            "nostore",
        ),
        ({"properties": "x"}, "properties"),
    ]
    for body, field in cases:
        response = aml.call("PUT", f"/jobs/{unique('bad')}", body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["error"]["message"], (field, response.text)


def test_job_names_follow_the_pattern_and_unknown_jobs_are_404(aml: Aml, training_csv: str) -> None:
    body = aml.command_job({"training_data": {"jobInputType": "uri_file", "uri": training_csv}})
    for bad in ("-leading-dash", "x" * 256, "has.dot"):
        assert aml.call("PUT", f"/jobs/{bad}", body).status_code == 400, bad
    missing = aml.call("GET", "/jobs/never-submitted")
    assert missing.status_code == 404
    info = {i["type"]: i["info"]["value"] for i in missing.json()["error"]["additionalInfo"]}
    assert missing.json()["error"]["code"] == "UserError" and info["InnerError"]["code"] == "NotFound"
    assert aml.call("POST", "/jobs/never-submitted/cancel").status_code == 404
    listed = aml.ok("GET", "/jobs")
    assert isinstance(listed["value"], list)
    assert (
        requests.get(
            aml.url("/jobs/x").replace("?api-version=2024-04-01", ""),
            verify=aml.ca_file,
            timeout=10,
            headers={"Authorization": f"Bearer {aml.token()}"},
        ).json()["error"]["code"]
        == "MissingApiVersionParameter"
    )


def test_delete_a_job_and_read_the_workspace_resources_it_names(aml: Aml, training_csv: str) -> None:
    job = aml.train(training_csv)
    deleting = aml.call("DELETE", f"/jobs/{job['name']}")
    assert aml.wait_location(deleting).status_code == 204
    assert aml.call("GET", f"/jobs/{job['name']}").status_code == 404
    workspace = aml.ok("GET", "")
    assert workspace["properties"]["mlFlowTrackingUri"] == aml.ws["mlFlowTrackingUri"]
    auth = {"Authorization": f"Bearer {aml.token()}"}
    for resource in (aml.ws["computeId"], aml.ws["environmentId"]):
        assert (
            aml.http(
                "GET", f"{aml.ws['managementEndpoint']}{resource}?api-version=2024-04-01", headers=auth
            ).status_code
            == 200
        )
    stores = aml.ok("GET", "/datastores")["value"]
    assert [(d["name"], d["properties"]["isDefault"]) for d in stores] == [("workspaceblobstore", True)]
    assert aml.call("GET", "/computes/gpu-cluster").status_code == 404
