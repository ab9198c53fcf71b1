"""What the fault tests share: emulator fault rules, and a run that the ledger accepts and follows to its record."""

from __future__ import annotations

from typing import Any

import requests

from devhost.stack import LocalStack

from ..helpers import record_of, start_run, wait_for_request
from .ledger import Ledger


def fault(url: str, **rule: Any) -> None:
    requests.post(f"{url}/_emulator/faults", json=rule, timeout=10).raise_for_status()


def clear_faults(url: str) -> None:
    requests.delete(f"{url}/_emulator/faults", timeout=10).raise_for_status()


def run(
    stack: LocalStack,
    ledger: Ledger,
    pipeline: str = "weekly-retrain",
    body: dict[str, Any] | None = None,
    timeout_s: float = 180,
) -> dict[str, Any]:
    accepted = ledger.accept(start_run(stack, pipeline, body))
    return record_of(stack, wait_for_request(stack, accepted["statusUri"], timeout_s=timeout_s))


def training_service_id(stack: LocalStack) -> str:
    return str(stack.services["webServices"][0]["endpoints"][0]["service_id"])
