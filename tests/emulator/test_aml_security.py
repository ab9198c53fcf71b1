"""Azure ML's ARM front door: tokens, api-versions, unknown ids, hostile input, injected call faults."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.identity import ClientSecretCredential

from .aml import Aml, unique

pytestmark = pytest.mark.integration

LEAKS = ("Traceback", 'File "', "/work/", "site-packages", '.py"')


def error_code(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_a_real_client_secret_credential_token_is_required_and_accepted(
    aml: Aml, services: dict[str, Any], aml_clean: None
) -> None:
    assert aml.call("GET", "").status_code == 200
    no_token = aml.http("GET", aml.url())
    assert error_code(no_token) == (401, "AuthenticationFailed")
    assert "additionalInfo" not in no_token.json()["error"]  # ARM itself answers, not the provider
    assert error_code(aml.call("GET", "", token="a.b.c")) == (401, "InvalidAuthenticationToken")
    storage_token = aml.token("https://storage.azure.com")
    assert error_code(aml.call("GET", "", token=storage_token)) == (401, "InvalidAuthenticationToken")

    studio = services["servicePrincipals"][0]  # same tenant, but no role on the workspace
    other = ClientSecretCredential(
        studio["tenant"],
        studio["servicePrincipalId"],
        studio["servicePrincipalKey"],
        authority=services["authorityHost"],
        disable_instance_discovery=True,
        connection_verify=services["caFile"],
    )
    denied = aml.call("GET", "/jobs", token=other.get_token("https://management.azure.com/.default").token)
    assert error_code(denied) == (403, "AuthorizationFailed")

    aml.fault({"kind": "token", "lifetime_s": 1, "client_id": aml.ws["servicePrincipalId"]})
    fresh = ClientSecretCredential(
        aml.ws["tenant"],
        aml.ws["servicePrincipalId"],
        aml.ws["servicePrincipalKey"],
        authority=aml.ws["authorityHost"],
        disable_instance_discovery=True,
        connection_verify=aml.ca_file,
    )
    short = fresh.get_token("https://management.azure.com/.default").token
    assert aml.call("GET", "", token=short).status_code == 200
    time.sleep(1.2)
    assert error_code(aml.call("GET", "", token=short)) == (401, "InvalidAuthenticationToken")


def test_api_versions_unknown_ids_and_path_case(aml: Aml) -> None:
    auth = {"Authorization": f"Bearer {aml.token()}"}
    base = aml.ws["managementEndpoint"] + aml.ws["resourceId"]
    assert error_code(aml.http("GET", base, headers=auth)) == (400, "MissingApiVersionParameter")
    assert error_code(aml.http("GET", base + "?api-version=1999-01-01", headers=auth)) == (
        400,
        "InvalidApiVersionParameter",
    )
    sub, rg = aml.ws["subscriptionId"], aml.ws["resourceGroup"]
    assert error_code(
        aml.http("GET", aml.url().replace(sub, "11111111-1111-1111-1111-111111111111"), headers=auth)
    ) == (404, "SubscriptionNotFound")
    assert error_code(aml.http("GET", aml.url().replace(rg, "other-rg"), headers=auth)) == (
        404,
        "ResourceGroupNotFound",
    )
    assert error_code(aml.http("GET", aml.url().replace("retrain-ws", "other-ws"), headers=auth)) == (
        404,
        "ResourceNotFound",
    )
    endpoint = aml.ws["onlineEndpoints"][0]["name"]
    shouting = (
        aml.url(f"/ONLINEENDPOINTS/{endpoint}")
        .replace("/resourceGroups/", "/RESOURCEGROUPS/")
        .replace("Microsoft.MachineLearningServices", "microsoft.machinelearningservices")
    )
    assert aml.http("GET", shouting, headers=auth).json()["name"] == endpoint
    lower_keys = aml.http("POST", aml.url(f"/onlineEndpoints/{endpoint}/listkeys"), headers=auth)
    assert lower_keys.status_code == 200 and set(lower_keys.json()) == {"primaryKey", "secondaryKey"}
    assert aml.call("GET", "/jobs/Some-Job").status_code == 404  # job names keep their case
    assert error_code(aml.call("GET", "/notAResourceType/x")) == (404, "InvalidResourceType")


def test_hostile_input_gets_4xx_without_leaks(aml: Aml) -> None:
    auth = {"Authorization": f"Bearer {aml.token()}", "Content-Type": "application/json"}
    job = aml.url(f"/jobs/{unique('hostile')}")
    endpoint = aml.url(f"/onlineEndpoints/{unique('hostile')}")
    answers = [
        aml.http("PUT", job, data=b"{not json", headers=auth),
        aml.http("PUT", job, data=b"\xff\xfe\x00", headers=auth),
        aml.http("PUT", job, data=b"[1, 2]", headers=auth),
        aml.http("PUT", job, data=b'{"properties": {"jobType": "Command", "command": "\\ud800"}}', headers=auth),
        aml.http(
            "PUT",
            job,
            data=b'{"properties": {"jobType": "Command", "command": "x", "environmentId": null}}',
            headers=auth,
        ),
        aml.http("PUT", job, data=b"{" + b'"a": 1,' * 300_000 + b'"b": 2}', headers=auth),
        aml.http("PUT", endpoint, json={"location": "westeurope", "properties": {"authMode": "Key"}}, headers=auth),
        aml.http(
            "PUT", endpoint, json={"location": aml.ws["location"], "properties": {"authMode": "Password"}}, headers=auth
        ),
        aml.http(
            "PUT",
            endpoint,
            json={"location": aml.ws["location"], "properties": {"authMode": "Key", "traffic": {"x": 100}}},
            headers=auth,
        ),
        aml.http("PUT", endpoint, json={"location": aml.ws["location"], "properties": []}, headers=auth),
        aml.http("PUT", aml.url("/jobs/%ED%A0%80"), json={}, headers=auth),
        aml.http("PUT", aml.url("/onlineEndpoints/" + "e" * 300), json={}, headers=auth),
        aml.http("GET", aml.url("/models/x/versions") + "&$top=-1", headers=auth),
        aml.http("PATCH", aml.url("/jobs/x"), json={}, headers=auth),
        aml.http("POST", f"{aml.ws['managementEndpoint']}/inference/eastus/nope/score", json={}),
    ]
    statuses = [a.status_code for a in answers]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert statuses[5] == 413 and statuses[0] == 400
    assert answers[0].json()["error"]["code"] == "InvalidRequestContent"
    for answer in answers:
        assert not any(leak in answer.text for leak in LEAKS), answer.text


def test_injected_call_faults_on_azure_ml_operations(aml: Aml, aml_clean: None) -> None:
    aml.fault(
        {
            "target": aml.ws["name"],
            "op": "jobs.read",
            "status": 429,
            "code": "TooManyRequests",
            "message": "Rate limit exceeded.",
            "retry_after_s": 7,
        }
    )
    throttled = aml.call("GET", "/jobs")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert aml.call("GET", "/jobs").status_code == 200  # used up
    aml.fault(
        {
            "target": aml.ws["name"],
            "op": "onlineEndpoints.*",
            "status": 500,
            "code": "InternalServerError",
            "message": "Received 500 from a service request",
            "remaining": 2,
        }
    )
    endpoint = aml.ws["onlineEndpoints"][0]["name"]
    assert [aml.call("GET", f"/onlineEndpoints/{endpoint}").status_code for _ in range(3)] == [500, 500, 200]
    aml.fault({"target": aml.ws["name"], "op": "models.versions.write", "drop": True})
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        aml.call(
            "PUT",
            f"/models/{unique('dropped')}/versions/1",
            {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/x/"}},
        )
    aml.fault({"target": aml.ws["name"], "op": "score", "status": 503, "code": "ServiceUnavailable", "message": "busy"})
    aml.seed("faulted-model")
    assert aml.score(endpoint).status_code == 503
    assert aml.score(endpoint).status_code == 200
    assert aml.state()["counters"]["arm_calls"] > 0
