"""Managed online endpoints: deployments through the LRO protocol, traffic rules, real scoring, faults."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from devhost.datasets import breast_cancer

from .aml import Aml, registered_from_job, unique
from .helpers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_models(aml: Aml, training_csv: str) -> tuple[str, str]:
    """Two model versions (ARM ids) that answer differently: default C, and C=0.001."""
    strong = registered_from_job(aml, training_csv)
    job = aml.train(training_csv, literals={"c": "0.001"})
    name = unique("weak")
    aml.register(name, "1", f"azureml://jobs/{job['name']}/outputs/model/paths/")
    return strong, f"{aml.ws['resourceId']}/models/{name}/versions/1"


def deployment_stats(aml: Aml, endpoint: str) -> dict[str, dict[str, Any]]:
    """What /_emulator/state says about each deployment of an endpoint."""
    found = next(e for e in aml.state()["workspaces"][0]["onlineEndpoints"] if e["name"] == endpoint)
    return {d["name"]: d for d in found["deployments"]}


def served_versions(aml: Aml, endpoint: str) -> dict[str, str]:
    return {name: d["modelVersion"] for name, d in deployment_stats(aml, endpoint).items()}


def test_new_deployment_goes_live_through_the_lro_and_a_traffic_shift_moves_requests(
    aml: Aml, two_models: tuple[str, str], aml_clean: None
) -> None:
    endpoint = unique("ep")
    created = aml.call(
        "PUT", f"/onlineEndpoints/{endpoint}", {"location": aml.ws["location"], "properties": {"authMode": "key"}}
    )
    assert created.status_code == 201, created.text
    assert created.headers["x-ms-async-operation-timeout"].startswith("PT")
    props = created.json()["properties"]
    assert props["provisioningState"] == "Creating" and props["authMode"] == "Key" and props["traffic"] == {}
    assert props["properties"]["AzureAsyncOperationUri"] == created.headers["Azure-AsyncOperation"]
    assert props["scoringUri"].endswith(f"/{endpoint}/score")
    assert aml.wait_operation(created)["status"] == "Succeeded"

    assert aml.deploy(endpoint, "blue", two_models[0])["status"] == "Succeeded"
    assert aml.wait_operation(aml.set_traffic(endpoint, {"blue": 100}))["status"] == "Succeeded"

    aml.settings(timings={"lro_s": 0.4})
    green = aml.call("PUT", f"/onlineEndpoints/{endpoint}/deployments/green", aml.deployment_body(two_models[1]))
    assert green.status_code == 201, green.text
    assert green.json()["properties"]["provisioningState"] == "Creating"
    assert (
        aml.ok("GET", f"/onlineEndpoints/{endpoint}/deployments/green")["properties"]["provisioningState"] == "Creating"
    )
    busy = aml.call("PUT", f"/onlineEndpoints/{endpoint}/deployments/green", aml.deployment_body(two_models[1]))
    assert busy.status_code == 409
    early = aml.set_traffic(endpoint, {"blue": 50, "green": 50})
    assert early.status_code == 409, early.text  # green is still Creating
    status = aml.wait_operation(green)
    assert status["status"] == "Succeeded" and "endTime" in status
    assert (
        aml.ok("GET", f"/onlineEndpoints/{endpoint}/deployments/green")["properties"]["provisioningState"]
        == "Succeeded"
    )

    # Smoke test the new deployment by header while it has 0% traffic.
    smoke = aml.score(endpoint, deployment="green")
    assert smoke.status_code == 200 and smoke.headers["azureml-model-deployment"] == "green"
    versions = served_versions(aml, endpoint)
    assert smoke.headers["x-ms-emulator-model-version"] == versions["green"] != versions["blue"]

    aml.settings(routingSeed=7, timings={"lro_s": 0.1})
    shift = aml.set_traffic(endpoint, {"blue": 70, "green": 30})
    assert shift.status_code == 200 and shift.json()["properties"]["provisioningState"] == "Updating"
    assert aml.wait_operation(shift)["status"] == "Succeeded"
    key = aml.keys(endpoint)["primaryKey"]
    names, rows = breast_cancer().features(2)
    uri = aml.scoring_uri(endpoint)

    def route(n: int) -> list[str]:
        served = []
        for _ in range(n):
            response = aml.http("POST", uri, json={"data": rows}, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
            assert (
                response.headers["x-ms-emulator-model-version"]
                == versions[response.headers["azureml-model-deployment"]]
            )
            served.append(response.headers["azureml-model-deployment"])
        return served

    first = route(200)
    share = Counter(first)["green"] / len(first)
    assert 0.2 <= share <= 0.4, share
    aml.settings(routingSeed=7)  # the same seed replays the same routing
    assert route(40) == first[:40]


def test_traffic_rules_are_enforced_and_put_replaces(aml: Aml, two_models: tuple[str, str]) -> None:
    endpoint = unique("rules")
    aml.create_endpoint(endpoint)
    for name, model in zip(("blue", "green"), two_models, strict=True):
        assert aml.deploy(endpoint, name, model)["status"] == "Succeeded"
    cases = [
        ({"blue": 60, "green": 30}, None, "sum to 100"),
        ({"blue": 100, "red": 0}, None, "red"),
        ({"blue": 100.0}, None, "integer"),
        ({"blue": True}, None, "integer"),
        ({"blue": -10, "green": 110}, None, "integer percentage"),
        ({"blue": 100}, {"green": 60}, "at most 50"),
        ({"blue": 50, "green": 50}, {"green": 10}, "both live and mirrored"),
    ]
    for traffic, mirror, words in cases:
        response = aml.set_traffic(endpoint, traffic, mirror)
        assert response.status_code == 400, (traffic, mirror, response.text)
        assert words in response.json()["error"]["message"], response.text
    assert aml.wait_operation(aml.set_traffic(endpoint, {"blue": 100}, {"green": 20}))["status"] == "Succeeded"

    current = aml.ok("GET", f"/onlineEndpoints/{endpoint}")
    current["properties"].pop("traffic")
    current["properties"].pop("mirrorTraffic")
    replaced = aml.call("PUT", f"/onlineEndpoints/{endpoint}", current)
    assert replaced.status_code == 200
    assert (replaced.json()["properties"]["traffic"], replaced.json()["properties"]["mirrorTraffic"]) == ({}, {})
    aml.wait_operation(replaced)
    assert aml.score(endpoint).status_code == 404  # nothing routable: an omitted traffic is no traffic


def test_mirror_traffic_is_scored_and_discarded(aml: Aml, two_models: tuple[str, str], aml_clean: None) -> None:
    endpoint = unique("mirror")
    aml.create_endpoint(endpoint)
    for name, model in zip(("blue", "green"), two_models, strict=True):
        aml.deploy(endpoint, name, model)
    aml.settings(routingSeed=3)
    assert aml.wait_operation(aml.set_traffic(endpoint, {"blue": 100}, {"green": 20}))["status"] == "Succeeded"
    served = Counter(aml.score(endpoint).headers["azureml-model-deployment"] for _ in range(100))
    assert served == Counter({"blue": 100})
    stats = wait_until(
        lambda: (s := deployment_stats(aml, endpoint))["green"]["requests"] == s["green"]["mirrored"] > 0 and s,
        what="mirrored copies scored",
    )
    # about 20% of 100 live calls; the draw depends on the endpoint's (unique) name, so the bounds hold for all
    # but about 1 in 10,000 names (binomial(100, 0.2) outside 5..40)
    assert 5 <= stats["green"]["mirrored"] <= 40, stats
    assert stats["blue"]["mirrored"] == 0 and stats["blue"]["requests"] == 100
    aml.score(endpoint, deployment="blue")  # a request addressed by header is never mirrored
    assert deployment_stats(aml, endpoint)["green"]["mirrored"] == stats["green"]["mirrored"]


def test_conflict_while_the_endpoint_is_updating(aml: Aml, two_models: tuple[str, str], aml_clean: None) -> None:
    endpoint = unique("busy")
    aml.create_endpoint(endpoint)
    aml.settings(timings={"lro_s": 0.5})
    update = aml.set_traffic(endpoint, {})
    assert update.status_code == 200 and update.json()["properties"]["provisioningState"] == "Updating"
    refused = aml.call("PUT", f"/onlineEndpoints/{endpoint}/deployments/blue", aml.deployment_body(two_models[0]))
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"Cannot create a deployment in endpoint {endpoint} because it is in Updating provisioning state."
    )
    assert aml.set_traffic(endpoint, {}).status_code == 409
    assert aml.call("DELETE", f"/onlineEndpoints/{endpoint}").status_code == 409
    aml.wait_operation(update)
    assert aml.deploy(endpoint, "blue", two_models[0])["status"] == "Succeeded"


def test_a_version_whose_files_are_missing_cannot_be_deployed(aml: Aml) -> None:
    endpoint = unique("nobytes")
    aml.create_endpoint(endpoint)
    name = unique("ghost")
    aml.register(name, "1", "azureml://datastores/workspaceblobstore/paths/nothing-here/")
    status = aml.deploy(endpoint, "blue", f"{aml.ws['resourceId']}/models/{name}/versions/1")
    assert status["status"] == "Failed" and "nothing-here" in status["error"]["message"]
    assert aml.ok("GET", f"/onlineEndpoints/{endpoint}/deployments/blue")["properties"]["provisioningState"] == "Failed"
    logs = aml.ok(
        "POST",
        f"/onlineEndpoints/{endpoint}/deployments/blue/getLogs",
        {"containerType": "StorageInitializer", "tail": 5},
    )
    assert "failed" in logs["content"]
    assert aml.set_traffic(endpoint, {"blue": 100}).status_code == 400
    unknown = aml.call(
        "PUT",
        f"/onlineEndpoints/{endpoint}/deployments/red",
        aml.deployment_body(f"{aml.ws['resourceId']}/models/nope/versions/1"),
    )
    assert unknown.status_code == 400


def test_deployment_faults_fail_provisioning_or_make_it_unhealthy(
    aml: Aml, two_models: tuple[str, str], aml_clean: None
) -> None:
    endpoint = unique("faulty")
    aml.create_endpoint(endpoint)
    aml.fault({"kind": "aml_deployment", "endpoint": endpoint, "fail_message": "ImagePullBackOff"})
    failed = aml.deploy(endpoint, "canary-1", two_models[0])
    assert (failed["status"], failed["error"]["message"]) == ("Failed", "ImagePullBackOff")
    aml.fault({"kind": "aml_deployment", "endpoint": endpoint, "error_rate": 0.5, "latency_s": 0.1})
    assert aml.deploy(endpoint, "canary-2", two_models[0])["status"] == "Succeeded"
    key = aml.keys(endpoint)["primaryKey"]
    began = time.monotonic()
    statuses = [aml.score(endpoint, key=key, deployment="canary-2").status_code for _ in range(10)]
    assert sorted(statuses) == [200] * 5 + [503] * 5
    assert time.monotonic() - began >= 10 * 0.1
    assert aml.deploy(endpoint, "healthy", two_models[0])["status"] == "Succeeded"  # the faults were used up
    assert aml.score(endpoint, key=key, deployment="healthy").status_code == 200

    aml.fault({"kind": "aml_deployment", "endpoint": endpoint, "deployment": "slow-*", "latency_s": 0.3})
    body = aml.deployment_body(two_models[0])
    body["properties"]["requestSettings"] = {"requestTimeout": "PT0.1S"}
    response = aml.call("PUT", f"/onlineEndpoints/{endpoint}/deployments/slow-1", body)
    assert aml.wait_operation(response)["status"] == "Succeeded"
    timed_out = aml.score(endpoint, key=key, deployment="slow-1")
    assert timed_out.status_code == 408 and timed_out.headers["azureml-model-deployment"] == "slow-1"


def test_scoring_credentials_and_routing_errors(aml: Aml, two_models: tuple[str, str]) -> None:
    endpoint = unique("auth")
    aml.create_endpoint(endpoint)
    aml.deploy(endpoint, "blue", two_models[0])
    uri = aml.scoring_uri(endpoint)
    names, rows = breast_cancer().features(2)
    body = {"input_data": {"columns": names, "data": rows}}
    assert aml.http("POST", uri, json=body).status_code == 401
    assert aml.http("POST", uri, json=body, headers={"Authorization": "Bearer not-a-key"}).status_code == 401
    keys = aml.keys(endpoint)
    no_route = aml.http("POST", uri, json=body, headers={"Authorization": f"Bearer {keys['secondaryKey']}"})
    assert no_route.status_code == 404 and no_route.json()["error"]["message"].startswith(
        "No valid deployments to route to"
    )
    unknown = aml.score(endpoint, deployment="purple")
    assert unknown.status_code == 404 and "purple" in unknown.json()["error"]["message"]
    auth = {"Authorization": f"Bearer {keys['primaryKey']}", "azureml-model-deployment": "blue"}
    for bad in (
        {"input_data": {"columns": names[:3], "data": [r[:3] for r in rows]}},
        {"data": [["x"] * 30]},
        {"rows": []},
        [1, 2],
    ):
        response = aml.http("POST", uri, json=bad, headers=auth)
        assert response.status_code == 400, (bad, response.text)

    rotated = aml.call("POST", f"/onlineEndpoints/{endpoint}/regenerateKeys", {"keyType": "Primary"})
    assert aml.wait_location(rotated).status_code == 200
    assert aml.keys(endpoint)["primaryKey"] != keys["primaryKey"]
    assert aml.http("POST", uri, json=body, headers=auth).status_code == 401
    assert aml.call("POST", f"/onlineEndpoints/{endpoint}/token").status_code == 400  # a Key endpoint has no AML tokens

    token_endpoint = unique("tok")
    aml.create_endpoint(token_endpoint, auth_mode="AMLToken")
    aml.deploy(token_endpoint, "blue", two_models[0])
    assert aml.call("POST", f"/onlineEndpoints/{token_endpoint}/listKeys").status_code == 400
    issued = aml.ok("POST", f"/onlineEndpoints/{token_endpoint}/token")
    assert issued["expiryTimeUtc"] > issued["refreshAfterTimeUtc"] > time.time()
    headers = {"azureml-model-deployment": "blue"}
    token_uri = aml.scoring_uri(token_endpoint)
    assert (
        aml.http(
            "POST", token_uri, json=body, headers=headers | {"Authorization": f"Bearer {issued['accessToken']}"}
        ).status_code
        == 200
    )
    assert (
        aml.http("POST", token_uri, json=body, headers=headers | {"Authorization": f"Bearer {aml.token()}"}).status_code
        == 401
    )

    entra_endpoint = unique("entra")
    aml.create_endpoint(entra_endpoint, auth_mode="AADToken")
    aml.deploy(entra_endpoint, "blue", two_models[0])
    entra_uri = aml.scoring_uri(entra_endpoint)
    ml_token = aml.token("https://ml.azure.com")
    assert (
        aml.http("POST", entra_uri, json=body, headers=headers | {"Authorization": f"Bearer {ml_token}"}).status_code
        == 200
    )
    assert (
        aml.http("POST", entra_uri, json=body, headers=headers | {"Authorization": f"Bearer {aml.token()}"}).status_code
        == 401
    )


def test_delete_deployment_then_endpoint_through_location(aml: Aml, two_models: tuple[str, str]) -> None:
    endpoint = unique("gone")
    aml.create_endpoint(endpoint)
    aml.deploy(endpoint, "blue", two_models[0])
    aml.wait_operation(aml.set_traffic(endpoint, {"blue": 100}))
    with_traffic = aml.call("DELETE", f"/onlineEndpoints/{endpoint}/deployments/blue")
    assert with_traffic.status_code == 400 and "traffic" in with_traffic.json()["error"]["message"]
    aml.wait_operation(aml.set_traffic(endpoint, {}))
    deleting = aml.call("DELETE", f"/onlineEndpoints/{endpoint}/deployments/blue")
    assert deleting.status_code == 202 and "x-ms-async-operation-timeout" in deleting.headers
    assert aml.wait_location(deleting).status_code == 204
    gone_deployment = aml.call("GET", f"/onlineEndpoints/{endpoint}/deployments/blue")
    assert gone_deployment.status_code == 404
    assert (
        gone_deployment.json()["error"]["message"]
        == f"Deployment blue not found in endpoint {endpoint}, workspace {aml.ws['name']}."
    )
    patched = aml.call("PATCH", f"/onlineEndpoints/{endpoint}", {"tags": {"team": "ml"}})
    assert patched.status_code == 200 and patched.json()["tags"] == {"team": "ml"}
    assert aml.call("PATCH", f"/onlineEndpoints/{endpoint}", {"properties": {"traffic": {}}}).status_code == 400
    gone = aml.call("DELETE", f"/onlineEndpoints/{endpoint}")
    assert aml.wait_location(gone).status_code == 204
    assert aml.call("GET", f"/onlineEndpoints/{endpoint}").status_code == 404
    assert aml.call("DELETE", f"/onlineEndpoints/{endpoint}").status_code == 204


def test_deployment_patch_scales_through_location_and_logs_are_served(aml: Aml, two_models: tuple[str, str]) -> None:
    endpoint = unique("scale")
    aml.create_endpoint(endpoint)
    aml.deploy(endpoint, "blue", two_models[0])
    tags_only = aml.call("PATCH", f"/onlineEndpoints/{endpoint}/deployments/blue", {"tags": {"owner": "ml"}})
    assert tags_only.status_code == 200 and tags_only.json()["tags"] == {"owner": "ml"}
    scaling = aml.call("PATCH", f"/onlineEndpoints/{endpoint}/deployments/blue", {"sku": {"capacity": 3}})
    assert scaling.status_code == 202
    assert (
        aml.ok("GET", f"/onlineEndpoints/{endpoint}/deployments/blue")["properties"]["provisioningState"] == "Scaling"
    )
    assert aml.wait_location(scaling).status_code == 200
    scaled = aml.ok("GET", f"/onlineEndpoints/{endpoint}/deployments/blue")
    assert scaled["sku"]["capacity"] == 3 and scaled["properties"]["provisioningState"] == "Succeeded"
    assert (
        aml.call("PATCH", f"/onlineEndpoints/{endpoint}/deployments/blue", {"sku": {"capacity": 0}}).status_code == 400
    )
    assert aml.call("PATCH", f"/onlineEndpoints/{endpoint}/deployments/blue", {"properties": {}}).status_code == 400
    logs = aml.ok("POST", f"/onlineEndpoints/{endpoint}/deployments/blue/getLogs")
    assert "loaded" in logs["content"]
    listed = aml.ok("GET", f"/onlineEndpoints/{endpoint}/deployments")
    assert [d["name"] for d in listed["value"]] == ["blue"]
    changed = aml.deployment_body(two_models[0])
    changed["properties"]["instanceType"] = "Standard_F4s_v2"
    immutable = aml.call("PUT", f"/onlineEndpoints/{endpoint}/deployments/blue", changed)
    assert immutable.status_code == 400 and "instanceType" in immutable.json()["error"]["message"]
