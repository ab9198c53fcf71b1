"""What the page and the JSON routes show, gathered from storage only: definitions, the run index, the
lineage's `serving.json` and the run queue's requests. Never the task hub: the live phase of a run in
progress comes from the request status route (custom status), which the page's script asks for.

Everything returned is plain JSON data without secrets: definitions contribute names, numbers,
the schedule and the events notified, never an endpoint URL, a webhook or a setting's value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..definitions import Pipeline
from ..lineage import Lineage
from ..queue import QueuedRequest, RequestState, RunQueue
from ..timespans import format_timespan
from .schedule import next_fire

MAX_RUNS = 5000


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_of(pipeline: Pipeline, expression: str | None, now: datetime) -> dict[str, Any]:
    """The timer's schedule as it applies to this pipeline, and when it next starts a run (None: it will not)."""
    view: dict[str, Any] = {"expression": expression, "enabled": pipeline.schedule_enabled, "next": None, "note": None}
    if not pipeline.schedule_enabled:
        view["note"] = "the schedule is disabled for this pipeline"
        return view
    if not expression:
        view["note"] = "RETRAIN_SCHEDULE is not set"
        return view
    try:
        moment = next_fire(expression, max(now, pipeline.active_from) if pipeline.active_from else now)
    except ValueError as exc:
        view["note"] = f"RETRAIN_SCHEDULE cannot be read: {exc}"
        return view
    if pipeline.active_until and moment >= pipeline.active_until:
        view["note"] = f"the pipeline's schedule ended at {_iso(pipeline.active_until)}"
        return view
    view["next"] = _iso(moment)
    return view


def definition_of(pipeline: Pipeline) -> dict[str, Any]:
    """What a reader needs of the definition: gate, approval, targets, notified events (no URL, no setting)."""
    gate = pipeline.gate
    return {
        "gate": {
            "minimums": dict(gate.minimums),
            "not_worse_than_serving": list(gate.not_worse_than_serving),
            "approval": {"required": gate.approval.required, "timeout": format_timespan(gate.approval.timeout)},
        },
        "targets": [{"name": t.name, "kind": t.kind} for t in pipeline.targets],
        "notifications": list(pipeline.notifications.events) if pipeline.notifications else [],
        "data": f"{pipeline.data_container}/{pipeline.data_blob}",
        "retrain_when": pipeline.retrain_when.to_definition() if pipeline.retrain_when else None,
    }


def request_summary(entry: QueuedRequest) -> dict[str, Any]:
    request = entry.request
    return {
        "id": entry.request_id,
        "state": entry.state.value,
        "run_id": entry.run_id,
        "action": request.action.value,
        "trigger": request.trigger.kind.value,
        "trigger_detail": request.trigger.detail[:200],
        "dry_run": request.dry_run,
        "requested_by": request.requested_by,
        "accepted_at": entry.accepted_at,
        "source_run": request.source_run,
    }


def waiting(queue: RunQueue, pipeline: str) -> list[dict[str, Any]]:
    """The pipeline's running and pending requests, running first, then oldest first."""
    entries = queue.active(pipeline)
    entries.sort(key=lambda e: (e.state is not RequestState.RUNNING, e.accepted_at))
    return [request_summary(e) for e in entries]


def overview(
    pipeline: Pipeline, lineage: Lineage, queue: RunQueue, schedule: str | None, now: datetime
) -> dict[str, Any]:
    """One pipeline at a glance: schedule and next fire, last outcome, what runs or waits now."""
    last = lineage.index.recent(pipeline.name, 1)
    return {
        "name": pipeline.name,
        "schedule": schedule_of(pipeline, schedule, now),
        "last": last[0] if last else None,
        "in_progress": waiting(queue, pipeline.name),
        "definition": definition_of(pipeline),
    }


def models_of(pipeline: Pipeline, lineage: Lineage, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What serves where since when, the champions, and every candidate model with its metrics (newest first)."""
    serving = lineage.serving(pipeline.name).to_dict()
    champions = {s["run_id"] for s in [serving["champion"], *serving["previous"]] if s}
    for served in [serving["champion"], *serving["previous"], *serving["targets"].values()]:
        if served:
            served["model"].pop("columns", None)  # can be hundreds of names; the record has them
    candidates = [
        {
            "run_id": r["run_id"],
            "status": r["status"],
            "finished_at": r["finished_at"],
            "model": r["model"],
            "gate": r.get("gate"),
            "champion": r["run_id"] in champions,
        }
        for r in runs
        if r.get("model") and r.get("action") == "retrain"
    ]
    return {
        "pipeline": pipeline.name,
        "champion": serving["champion"],
        "targets": serving["targets"],
        "previous": serving["previous"],
        "unsettled": serving["unsettled"],  # targets whose state a run could not establish
        "candidates": candidates,
    }


def pipeline_view(
    pipeline: Pipeline, lineage: Lineage, queue: RunQueue, schedule: str | None, now: datetime, limit: int = 50
) -> dict[str, Any]:
    """Everything the pipeline's page shows: overview, the latest `limit` runs, and every model run for the plots."""
    runs = lineage.index.recent(pipeline.name, MAX_RUNS)
    view = overview(pipeline, lineage, queue, schedule, now) | {"last": runs[0] if runs else None}
    view["runs"] = runs[:limit]
    view["run_count"] = len(runs)
    view["models"] = models_of(pipeline, lineage, runs)
    view["outcomes"] = latest_outcomes(runs)
    view["generated_at"] = _iso(now)
    return view


def latest_outcomes(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each target's most recent rollout outcome (state, steps, progress such as a traffic split), newest run first."""
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        for target in run.get("targets") or []:
            found.setdefault(target["target"], target | {"run_id": run["run_id"], "at": run["finished_at"]})
    return found
