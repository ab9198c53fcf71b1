"""Runs under transient faults on every call: the Studio (classic) services, and the Azure ML workspace's control plane."""

from __future__ import annotations

import pytest

from devhost.stack import LocalStack

from ..helpers import served_versions
from .faults import clear_faults, fault, run, training_service_id
from .ledger import Ledger

pytestmark = pytest.mark.e2e


def test_transient_faults_on_every_service_call(
    stack: LocalStack, ledger: Ledger, seeded: str, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About 30% of calls to BES, the classic endpoint and the ARM service fail transiently; every run still succeeds."""
    ledger.scenarios.append("transient faults")
    monkeypatch.setenv("RETRAIN_HTTP_TIMEOUT_SECONDS", "1.5")
    endpoint2 = stack.services["webServices"][1]["endpoints"][1]["service_id"]
    for target in (training_service_id(stack), endpoint2, "myWebService"):
        fault(emulator_url, target=target, remaining=None, probability=0.14)  # 503 RequestThrottled
        fault(
            emulator_url,
            target=target,
            remaining=None,
            probability=0.07,
            status=500,
            code="InternalError",
            detail_code="InternalError",
            message="transient",
        )
        fault(emulator_url, target=target, remaining=None, probability=0.05, drop=True)
        fault(
            emulator_url, target=target, remaining=None, probability=0.05, fail=False, delay_s=2.0
        )  # slower than the client timeout
    faults_before = ledger.faults_injected
    results = [run(stack, ledger) for _ in range(6)]
    assert [r["status"] for r in results] == ["Succeeded"] * 6, [r.get("reason") for r in results]
    assert ledger.faults_injected - faults_before >= 8  # the faults really fired
    assert served_versions(emulator_url)["endpoint2"] == results[-1]["model"]["sha256"][:12]


def test_transient_faults_on_every_azure_ml_call(
    stack: LocalStack, ledger: Ledger, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About a quarter of the calls to the Azure ML workspace's control plane fail transiently (429 with
    Retry-After, 500, dropped connections, answers slower than the client's timeout); every run still
    succeeds, the canary included. Scoring is left alone: a failed probe is a health measurement."""
    ledger.scenarios.append("Azure ML transient faults")
    monkeypatch.setenv("RETRAIN_HTTP_TIMEOUT_SECONDS", "1.5")
    for op in (
        "jobs.*",
        "models*",
        "onlineEndpoints*",
        "batchEndpoints*",
        "operations.read",
        "datastores.read",
        "mlflow.read",
    ):
        fault(emulator_url, target="retrain-ws", op=op, remaining=None, probability=0.1, status=429, retry_after_s=1)
        fault(
            emulator_url,
            target="retrain-ws",
            op=op,
            remaining=None,
            probability=0.05,
            status=500,
            code="InternalServerError",
            message="transient",
        )
        fault(emulator_url, target="retrain-ws", op=op, remaining=None, probability=0.04, drop=True)
        fault(emulator_url, target="retrain-ws", op=op, remaining=None, probability=0.03, fail=False, delay_s=2.0)
    faults_before = ledger.faults_injected
    results = [run(stack, ledger, "aml-retrain") for _ in range(3)]
    clear_faults(emulator_url)
    assert [r["status"] for r in results] == ["Succeeded"] * 3, [
        (r.get("reason"), [t.get("error") for t in r["targets"]]) for r in results
    ]
    assert ledger.faults_injected - faults_before >= 8  # the faults really fired
    versions = [r["model"]["version"] for r in results]
    assert len(set(versions)) == 3 and all(versions)  # one version per run, none overwritten
