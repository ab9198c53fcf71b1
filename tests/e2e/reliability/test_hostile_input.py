"""Hostile input through the running app: malformed bodies and paths on every route, and every route under schemathesis.

A bad input must get a clear, typed refusal (a 4xx naming the field), never a crash, a 500 or a
traceback. Each input refused counts as a bad input tried in the summary line. The parsers
themselves are fuzzed without servers in tests/unit/test_hostile_parsers.py.
"""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from devhost.stack import LocalStack

from .ledger import Ledger

pytestmark = pytest.mark.e2e


def test_hostile_bodies_through_devhost(stack: LocalStack, ledger: Ledger) -> None:
    ledger.scenarios.append("hostile HTTP bodies")
    assert stack.host is not None
    base, key = stack.host.base_url, stack.host.function_key
    bodies = [
        b"{",
        b"null",
        b"[]",
        b'{"trainingBlob": "labeledexamples/\\u0000.arff"}',
        b'{"trainingBlob": "labeledexamples/\\ud800.arff"}',
        b'{"trainingBlob": "labeledexamples/' + b"a/" * 600 + b'x"}',
        b'{"dryRun": 1}',
        b"[" * 50_000,
        '{"trainingBlob": "labeledexamples/é/../../x"}'.encode(),
        b"x" * 100_000,
        b'{"dryRun": true, "dryRun": "x"}',
    ]
    routes = [
        f"{base}/api/pipelines/weekly-retrain/runs",
        f"{base}/api/pipelines/weekly-retrain/targets/endpoint2/promote",
        f"{base}/api/pipelines/weekly-retrain/rollback",
    ]
    for url in routes:
        for body in bodies:
            response = requests.post(
                url, data=body, headers={"x-functions-key": key, "Content-Type": "application/json"}, timeout=30
            )
            ledger.responses.append(response.text)
            assert response.status_code == 400, (url, body[:40], response.status_code, response.text[:200])
            assert "Traceback" not in response.text and response.json()["error"]["field"]
            ledger.bad_inputs += 1
    for path in (
        "/api/pipelines/%ED%A0%80/runs",
        "/api/pipelines/" + "x" * 300 + "/runs",
        "/api/pipelines/weekly-retrain/requests/%00",
        "/api/pipelines/weekly-retrain/runs/..%2f..%2fsecrets",
    ):
        method = requests.post if path.endswith("/runs") else requests.get
        response = method(base + path, headers={"x-functions-key": key}, timeout=30)
        ledger.responses.append(response.text)
        assert response.status_code in (400, 404), (path, response.status_code, response.text[:200])
        assert "Traceback" not in response.text and "/work/" not in response.text
        ledger.bad_inputs += 1


def test_every_route_under_schemathesis(stack: LocalStack, ledger: Ledger) -> None:
    """Schemathesis reads devhost's OpenAPI description of the app's routes and fuzzes each: never a 5xx."""
    ledger.scenarios.append("schemathesis")
    assert stack.host is not None
    base, key = stack.host.base_url, stack.host.function_key
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    described = {operation.ok().definition.raw.get("operationId") for operation in schema.get_all_operations()}
    assert {
        f"{f.name}_{m.lower()}" for f in stack.host.app.http for m in f.trigger.get("methods") or ["GET", "POST"]
    } <= described
    tried = {"cases": 0}
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(GenerationMode.NEGATIVE) | operation.as_strategy(GenerationMode.POSITIVE)

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=strategy)
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers={"x-functions-key": key}, timeout=30)
            tried["cases"] += 1
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.status_code,
                response.text[:300],
            )
            assert "Traceback" not in response.text
            if 400 <= response.status_code < 500:
                ledger.bad_inputs += 1
                assert "/work/" not in response.text and 'File "' not in response.text
                content_type = response.headers.get("content-type") or [""]
                if str(content_type[0]).startswith("application/json") and response.status_code != 401:
                    body = json.loads(response.text)
                    error = body.get("error") if isinstance(body, dict) else None
                    assert isinstance(error, dict) and error.get("message"), (
                        case.method,
                        case.formatted_path,
                        response.status_code,
                        response.text[:200],
                    )

        fuzz()
    assert tried["cases"] >= 100
