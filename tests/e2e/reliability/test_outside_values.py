"""What comes from outside neither holds a run nor breaks an answer: a slow webhook with credentials in its URL,
and stored records holding numbers JSON cannot carry."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

from devhost.stack import LocalStack
from retraining.instances import notify_instance_id

from ..helpers import api, durable, record_of, run_to_end, start_run, wait_for_request
from ..receiver import Receiver
from .ledger import Ledger


def test_a_slow_webhook_with_credentials_in_its_url_neither_holds_the_run_nor_leaks(
    stack: LocalStack, seeded: str, slow_webhook: Receiver, ledger: Ledger
) -> None:
    """Delivery runs on its own; the run's record is written when the run ends, not minutes later."""
    ledger.scenarios.append("a 40 s webhook with credentials in its URL")
    begun = time.monotonic()
    record = record_of(stack, wait_for_request(stack, ledger.accept(start_run(stack, "notified-slow"))["statusUri"]))
    took = time.monotonic() - begun
    assert record["status"] == "Rejected"
    assert record["phases"].get("recording", 0.0) < 5, record["phases"]  # five 30 s attempts used to sit here
    assert took < 60, took
    password, token = urlsplit(slow_webhook.url).password, urlsplit(slow_webhook.url).query
    assert password and token
    assert password not in json.dumps(record) and token not in json.dumps(record)
    delivery = durable(
        stack,
        lambda client: client.get_status(notify_instance_id("notified-slow", record["run_id"], "run_not_succeeded")),
    )
    assert delivery.runtime_status is not None, "the run started no delivery"  # it goes on, on its own


def refuse(token: str) -> None:
    raise AssertionError(f"{token} is not JSON")


def test_stored_records_with_huge_and_non_finite_metrics_leave_the_page_and_routes_answering(
    stack: LocalStack, ledger: Ledger
) -> None:
    """No stored value breaks a status API: a record (and its index entry) holding 1e308 and NaN metrics, as a
    record written by hand or by an older version could."""
    ledger.scenarios.append("stored records holding 1e308, NaN and -inf metrics")
    ledger.bad_inputs += 3
    real = run_to_end(stack, "aml-retrain")
    assert real["status"] == "Succeeded", real
    container = stack.blob_service.get_container_client("runrecords")
    run_id = real["run_id"][:-8] + "0e0e0e0e"
    metrics = {"AUC": 1e308, "Accuracy": float("nan"), "F1 Score": float("-inf")}
    record = real | {"run_id": run_id, "model": real["model"] | {"metrics": metrics}}
    container.upload_blob(f"aml-retrain/runs/{run_id}.json", json.dumps(record))  # NaN and -Infinity as JSON tokens
    month = f"aml-retrain/index/{run_id[:4]}-{run_id[4:6]}.json"
    index = json.loads(container.download_blob(month).readall())
    summary = next(s for s in index["runs"] if s["run_id"] == real["run_id"])
    stored = container.download_blob(month).readall()
    index["runs"].append(summary | {"run_id": run_id, "metrics": metrics})
    container.upload_blob(month, json.dumps(index), overwrite=True)
    try:
        _answers_strictly(stack, run_id)
    finally:  # the record is not a run: the ledger's invariants must not count it as one
        container.upload_blob(month, stored, overwrite=True)
        container.delete_blob(f"aml-retrain/runs/{run_id}.json")


def _answers_strictly(stack: LocalStack, run_id: str) -> None:
    """The page shows the run; the JSON routes answer 200 with strict JSON."""
    html = api(stack, "status/aml-retrain")
    assert html.status_code == 200 and f'id="run-{run_id}"' in html.text, html.text[:300]
    for path in ("pipelines/aml-retrain/runs", f"pipelines/aml-retrain/runs/{run_id}", "pipelines/aml-retrain/models"):
        answer = api(stack, path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        json.loads(answer.text, parse_constant=refuse)  # strict JSON: no NaN or Infinity token reaches a caller
