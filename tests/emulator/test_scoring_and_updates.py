"""RRS scoring, classic Update Resource, ARM web services and Azure AD, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.storage.blob import BlobServiceClient

from devhost.datasets import breast_cancer
from devhost.services import Azurite, Emulator
from emulator import ilearner

from .helpers import auth, blob_ref, run_job, sas_ref, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def scoring(services: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = services["webServices"][1]
    assert service["kind"] == "scoring"
    return service


@pytest.fixture
def seeded(scoring: dict[str, Any], emulator: Emulator) -> str:
    table = breast_cancer().head(40)
    response = requests.post(
        f"{emulator.http_base}/_emulator/web-services/{scoring['id']}/seed",
        json={"ColumnNames": list(table.names), "Values": [list(r) for r in table.rows]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    version: str = response.json()["model_version"]
    return version


def rrs(endpoint: dict[str, Any], rows: int = 20) -> requests.Response:
    names, values = breast_cancer().features(rows)
    body = {"Inputs": {"input1": {"ColumnNames": names, "Values": values}}, "GlobalParameters": {}}
    return requests.post(endpoint["rrsEndpoint"], json=body, headers=auth(endpoint["apiKey"]), timeout=30)


def train_model(services: dict[str, Any], azurite: Azurite, blob_service: BlobServiceClient, container: str) -> str:
    """Run a real training job and return the .ilearner blob name."""
    training = services["webServices"][0]
    cs = azurite.connection_string
    blob_service.get_blob_client(container, "full.arff").upload_blob(breast_cancer().to_arff())
    body = {
        "Inputs": {"input1": blob_ref(cs, container, "full.arff")},
        "Outputs": {
            "output1": blob_ref(cs, container, "model.ilearner"),
            "output2": blob_ref(cs, container, "eval.csv"),
        },
    }
    assert run_job(training["mlEndpoint"], training["apiKey"], body)["StatusCode"] == "Finished"
    return "model.ilearner"


def patch_body(scoring: dict[str, Any], location: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": [{"Name": scoring["resourceName"], "Location": location}]}


def test_rrs_response_shape(scoring: dict[str, Any], seeded: str) -> None:
    response = rrs(scoring["endpoints"][1], rows=3)
    assert response.status_code == 200, response.text
    table = response.json()["Results"]["output1"]
    assert table["type"] == "table"
    assert table["value"]["ColumnNames"][-2:] == ["Scored Labels", "Scored Probabilities"]
    assert len(table["value"]["Values"]) == 3
    assert response.headers["x-ms-emulator-model-version"] == seeded


def test_patch_with_retrained_model_changes_predictions(
    services: dict[str, Any],
    scoring: dict[str, Any],
    seeded: str,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
) -> None:
    endpoint = scoring["endpoints"][1]
    before = rrs(endpoint).json()["Results"]["output1"]["value"]["Values"]
    blob = train_model(services, azurite, blob_service, container)
    location = sas_ref(blob_service, container, blob)
    response = requests.patch(
        endpoint["updateResourceEndpoint"],
        json=patch_body(scoring, location),
        headers=auth(endpoint["apiKey"]),
        timeout=30,
    )
    assert response.status_code == 200, response.text

    new_version = wait_until(
        lambda: (v := rrs(endpoint).headers["x-ms-emulator-model-version"]) != seeded and v, what="model swap"
    )
    after = rrs(endpoint).json()["Results"]["output1"]["value"]["Values"]
    assert [row[-1] for row in after] != [row[-1] for row in before]
    assert new_version == ilearner.version_of(blob_service.get_blob_client(container, blob).download_blob().readall())
    shown = requests.get(endpoint["updateResourceEndpoint"], headers=auth(endpoint["apiKey"]), timeout=10).json()
    assert shown["Resources"][0]["Location"]["RelativeLocation"] == f"{container}/{blob}"
    assert shown["Resources"][0]["Location"]["SasBlobToken"] is None
    assert rrs(scoring["endpoints"][0]).headers["x-ms-emulator-model-version"] == seeded  # default endpoint untouched


def error_detail(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["details"][0]["code"]


def test_update_resource_errors(
    services: dict[str, Any],
    scoring: dict[str, Any],
    seeded: str,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
) -> None:
    default, endpoint2 = scoring["endpoints"]
    blob = train_model(services, azurite, blob_service, container)
    good = sas_ref(blob_service, container, blob)
    blob_service.get_blob_client(container, "corrupt.ilearner").upload_blob(b"ILEARNER-EMU 1\n{}\nxx")
    training = services["webServices"][0]
    cases = [
        (
            default["updateResourceEndpoint"],
            default["apiKey"],
            patch_body(scoring, good),
            (400, "DefaultEndpointNotUpdatable"),
        ),
        (
            training["endpoints"][0]["updateResourceEndpoint"],
            training["apiKey"],
            patch_body(scoring, good),
            (400, "NoUpdatableResources"),
        ),
        (
            endpoint2["updateResourceEndpoint"],
            endpoint2["apiKey"],
            {"Resources": [{"Name": "Other [trained model]", "Location": good}]},
            (400, "InvalidResourceName"),
        ),
        (
            endpoint2["updateResourceEndpoint"],
            endpoint2["apiKey"],
            patch_body(scoring, sas_ref(blob_service, container, blob, minutes=-1)),
            (400, "InvalidBlob"),
        ),
        (
            endpoint2["updateResourceEndpoint"],
            endpoint2["apiKey"],
            patch_body(scoring, good | {"SasBlobToken": "?sv=2020-01-01&sig=forged"}),
            (400, "InvalidBlob"),
        ),
        (
            endpoint2["updateResourceEndpoint"],
            endpoint2["apiKey"],
            patch_body(scoring, sas_ref(blob_service, container, "corrupt.ilearner")),
            (400, "InvalidModel"),
        ),
        (
            endpoint2["updateResourceEndpoint"],
            endpoint2["apiKey"],
            patch_body(scoring, sas_ref(blob_service, container, "absent.ilearner")),
            (400, "BlobNotFound"),
        ),
        (
            endpoint2["updateResourceEndpoint"],
            endpoint2["apiKey"],
            patch_body(scoring, sas_ref(blob_service, container, "eval.csv")),
            (400, "InvalidBlobExtension"),
        ),
        (endpoint2["updateResourceEndpoint"], endpoint2["apiKey"], {"Resources": "nope"}, (400, "RequestBodyInvalid")),
        (
            endpoint2["updateResourceEndpoint"],
            "wrong-key",
            patch_body(scoring, good),
            (401, "ScoreRequestUnauthorized"),
        ),
    ]
    for url, key, body, expected in cases:
        response = requests.patch(url, json=body, headers=auth(key), timeout=30)
        assert error_detail(response) == expected, (body, response.text)
    assert rrs(endpoint2).headers["x-ms-emulator-model-version"] == seeded  # nothing was swapped in


def test_new_endpoint_can_be_created_and_updated(scoring: dict[str, Any], seeded: str, emulator: Emulator) -> None:
    default = scoring["endpoints"][0]
    url = default["updateResourceEndpoint"].rsplit("/", 1)[0] + "/endpoint3"
    created = requests.put(
        url, json={"Description": "third", "ThrottleLevel": "Low"}, headers=auth(default["apiKey"]), timeout=10
    )
    assert created.status_code == 201, created.text
    assert created.json()["PreventUpdate"] is False
    listed = emulator.services()["webServices"][1]["endpoints"]
    assert [e["name"] for e in listed][-1] == "endpoint3"


def token_for(services: dict[str, Any], secret: str | None = None) -> str:
    principal = services["servicePrincipals"][0]
    credential = ClientSecretCredential(
        principal["tenant"],
        principal["servicePrincipalId"],
        secret or principal["servicePrincipalKey"],
        authority=services["authorityHost"],
        disable_instance_discovery=True,
        connection_verify=services["caFile"],
    )
    return credential.get_token("https://management.azure.com/.default").token


def test_client_secret_credential_gets_a_token_over_tls(services: dict[str, Any]) -> None:
    assert services["authorityHost"].startswith("https://")
    assert token_for(services).count(".") == 2
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        token_for(services, secret="not-the-secret")


def test_arm_patch_moves_asset_uri_and_reaches_succeeded(
    services: dict[str, Any],
    seeded: str,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
    emulator: Emulator,
) -> None:
    url, ca = services["armWebServices"][0]["updateResourceEndpoint"], services["caFile"]
    headers = auth(token_for(services))
    definition = requests.get(url, headers=headers, verify=ca, timeout=10).json()
    assert "keys" not in definition["properties"]
    asset_id, asset = next(
        (k, a) for k, a in definition["properties"]["assets"].items() if a["name"].endswith("[trained model]")
    )
    blob = train_model(services, azurite, blob_service, container)
    location = sas_ref(blob_service, container, blob)
    asset["locationInfo"] = {
        "uri": location["BaseLocation"] + location["RelativeLocation"],
        "credentials": location["SasBlobToken"],
    }
    patched = requests.patch(
        url, json={"properties": {"assets": {asset_id: asset}}}, headers=headers, verify=ca, timeout=10
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["properties"]["provisioningState"] == "Provisioning"
    operation = patched.headers["Azure-AsyncOperation"]
    wait_until(
        lambda: requests.get(operation, headers=headers, verify=ca, timeout=10).json()["status"] == "Succeeded",
        what="Succeeded",
    )
    after = requests.get(url, headers=headers, verify=ca, timeout=10).json()
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert after["properties"]["assets"][asset_id]["locationInfo"] == {
        "uri": location["BaseLocation"] + location["RelativeLocation"]
    }
    keys = requests.get(url.replace("?", "/listKeys?"), headers=headers, verify=ca, timeout=10).json()
    assert set(keys) == {"primary", "secondary"}
    served = requests.get(f"{emulator.http_base}/_emulator/state", timeout=10).json()["arm_web_services"][0]
    assert served["model_version"] != seeded


def test_arm_errors(services: dict[str, Any]) -> None:
    url, ca = services["armWebServices"][0]["updateResourceEndpoint"], services["caFile"]
    assert requests.get(url, verify=ca, timeout=10).json()["error"]["code"] == "AuthenticationFailed"
    assert (
        requests.get(url, headers=auth("a.b.c"), verify=ca, timeout=10).json()["error"]["code"]
        == "InvalidAuthenticationToken"
    )
    headers = auth(token_for(services))
    bad_version = requests.get(url.replace("2016-05-01-preview", "2099-01-01"), headers=headers, verify=ca, timeout=10)
    assert (bad_version.status_code, bad_version.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    missing = requests.get(url.replace("myWebService", "nope"), headers=headers, verify=ca, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ResourceNotFound")
    bad_body = requests.patch(
        url, json={"properties": {"assets": {"assetX": {}}}}, headers=headers, verify=ca, timeout=10
    )
    assert (bad_body.status_code, bad_body.json()["error"]["code"]) == (400, "InvalidRequestContent")
    not_json = requests.patch(
        url, data=b"{", headers=headers | {"Content-Type": "application/json"}, verify=ca, timeout=10
    )
    assert not_json.status_code == 400


def test_arm_update_that_fails_provisioning(
    services: dict[str, Any], seeded: str, emulator: Emulator, clean_faults: None
) -> None:
    url, ca = services["armWebServices"][0]["updateResourceEndpoint"], services["caFile"]
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "update", "target": "myWebService", "fail_message": "disk full"},
        timeout=10,
    )
    headers = auth(token_for(services))
    patched = requests.patch(url, json={"properties": {"title": "x"}}, headers=headers, verify=ca, timeout=10)
    operation = patched.headers["Azure-AsyncOperation"]
    status = wait_until(
        lambda: (
            (s := requests.get(operation, headers=headers, verify=ca, timeout=10).json())["status"] != "Provisioning"
            and s
        ),
        what="end",
    )
    assert status["status"] == "Failed"
    assert status["errorInfo"]["message"] == "disk full"


def test_services_listing_names_everything_tools_need(services: dict[str, Any]) -> None:
    assert services["webServices"][0]["mlEndpoint"].endswith("/jobs")
    endpoint2 = services["webServices"][1]["endpoints"][1]
    assert endpoint2["name"] == "endpoint2" and endpoint2["updatable"] is True
    assert "/webservices/" in endpoint2["updateResourceEndpoint"]
    assert services["armWebServices"][0]["name"] == "myWebService"
    assert services["servicePrincipals"][0]["tenant"] == "mycompany.com"
    assert services["caFile"].endswith("ca.pem")


def test_bes_scoring_job_turns_input_csv_into_scored_csv(
    scoring: dict[str, Any], seeded: str, azurite: Azurite, blob_service: BlobServiceClient, container: str
) -> None:
    endpoint = scoring["endpoints"][1]
    names, values = breast_cancer().features(10)
    blob_service.get_blob_client(container, "unlabelled.csv").upload_blob(
        (",".join(names) + "\n" + "\n".join(",".join(str(v) for v in row) for row in values) + "\n").encode()
    )
    body = {
        "Inputs": {"input1": blob_ref(azurite.connection_string, container, "unlabelled.csv")},
        "Outputs": {"output1": blob_ref(azurite.connection_string, container, "scored.csv")},
    }
    status = run_job(endpoint["mlEndpoint"], endpoint["apiKey"], body)
    assert status["StatusCode"] == "Finished", status
    scored = blob_service.get_blob_client(container, "scored.csv").download_blob().readall().decode().splitlines()
    assert scored[0].endswith("Scored Labels,Scored Probabilities") and len(scored) == 11


def test_arm_put_works_on_both_api_versions(services: dict[str, Any], seeded: str) -> None:
    url, ca = services["armWebServices"][0]["updateResourceEndpoint"], services["caFile"]
    headers = auth(token_for(services))
    for version in ("2016-05-01-preview", "2017-01-01"):
        put = requests.put(
            url.replace("2016-05-01-preview", version),
            json={"properties": {"title": f"v {version}"}},
            headers=headers,
            verify=ca,
            timeout=10,
        )
        assert put.status_code == 200, put.text
        assert put.json()["properties"]["title"] == f"v {version}"


def test_update_that_never_applies_keeps_the_old_model(
    scoring: dict[str, Any],
    seeded: str,
    services: dict[str, Any],
    azurite: Azurite,
    blob_service: BlobServiceClient,
    container: str,
    emulator: Emulator,
    clean_faults: None,
) -> None:
    import time

    endpoint2 = scoring["endpoints"][1]
    requests.post(
        f"{emulator.http_base}/_emulator/faults",
        json={"kind": "update", "target": endpoint2["service_id"], "never_succeed": True},
        timeout=10,
    )
    blob = train_model(services, azurite, blob_service, container)
    response = requests.patch(
        endpoint2["updateResourceEndpoint"],
        json=patch_body(scoring, sas_ref(blob_service, container, blob)),
        headers=auth(endpoint2["apiKey"]),
        timeout=30,
    )
    assert response.status_code == 200  # accepted, as the real service did, yet never applied
    time.sleep(0.5)
    assert rrs(endpoint2).headers["x-ms-emulator-model-version"] == seeded
