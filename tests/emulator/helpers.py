"""Small helpers for the emulator's tests: BES calls, SAS minting, waiting."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import requests
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def blob_ref(connection_string: str, container: str, name: str) -> dict[str, Any]:
    return {"ConnectionString": connection_string, "RelativeLocation": f"{container}/{name}"}


def sas_ref(
    blob_service: BlobServiceClient,
    container: str,
    name: str,
    *,
    read: bool = True,
    write: bool = False,
    minutes: float = 10,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    token = generate_blob_sas(
        blob_service.account_name or "",
        container,
        name,
        account_key=blob_service.credential.account_key,
        permission=BlobSasPermissions(read=read, write=write, create=write),
        start=now - dt.timedelta(minutes=5),
        expiry=now + dt.timedelta(minutes=minutes),
    )
    return {
        "BaseLocation": blob_service.url.rstrip("/") + "/",
        "RelativeLocation": f"{container}/{name}",
        "SasBlobToken": "?" + token,
        "ConnectionString": None,
    }


def submit(ml_endpoint: str, key: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{ml_endpoint}?api-version=2.0", json=body, headers=auth(key), timeout=30)


def run_job(ml_endpoint: str, key: str, body: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
    """Submit, start and poll a job to a terminal state; return the last status body."""
    response = submit(ml_endpoint, key, body)
    assert response.status_code == 200, response.text
    job_id = response.json()
    started = requests.post(f"{ml_endpoint}/{job_id}/start?api-version=2.0", headers=auth(key), timeout=30)
    assert started.status_code == 200, started.text
    return wait_job(ml_endpoint, key, job_id, timeout_s) | {"JobId": job_id}


def wait_job(ml_endpoint: str, key: str, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status: dict[str, Any] = requests.get(
            f"{ml_endpoint}/{job_id}?api-version=2.0", headers=auth(key), timeout=30
        ).json()
        if status["StatusCode"] in ("Finished", "Failed", "Cancelled"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end within {timeout_s}s")


def wait_until(predicate: Any, timeout_s: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
