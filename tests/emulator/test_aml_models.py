"""The Azure ML model registry and seeding, over real HTTP against Azurite."""

from __future__ import annotations

import pytest
import requests

from devhost.datasets import breast_cancer

from .aml import Aml, unique

pytestmark = pytest.mark.integration


def test_version_registered_from_a_job_output(aml: Aml, training_csv: str) -> None:
    job = aml.train(training_csv)
    name = unique("model")
    uri = f"azureml://jobs/{job['name']}/outputs/model/paths/"
    created = aml.call(
        "PUT",
        f"/models/{name}/versions/1",
        {
            "properties": {
                "modelUri": uri,
                "modelType": "mlflow_model",
                "jobName": job["name"],
                "tags": {"candidate": "true"},
                "properties": {"source_job": job["name"]},
                "description": "first",
            }
        },
    )
    assert created.status_code == 201, created.text
    props = created.json()["properties"]
    assert (props["modelUri"], props["jobName"], props["provisioningState"]) == (uri, job["name"], "Succeeded")
    assert created.json()["id"].endswith(f"/models/{name}/versions/1")

    same = aml.call(
        "PUT",
        f"/models/{name}/versions/1",
        {
            "properties": {
                "modelUri": uri,
                "tags": {"promoted": "yes"},
                "properties": {"source_job": "changed", "extra": "x"},
                "stage": "Production",
            }
        },
    )
    assert same.status_code == 200, same.text
    props = same.json()["properties"]
    assert props["tags"] == {"promoted": "yes"}  # tags are replaced
    assert props["properties"] == {"source_job": job["name"], "extra": "x"}  # properties are add-only
    assert props["stage"] == "Production" and props["jobName"] == job["name"]

    moved = aml.call("PUT", f"/models/{name}/versions/1", {"properties": {"modelUri": uri + "elsewhere/"}})
    assert moved.status_code == 400
    assert (moved.json()["error"]["code"], moved.json()["error"]["message"]) == (
        "UserError",
        "Asset paths cannot be updated.",
    )

    container = aml.ok("GET", f"/models/{name}")["properties"]
    assert (container["latestVersion"], container["nextVersion"]) == ("1", "2")
    missing = aml.call("GET", f"/models/{name}/versions/7")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "UserError"
    assert aml.call("GET", f"/models/{unique('none')}").status_code == 404


def test_list_versions_orders_by_creation_filters_and_pages(aml: Aml, training_csv: str, aml_clean: None) -> None:
    name = unique("listed")
    uri = "azureml://datastores/workspaceblobstore/paths/somewhere/"
    for version, tags in (("3", {"k": "a"}), ("1", {"k": "b"}), ("2", {})):  # created out of numeric order
        aml.register(name, version, uri + version + "/", tags=tags)
    newest_first = [v["name"] for v in aml.ok("GET", f"/models/{name}/versions")["value"]]
    assert newest_first == ["2", "1", "3"]
    latest = aml.http(
        "GET",
        aml.url(f"/models/{name}/versions") + "&$orderBy=createdtime desc&$top=1",
        headers={"Authorization": f"Bearer {aml.token()}"},
    ).json()["value"]
    assert [v["name"] for v in latest] == ["2"]
    assert aml.ok("GET", f"/models/{name}")["properties"]["nextVersion"] == "4"
    tagged = aml.http(
        "GET", aml.url(f"/models/{name}/versions") + "&tags=k=a", headers={"Authorization": f"Bearer {aml.token()}"}
    ).json()
    assert [v["name"] for v in tagged["value"]] == ["3"]

    aml.settings(pageSize=2)
    first = aml.http(
        "GET",
        aml.url(f"/models/{name}/versions") + "&$orderBy=createdtime asc",
        headers={"Authorization": f"Bearer {aml.token()}"},
    ).json()
    assert [v["name"] for v in first["value"]] == ["3", "1"] and "$skip=2" in first["nextLink"]
    rest = aml.http("GET", first["nextLink"], headers={"Authorization": f"Bearer {aml.token()}"}).json()
    assert [v["name"] for v in rest["value"]] == ["2"] and "nextLink" not in rest
    for bad in ("&$top=0", "&$top=x", "&$skip=-1", "&$orderBy=name"):
        assert (
            aml.http(
                "GET", aml.url(f"/models/{name}/versions") + bad, headers={"Authorization": f"Bearer {aml.token()}"}
            ).status_code
            == 400
        )


def test_model_version_body_errors(aml: Aml) -> None:
    name = unique("badmodel")
    for body in (
        {"properties": {}},
        {"properties": {"modelUri": 5}},
        {"properties": {"modelUri": "s3://bucket/x"}},
        {"properties": {"modelUri": "azureml://datastores/w/paths/x", "tags": ["a"]}},
        {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/x", "jobName": "no-such-job"}},
        {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/x", "isArchived": "yes"}},
    ):
        response = aml.call("PUT", f"/models/{name}/versions/1", body)
        assert response.status_code == 400, (body, response.text)
    assert (
        aml.call(
            "PUT",
            "/models/bad name/versions/1",
            {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/x"}},
        ).status_code
        == 400
    )


def test_seed_registers_deploys_and_is_repeatable(aml: Aml) -> None:
    first = aml.seed("seeded-model")
    assert (first["model"], first["version"], first["deployment"]) == ("seeded-model", "1", "blue")
    version = aml.ok("GET", "/models/seeded-model/versions/1")["properties"]
    assert version["tags"] == {"source": "seed"} and version["modelUri"].endswith("/paths/seed/seeded-model/1/")
    endpoint = aml.ws["onlineEndpoints"][0]["name"]
    assert aml.ok("GET", f"/onlineEndpoints/{endpoint}")["properties"]["traffic"] == {"blue": 100}
    scored = aml.score(endpoint)
    assert scored.status_code == 200, scored.text
    assert scored.headers["azureml-model-deployment"] == "blue"
    assert scored.headers["x-ms-emulator-model-version"] == first["modelVersion"]
    assert [set(row) for row in scored.json()] == [{"label", "probability"}] * 3

    again = aml.seed("seeded-model", rows=120)
    assert again["version"] == "1" and again["modelVersion"] != first["modelVersion"]
    assert aml.score(endpoint).headers["x-ms-emulator-model-version"] == again["modelVersion"]
    batch = aml.ws["batchEndpoints"][0]["name"]
    assert aml.ok("GET", f"/batchEndpoints/{batch}")["properties"]["defaults"]["deploymentName"] == "blue"

    table = breast_cancer().head(10)
    for body in (
        {"ColumnNames": list(table.names), "Values": [list(r) for r in table.rows]},  # no model name
        {"ColumnNames": "x", "Values": [], "model": "m"},
        {"ColumnNames": ["a", "b"], "Values": [[1, "x"], [2, "y"]], "model": "one-class"},
    ):
        response = requests.post(
            f"{aml.admin}/_emulator/azure-ml/workspaces/{aml.ws['name']}/seed", json=body, timeout=30
        )
        assert response.status_code == 400, response.text
    assert requests.post(f"{aml.admin}/_emulator/azure-ml/workspaces/nope/seed", json={}, timeout=10).status_code == 404
