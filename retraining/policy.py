"""Pure decisions: the evaluation gate, metrics parsing, result-location checks, the orchestrator's plan.

No I/O here, so orchestrators may call these functions and tests need no fakes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from .definitions import Gate, Pipeline, Target
from .errors import ForeignLocationError, ResponseFormatError
from .models import BlobPath, GateDecision, PipelinePlan, TargetPlan
from .text import excerpt, origin

MAX_METRICS_BYTES = 64 * 1024


def decide(
    gate: Gate, candidate: Mapping[str, float], serving: Mapping[str, float] | None, *, compared_with: str | None = None
) -> GateDecision:
    """Promote only if every minimum holds and, where asked, the candidate is not worse than the champion."""
    reasons = []
    for metric, minimum in sorted(gate.minimums.items()):
        value = candidate.get(metric)
        if value is None or math.isnan(value):
            reasons.append(f"{metric} is missing from the evaluation")
        elif value < minimum:
            reasons.append(f"{metric} {value:.4f} is below the minimum {minimum:.4f}")
    for metric in gate.not_worse_than_serving:
        value = candidate.get(metric)
        if serving is None or metric not in serving:
            continue  # nothing served yet, or never measured: nothing to compare against
        if value is None or math.isnan(value):
            reasons.append(f"{metric} is missing from the evaluation")
        elif value < serving[metric]:
            reasons.append(f"{metric} {value:.4f} is worse than the champion's {serving[metric]:.4f}")
    return GateDecision(
        promote=not reasons, reasons=tuple(reasons), compared_with=compared_with if serving is not None else None
    )


def parse_metrics(data: bytes) -> dict[str, float]:
    """Read an Evaluate-Model CSV (header row, one row of values) into metric -> value.

    Non-numeric columns are not metrics and are skipped; a numeric one that is NaN or infinite (a diverged
    loss) is refused, naming the metric, rather than dropped (the gate would call it missing) or kept (no
    comparison or plot means anything with it)."""
    if len(data) > MAX_METRICS_BYTES:
        raise ResponseFormatError(f"evaluation output is {len(data)} bytes; expected a small metrics table")
    try:
        rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ResponseFormatError(f"evaluation output is not a CSV table: {exc}") from None
    if len(rows) < 2:
        raise ResponseFormatError("evaluation output needs a header row and a row of values")
    metrics = {}
    for name, value in zip(rows[0], rows[1], strict=False):
        try:
            number = float(value)
        except ValueError:
            continue  # non-numeric columns (labels, notes) are not metrics
        if not math.isfinite(number):
            raise ResponseFormatError(
                f"evaluation output: metric {excerpt(name.strip())} is {'NaN' if math.isnan(number) else 'infinite'};"
                " a model's metrics must be finite numbers to be gated and plotted"
            )
        metrics[name.strip()] = number
    if not metrics:
        raise ResponseFormatError("evaluation output has no numeric metrics")
    return metrics


def check_result_location(
    base_location: object, relative_location: object, *, account_url: str, expected: BlobPath
) -> BlobPath:
    """Accept a BES result only if it is the very blob we asked for, in our own account.

    A compromised or buggy response must not make us hand the scoring service foreign bytes.
    """
    if not isinstance(relative_location, str) or not relative_location.strip("/"):
        raise ResponseFormatError("result has no RelativeLocation")
    path = BlobPath.parse(unquote(relative_location), "result RelativeLocation")
    if base_location is not None:
        if not isinstance(base_location, str):
            raise ResponseFormatError("result BaseLocation is not a string")
        given, ours = urlsplit(base_location), urlsplit(account_url)
        if (given.scheme, given.netloc.lower(), given.path.rstrip("/")) != (
            ours.scheme,
            ours.netloc.lower(),
            ours.path.rstrip("/"),
        ):
            raise ForeignLocationError(f"result points at {origin(base_location)}, outside our storage account")
    if path != expected:
        raise ForeignLocationError(f"result points at {path}, not at the requested {expected}")
    return path


def plan_of(pipeline: Pipeline, training_blob: BlobPath | None, *, history: tuple[float, ...] = ()) -> PipelinePlan:
    data = training_blob or BlobPath(pipeline.data_container, pipeline.data_blob)
    return PipelinePlan(
        name=pipeline.name,
        data=data,
        data_retry_interval_s=pipeline.external_data.retry_interval.total_seconds(),
        data_retry_timeout_s=pipeline.external_data.retry_timeout.total_seconds(),
        data_maximum_retry=pipeline.external_data.maximum_retry,
        timeout_s=pipeline.policy.timeout.total_seconds(),
        retry=pipeline.policy.retry,
        retry_interval_s=pipeline.policy.retry_interval.total_seconds(),
        poll_first_s=pipeline.polling.first_interval.total_seconds(),
        poll_max_s=pipeline.polling.max_interval.total_seconds(),
        poll_fraction=pipeline.polling.fraction,
        gate_enabled=pipeline.gate.enabled,
        targets=tuple(
            TargetPlan(
                t.name,
                t.kind,
                t.policy.retry,
                t.policy.retry_interval.total_seconds(),
                t.policy.timeout.total_seconds(),
                _wave(pipeline, t),
            )
            for t in pipeline.targets
        ),
        history_s=history,
        events=pipeline.training.announces_completion,
        events_trusted=pipeline.polling.completion_events,
        approval_s=pipeline.gate.approval.timeout.total_seconds() if pipeline.gate.approval.required else 0.0,
        notify=pipeline.notifications.events if pipeline.notifications else (),
        consistent=pipeline.serving.consistency == "all",
        retrain_when=pipeline.retrain_when is not None,
    )


def _wave(pipeline: Pipeline, target: Target) -> int:
    """With consistent targets, the ones that check their own health (a canary) go first, the others once they are healthy."""
    staged = pipeline.serving.consistency == "all" and any(t.checks_health for t in pipeline.targets)
    return 0 if not staged or target.checks_health else 1
