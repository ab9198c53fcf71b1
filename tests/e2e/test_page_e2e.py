"""The status page and its JSON routes on devhost: history, models, roll back from the page, retention, CLI parity."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape

import azure.durable_functions as df
import pytest
import requests

from devhost import cli
from devhost.stack import LocalStack
from retraining.instances import queue_instance_id, run_instance_id
from triggers.retention import purge_finished

from .helpers import api, awaiting, record_of, run_to_end, served_versions, settle, wait_for_request

pytestmark = pytest.mark.e2e


def page(stack: LocalStack, path: str = "status/weekly-retrain") -> requests.Response:
    assert stack.host is not None
    return requests.get(f"{stack.host.base_url}/api/{path}", params={"code": stack.host.function_key}, timeout=30)


def buttons(html: str, action: str) -> list[dict[str, str]]:
    """The action buttons of a page, as the page's script reads them (data-url, data-body)."""
    found = []
    for attributes in re.findall(r"<button([^>]*)>", html):
        fields = {k: unescape(v) for k, v in re.findall(r'data-(\w+)="([^"]*)"', attributes)}
        if fields.get("action") == action:
            found.append(fields)
    return found


def test_the_page_shows_runs_models_and_serving_and_rolls_back(
    stack: LocalStack, seeded: str, emulator_url: str
) -> None:
    settle(stack)
    first, second = run_to_end(stack, "weekly-retrain"), run_to_end(stack, "weekly-retrain")
    assert first["status"] == second["status"] == "Succeeded"
    answer = page(stack)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert stack.host is not None and stack.host.function_key not in html  # the key stays in the address bar
    assert f'id="run-{second["run_id"]}"' in html and f'id="run-{first["run_id"]}"' in html
    assert html.count('<circle class="point') >= 2 and 'class="minimum"' in html and "gate minimum 0.7" in html
    assert f'data-served="{second["model"]["sha256"][:12]}"' in html
    assert not re.search(
        r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", html
    )  # nothing from outside: works offline

    rollback = next(b for b in buttons(html, "rollback") if json.loads(b["body"]) == {"runId": first["run_id"]})
    assert rollback["url"] == "/api/pipelines/weekly-retrain/rollback"
    posted = requests.post(
        stack.host.base_url + rollback["url"],
        data=rollback["body"],
        timeout=30,
        headers={"x-functions-key": stack.host.function_key, "Content-Type": "application/json"},
    )
    assert posted.status_code == 202, posted.text
    rolled = record_of(stack, wait_for_request(stack, posted.json()["statusUri"]))
    assert rolled["request"]["action"] == "promote" and rolled["request"]["source_run"] == first["run_id"]
    assert served_versions(emulator_url)["endpoint2"] == first["model"]["sha256"][:12]
    models = api(stack, "pipelines/weekly-retrain/models").json()
    assert (
        models["champion"]["run_id"] == rolled["run_id"]
        and models["champion"]["model"]["sha256"] == first["model"]["sha256"]
    )
    assert models["targets"]["endpoint2"]["model"]["sha256"] == first["model"]["sha256"]
    assert {c["run_id"] for c in models["candidates"]} >= {first["run_id"], second["run_id"]}


def test_json_routes_list_pipelines_and_runs(stack: LocalStack, seeded: str) -> None:
    run_to_end(stack, "strict-gate")
    listed = api(stack, "pipelines").json()["pipelines"]
    names = [p["name"] for p in listed]
    assert {"weekly-retrain", "approval", "notified"} <= set(names)
    weekly = listed[names.index("weekly-retrain")]
    assert weekly["schedule"]["expression"] == "0 0 3 * * 0" and weekly["schedule"]["next"].endswith("T03:00:00Z")
    assert datetime.fromisoformat(weekly["schedule"]["next"].replace("Z", "+00:00")).weekday() == 6  # Sundays
    assert listed[names.index("approval")]["schedule"]["next"] is None  # its schedule is disabled
    runs = api(stack, "pipelines/strict-gate/runs?limit=1").json()
    assert len(runs["runs"]) == 1 and runs["runs"][0]["status"] == "Rejected" and runs["in_progress"] == []
    assert api(stack, "pipelines/strict-gate/runs?limit=lots").json()["error"]["field"] == "limit"
    assert api(stack, "pipelines/nope/runs").status_code == 404 and page(stack, "status/nope").status_code == 404
    overview = page(stack, "status")
    assert overview.status_code == 200 and 'href="/api/status/weekly-retrain"' in overview.text


def test_retention_purges_finished_history_and_keeps_records(stack: LocalStack, seeded: str) -> None:
    assert stack.host is not None
    record = run_to_end(stack, "strict-gate")
    client = df.DurableOrchestrationClient(stack.host.management.client_binding())  # what the timer's binding gets
    purged = stack.host.run_coroutine(purge_finished(client, datetime.now(UTC)))
    assert purged >= 1
    instances = {s.instance_id: s for s in stack.host.engine.client.get_all_orchestration_states()}
    assert run_instance_id("strict-gate", record["run_id"]) not in instances
    assert queue_instance_id("strict-gate") in instances  # the long-lived queue keeps running
    assert (
        api(stack, f"pipelines/strict-gate/runs/{record['run_id']}").json()["status"] == "Rejected"
    )  # the record stays
    assert api(stack, "pipelines/strict-gate/runs?limit=1").json()["runs"][0]["run_id"] == record["run_id"]
    assert stack.host.run_coroutine(purge_finished(client, datetime(2001, 1, 1, tzinfo=UTC))) == 0


def test_cli_runs_models_approve_and_rollback(
    stack: LocalStack, seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.host is not None
    connection = ["--url", stack.host.base_url, "--key", stack.host.function_key]
    uri, view = awaiting(stack)
    assert cli.main(["runs", "approval", *connection]) == 0
    table = capsys.readouterr().out
    assert view["run_id"] in table and "awaiting_approval" in table
    assert cli.main(["approve", "approval", view["run_id"], "--comment", "from the CLI", *connection]) == 0
    assert "approve" in capsys.readouterr().out
    assert record_of(stack, wait_for_request(stack, uri))["status"] == "Succeeded"
    assert cli.main(["reject", "approval", view["run_id"], *connection]) == 1  # the run has ended: 409
    capsys.readouterr()
    assert cli.main(["runs", "approval", "--json", "--limit", "3", *connection]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["runs"][0]["approval"]["decision"]["comment"] == "from the CLI"
    assert cli.main(["models", "approval", *connection]) == 0
    assert "champion" in capsys.readouterr().out
    assert cli.main(["rollback", "weekly-retrain", "--to", "20261122T030000Z-00000000", *connection]) == 1
    assert "has no run" in capsys.readouterr().err
