"""The floor for a target update: the calls the app makes, from a plain script, with nothing of the app.

`python bench/direct.py SPEC.json` reads {"connection_string", "model", "resource", "endpoints": [{url, key}],
"parallel": bool} and updates every endpoint as the app does: a read SAS for the model, PATCH the
endpoint, GET it at once and then after 0.5 s, 0.75 s, ... until it shows the model (the app's confirm
cadence). One pooled session per process. Prints {"wall_s", "cpu_s", "updates"} for the updates only:
the interpreter's start and imports are not counted.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas


def update(
    session: requests.Session, spec: dict[str, Any], account: BlobServiceClient, endpoint: dict[str, str]
) -> None:
    container, name = spec["model"].split("/", 1)
    now = datetime.now(UTC)
    sas = generate_blob_sas(
        account_name=account.account_name or "",
        container_name=container,
        blob_name=name,
        account_key=account.credential.account_key,
        permission=BlobSasPermissions(read=True),
        start=now - timedelta(minutes=5),
        expiry=now + timedelta(hours=1),
        protocol="https,http",
    )
    headers = {"Authorization": f"Bearer {endpoint['key']}"}
    body = {
        "Resources": [
            {
                "Name": spec["resource"],
                "Location": {
                    "BaseLocation": account.url.rstrip("/") + "/",
                    "RelativeLocation": spec["model"],
                    "SasBlobToken": "?" + sas,
                },
            }
        ]
    }
    session.patch(endpoint["url"], json=body, headers=headers, timeout=30).raise_for_status()
    look = 0.5 / 1.5
    while True:
        shown = session.get(endpoint["url"], headers=headers, timeout=30).json()["Resources"][0]["Location"][
            "RelativeLocation"
        ]
        if shown.lstrip("/") == spec["model"]:
            return
        look = min(10.0, look * 1.5)
        time.sleep(look)


def main(path: str) -> int:
    spec = json.loads(Path(path).read_text())
    account = BlobServiceClient.from_connection_string(spec["connection_string"])
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    began, cpu = time.perf_counter(), time.process_time()
    if spec["parallel"]:
        with ThreadPoolExecutor(max_workers=len(spec["endpoints"])) as pool:
            list(pool.map(lambda e: update(session, spec, account, e), spec["endpoints"]))
    else:
        for endpoint in spec["endpoints"]:
            update(session, spec, account, endpoint)
    print(
        json.dumps(
            {
                "wall_s": time.perf_counter() - began,
                "cpu_s": time.process_time() - cpu,
                "updates": len(spec["endpoints"]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
