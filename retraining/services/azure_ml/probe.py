"""Requests against a managed online endpoint's scoring URI: the smoke test and the health checks of a rollout.

Rows come from the head of the pipeline's own training data, in the model's feature order, sent
in the MLflow `input_data` split shape with `azureml-model-deployment` naming the deployment under
test (so the probe reaches it at any traffic share, and is never mirrored). The scoring credential
follows the endpoint's authMode: a key from listKeys, a token from the endpoint's token API, or an
Entra token for https://ml.azure.com. Probes never retry: a failed probe is a measurement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...datasets import HEAD_BYTES, sample_rows
from ...errors import ResponseFormatError, RetrainingError
from ...http import ServiceClient, json_body
from ...models import BlobPath
from ..base import ServiceContext
from .workspace import ML_SCOPE, WorkspaceClient

DEPLOYMENT_HEADER = "azureml-model-deployment"


@dataclass(frozen=True)
class Health:
    probes: int
    errors: int
    p95_ms: float
    last_error: str | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.probes if self.probes else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p95_ms": round(self.p95_ms, 1),
            "last_error": self.last_error,
        }


class Scorer:
    """Scores sample rows on one deployment of an online endpoint."""

    def __init__(self, client: WorkspaceClient, endpoint: Mapping[str, Any], http: ServiceClient) -> None:
        self._client = client
        self._endpoint = endpoint
        self._http = http
        props = endpoint.get("properties") or {}
        self.scoring_uri = str(props.get("scoringUri") or "")
        self.auth_mode = str(props.get("authMode") or "Key")
        if not self.scoring_uri.startswith("https://"):
            raise ResponseFormatError(f"endpoint {endpoint.get('name')}: no https scoring URI")

    def _credential(self) -> str:
        name = str(self._endpoint.get("name"))
        if self.auth_mode.lower() == "key":
            keys = json_body(self._client.post("onlineEndpoints", name, "listKeys"), "listKeys")
            key = keys.get("primaryKey") if isinstance(keys, dict) else None
        elif self.auth_mode.lower() == "amltoken":
            token = json_body(self._client.post("onlineEndpoints", name, "token"), "endpoint token")
            key = token.get("accessToken") if isinstance(token, dict) else None
        else:
            key = self._client.token(ML_SCOPE)
        if not isinstance(key, str) or not key:
            raise ResponseFormatError(f"endpoint {name}: no scoring credential in the answer")
        return key

    def score(
        self, deployment: str | None, columns: tuple[str, ...], rows: list[list[Any]], credential: str
    ) -> tuple[bool, float, str | None]:
        """(answered well, latency ms, what went wrong) of one scoring request."""
        headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
        if deployment:
            headers[DEPLOYMENT_HEADER] = deployment
        body = {"input_data": {"columns": list(columns), "index": list(range(len(rows))), "data": rows}}
        started = time.monotonic()
        try:
            response = self._http.request("POST", self.scoring_uri, headers=headers, json=body, ok=(200,), retry=False)
            answer = json_body(response, "scoring")
        except RetrainingError as exc:
            return False, (time.monotonic() - started) * 1000, str(exc)[:300]
        elapsed = (time.monotonic() - started) * 1000
        if not isinstance(answer, list) or len(answer) != len(rows):
            return False, elapsed, f"expected {len(rows)} predictions, got {type(answer).__name__}"
        return True, elapsed, None

    def probe(self, deployment: str, columns: tuple[str, ...], rows: list[list[Any]], count: int) -> Health:
        """`count` requests of one row each, cycling through `rows`."""
        credential = self._credential()
        latencies, errors, last = [], 0, None
        for index in range(count):
            ok, elapsed, why = self.score(deployment, columns, [rows[index % len(rows)]], credential)
            latencies.append(elapsed)
            if not ok:
                errors, last = errors + 1, why
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)] if latencies else 0.0
        return Health(count, errors, p95, last)

    def smoke(self, deployment: str, columns: tuple[str, ...], rows: list[list[Any]]) -> str | None:
        """None if the deployment scores all the sample rows in one request, else why not."""
        ok, _, why = self.score(deployment, columns, rows, self._credential())
        return None if ok else why


def sample(context: ServiceContext, columns: tuple[str, ...], limit: int) -> list[list[float | str]]:
    """Sample rows of the model's features from the pipeline's training data."""
    data = BlobPath(context.pipeline.data_container, context.pipeline.data_blob)
    head, _ = context.storage.read_head(data, min(HEAD_BYTES, 64 * 1024))
    return sample_rows(head, data.name, columns, limit)
