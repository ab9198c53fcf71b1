"""SLOT for the Azure ML engineer: completion events (Event Grid `JobCompleted`) instead of polling.

Not measured yet: it needs the Azure ML backend (the training service that announces completion,
`announces_completion = True`, and the path that raises `job_status_changed` to the monitor), which
is being built in main. To fill it in: in `prepare`, add an Azure ML pipeline (its workspace from
`stack.services["azureMl"]`); in `measure`, run N jobs of a few seconds with events on and return
{"measured": True, "jobs": N, "max_status_calls": ..., "max_event_to_detection_s": ...}, reading
status calls and event times from the emulator's `/_emulator/state`; the baseline (same run) is the
same pipeline with its events lost (`/_emulator/faults`, kind "event"), which falls back to polling.
`summary` already states the targets: <= 2 status calls per job, detection within 2 s of the event.
"""

from __future__ import annotations

from typing import Any

from bench.figures import Row
from bench.stack import Stack

NAME = "events"
NOT_YET = "not measured yet: needs the Azure ML backend"


def prepare(stack: Stack) -> None:
    pass


def measure(stack: Stack) -> dict[str, Any]:
    return {"measured": False, "reason": NOT_YET}


def report(r: dict[str, Any]) -> list[str]:
    if not r["measured"]:
        return [f"events: {r['reason']}"]
    return [f"events: {r['jobs']} jobs, at most {r['max_status_calls']} status calls each, detection at most "
            f"{r['max_event_to_detection_s']} s after the event"]


def summary(r: dict[str, Any]) -> list[Row]:
    target = "≤ 2 status calls per job; detection within 2 s of the event"
    if not r["measured"]:
        return [Row("status calls with completion events", r["reason"], target, "polling (events lost)", None)]
    met = r["max_status_calls"] <= 2 and r["max_event_to_detection_s"] <= 2
    return [Row("status calls with completion events", f"{r['max_status_calls']} calls; {r['max_event_to_detection_s']} s after the event",
                target, r.get("baseline", "polling (events lost)"), met)]
