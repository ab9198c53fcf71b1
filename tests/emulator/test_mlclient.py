"""Microsoft's own Azure ML client (`azure.ai.ml.MLClient`, unchanged) against the emulator as a custom cloud.

The cloud's `resource_manager` is the emulator's management endpoint and `active_directory` its
authority host; TLS trusts the emulator's CA through `REQUESTS_CA_BUNDLE`, which the SDK's
transport (requests) reads. Nothing in the SDK is patched: it sends the api-versions it was built with.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devhost.datasets import breast_cancer

from .aml import Aml, unique
from .helpers import wait_until

pytestmark = pytest.mark.integration

ml = pytest.importorskip("azure.ai.ml")


@pytest.fixture(scope="module")
def client(aml: Aml) -> Iterator[Any]:
    ws = aml.ws
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = aml.ca_file
    credential = aml.credential()
    cloud = f"Emulator{unique('c')}"
    yield ml.MLClient(
        credential,
        ws["subscriptionId"],
        ws["resourceGroup"],
        ws["name"],
        cloud=cloud,
        cloud_metadata={
            "azure_portal": ws["managementEndpoint"] + "/",
            "resource_manager": ws["managementEndpoint"] + "/",
            "active_directory": ws["authorityHost"] + "/",
            "aml_resource_id": "https://ml.azure.com/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": ws["managementEndpoint"] + "/",
        },
    )
    if saved is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = saved


def test_workspace_get(client: Any, aml: Aml) -> None:
    ws = client.workspaces.get(aml.ws["name"])
    assert ws.name == aml.ws["name"]
    assert ws.location == aml.ws["location"]
    assert ws.mlflow_tracking_uri == aml.ws["mlFlowTrackingUri"]


def test_datastores(client: Any, aml: Aml) -> None:
    stores = list(client.datastores.list())
    assert [s.name for s in stores] == [d["name"] for d in aml.ws["datastores"]]
    default = client.datastores.get_default()
    assert default.name == next(d["name"] for d in aml.ws["datastores"] if d["default"])


@pytest.fixture(scope="module")
def trained(client: Any, aml: Aml, training_csv: str) -> Any:
    """A command job (no local code) submitted through the SDK, streamed to its end."""
    job = ml.command(
        command="python train.py --data ${{inputs.training_data}} --model ${{outputs.model}}",
        environment=f"azureml:{aml.ws['environmentId'].split('/environments/')[1].replace('/versions/', ':')}",
        compute=aml.ws["computeId"].rsplit("/", 1)[1],
        inputs={"training_data": ml.Input(type="uri_file", path=training_csv)},
        outputs={"model": ml.Output(type="mlflow_model")},
        experiment_name="mlclient",
        display_name="sdk-train",
        name=unique("sdk"),
    )
    created = client.jobs.create_or_update(job)
    assert created.status in ("NotStarted", "Starting", "Preparing", "Queued", "Running")
    streamed = io.StringIO()
    with contextlib.redirect_stdout(streamed):
        client.jobs.stream(created.name)
    return client.jobs.get(created.name), streamed.getvalue()


def test_jobs_create_stream_get(trained: Any) -> None:
    job, streamed = trained
    assert job.status == "Completed"
    assert job.display_name == "sdk-train" and job.experiment_name == "mlclient"
    assert job.outputs["model"].path.startswith("azureml://datastores/")
    assert f"RunId: {job.name}" in streamed and "Execution Summary" in streamed
    assert "metric Accuracy = " in streamed, streamed


def test_jobs_list(client: Any, trained: Any) -> None:
    listed = {j.name: j for j in client.jobs.list()}
    assert listed[trained[0].name].status == "Completed"


def test_code_asset_versions(aml: Aml) -> None:
    name, uri = unique("code"), "azureml://datastores/workspaceblobstore/paths/code/train/"
    created = aml.call("PUT", f"/codes/{name}/versions/1", {"properties": {"codeUri": uri}})
    assert created.status_code == 201, created.text
    assert aml.call("PUT", f"/codes/{name}/versions/1", {"properties": {"codeUri": uri}}).status_code == 200
    moved = aml.call("PUT", f"/codes/{name}/versions/1", {"properties": {"codeUri": uri + "x/"}})
    assert moved.status_code == 400
    assert aml.ok("GET", f"/codes/{name}/versions/1")["properties"]["codeUri"] == uri
    assert [v["name"] for v in aml.ok("GET", f"/codes/{name}/versions")["value"]] == ["1"]
    assert aml.ok("GET", f"/codes/{name}")["properties"]["nextVersion"] == "2"


def test_jobs_begin_cancel(client: Any, aml: Aml, training_csv: str, aml_clean: None) -> None:
    """A job whose code is an existing code asset (no upload), canceled while it runs."""
    code = unique("code")
    aml.ok(
        "PUT",
        f"/codes/{code}/versions/1",
        {"properties": {"codeUri": "azureml://datastores/workspaceblobstore/paths/c/"}},
    )
    aml.settings(timings={"job_running_s": 30})
    job = ml.command(
        code=f"{aml.ws['resourceId']}/codes/{code}/versions/1",
        command="python train.py --data ${{inputs.training_data}}",
        environment=f"azureml:{aml.ws['environmentId'].split('/environments/')[1].replace('/versions/', ':')}",
        compute=aml.ws["computeId"].rsplit("/", 1)[1],
        inputs={"training_data": ml.Input(type="uri_file", path=training_csv)},
        name=unique("cancel"),
    )
    created = client.jobs.create_or_update(job)
    assert created.code.endswith(f"/codes/{code}/versions/1"), created.code
    client.jobs.begin_cancel(created.name).result()
    assert client.jobs.get(created.name).status in ("CancelRequested", "Canceled")
    assert wait_until(lambda: client.jobs.get(created.name).status == "Canceled", 10)


@pytest.fixture(scope="module")
def model(client: Any, trained: Any) -> Any:
    """The trained job's model output registered through the SDK."""
    name = unique("sdkmodel")
    entity = ml.entities.Model(
        name=name, version="1", type="mlflow_model", path=f"azureml://jobs/{trained[0].name}/outputs/model"
    )
    return client.models.create_or_update(entity)


def test_models_create_get_list(client: Any, model: Any, trained: Any) -> None:
    assert model.version == "1" and model.type == "mlflow_model"
    got = client.models.get(model.name, version="1")
    assert got.version == "1"
    assert got.path == f"azureml://jobs/{trained[0].name}/outputs/model"
    assert [m.version for m in client.models.list(name=model.name)] == ["1"]
    assert model.name in {m.name for m in client.models.list()}


@pytest.fixture(scope="module")
def endpoint(client: Any, aml: Aml, model: Any) -> str:
    """An online endpoint with one no-code (MLflow) deployment, both made through the SDK."""
    name = unique("sdkep")
    created = client.online_endpoints.begin_create_or_update(
        ml.entities.ManagedOnlineEndpoint(name=name, auth_mode="key")
    ).result()
    assert created.provisioning_state == "Succeeded"
    deployment = ml.entities.ManagedOnlineDeployment(
        name="blue",
        endpoint_name=name,
        model=f"azureml:{model.name}:{model.version}",
        instance_type="Standard_DS3_v2",
        instance_count=1,
    )
    client.online_deployments.begin_create_or_update(deployment).result()
    return name


def test_online_endpoint_traffic_change_get_list(client: Any, endpoint: str) -> None:
    current = client.online_endpoints.get(endpoint)
    assert current.traffic.get("blue", 0) == 0
    current.traffic = {"blue": 100}
    started = time.monotonic()
    updated = client.online_endpoints.begin_create_or_update(current).result()
    assert time.monotonic() - started < 10
    assert updated.traffic == {"blue": 100}
    assert client.online_endpoints.get(endpoint).traffic == {"blue": 100}
    assert endpoint in {e.name for e in client.online_endpoints.list()}


def test_online_endpoint_keys_and_invoke(client: Any, endpoint: str, tmp_path: Any) -> None:
    keys = client.online_endpoints.get_keys(endpoint)
    assert keys.primary_key and keys.secondary_key
    names, values = breast_cancer().features(2)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"input_data": {"columns": names, "index": [0, 1], "data": values}}))
    answer = json.loads(client.online_endpoints.invoke(endpoint, request_file=str(request), deployment_name="blue"))
    assert [row["label"] for row in answer] == ["malignant", "malignant"], answer
    assert all(0.5 < row["probability"] <= 1 for row in answer), answer


def test_online_deployments_list_get_logs(client: Any, endpoint: str, model: Any) -> None:
    assert [d.name for d in client.online_deployments.list(endpoint)] == ["blue"]
    blue = client.online_deployments.get("blue", endpoint)
    assert blue.provisioning_state == "Succeeded" and blue.instance_count == 1
    assert f"/models/{model.name}/versions/1" in blue.model
    assert isinstance(client.online_deployments.get_logs("blue", endpoint, lines=10), str)


def test_batch_endpoints_list_get(client: Any, aml: Aml) -> None:
    configured = aml.ws["batchEndpoints"][0]["name"]
    assert configured in {e.name for e in client.batch_endpoints.list()}
    got = client.batch_endpoints.get(configured)
    assert got.scoring_uri == aml.ws["batchEndpoints"][0]["scoringUri"]


def test_api_versions_follow_the_resource_type_and_unknown_ones_are_refused(aml: Aml) -> None:
    """Preview versions the SDK sends are accepted; a workspace-only version is refused on a v2 resource."""
    auth = {"Authorization": f"Bearer {aml.token()}"}
    base = aml.ws["managementEndpoint"] + aml.ws["resourceId"]

    def status(path: str, version: str) -> tuple[int, str | None]:
        response = aml.http("GET", f"{base}{path}?api-version={version}", headers=auth)
        return response.status_code, (response.json().get("error") or {}).get("code") if response.content else None

    for version in ("2022-02-01-preview", "2023-04-01-preview", "2024-01-01-preview", "2025-12-01"):
        assert status("/onlineEndpoints", version)[0] == 200, version
    assert status("", "2021-07-01")[0] == 200
    assert status("/jobs", "2021-07-01") == (400, "InvalidApiVersionParameter")
    assert status("/jobs", "2024-13-01-preview") == (400, "InvalidApiVersionParameter")


def test_arm_accepts_its_own_endpoint_as_audience_and_refuses_others(aml: Aml) -> None:
    own = aml.token(aml.ws["managementEndpoint"])
    assert aml.call("GET", "", token=own).status_code == 200
    other = aml.call("GET", "", token=aml.token("https://ml.azure.com"))
    assert (other.status_code, other.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")
