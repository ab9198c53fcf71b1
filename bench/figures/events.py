"""Completion events: Azure ML jobs whose end reaches the app by Event Grid, against polling alone.

Three Azure ML pipelines (the shipped `aml-retrain`, no targets, no gate) with `completionEvents`
run one job each at once; the emulator's workspace delivers its job events to devhost's Event Grid
webhook, as `infra/aml-events.bicep` subscribes the app on Azure. The baseline, in the same run,
is three pipelines with the baseline's polling (the same schedule, `completionEvents` off) whose events are
lost (`/_emulator/faults`, kind `aml_events`). Every job runs `JOB_S` seconds in Running.

Per job: the status calls (the monitor's polls) and the delay from the job's end (when the
emulator publishes `RunStatusChanged`) to the moment the run saw it (the end of its `polling`
phase). Targets: at most 2 status calls per job, detection within 2 s of the event.
"""

from __future__ import annotations

import statistics
from typing import Any

import requests

from bench.figures import Row
from bench.stack import Stack

NAME = "events"
JOB_S = 30.0  # each job's time in Running
PIPELINES = 3  # per side


def prepare(stack: Stack) -> None:
    for i in range(PIPELINES):
        for side, events in (("events", True), ("polling", False)):
            pipeline = stack.aml_pipeline(f"bench-aml-{side}-{i}", f"bench-aml-{side}-{i}", targets=[])
            pipeline["polling"] = pipeline["polling"] | {"completionEvents": events}


def _jobs(stack: Stack) -> dict[str, dict[str, Any]]:
    state = requests.get(f"{stack.emulator.http_base}/_emulator/state", timeout=30).json()
    return {j["name"]: j for ws in state["azureMl"]["workspaces"] for j in ws["jobs"]}


def _side(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    names = [f"{prefix}-{i}" for i in range(PIPELINES)]
    done = stack.wait({name: stack.start(name) for name in names}, poll_s=0.2)
    jobs = _jobs(stack)
    rows = []
    for name in names:
        record = done[name][1]
        if record["status"] != "Succeeded":
            raise RuntimeError(f"{name} ended {record['status']}: {record.get('reason')}")
        job = jobs[record["job_id"]]
        detected, _ = stack.moments(record)
        rows.append(
            {
                "pipeline": name,
                "status_calls": record["job"]["polls"],
                "woken_by_event": record["job"]["woken_by_event"],
                "job_s": round(job["endedAt"] - job["startedAt"], 2),
                "delay_s": round(detected - job["endedAt"], 3),
                "monitor_s": record["job"]["elapsed_s"],
                "phases": record["phases"],
            }
        )
    return rows


def measure(stack: Stack) -> dict[str, Any]:
    workspace = stack.services["azureMl"]["workspaces"][0]
    stack.load_aml_data()
    webhook = f"{stack.url}/runtime/webhooks/eventgrid?functionName=aml_job_event&code={stack.eventgrid_key}"
    requests.post(
        f"{stack.emulator.http_base}/_emulator/azure-ml/event-subscriptions",
        json={"workspace": workspace["name"], "url": webhook},
        timeout=30,
    ).raise_for_status()
    stack.fault({"kind": "aml_job", "job": "bench-aml-*", "duration_s": JOB_S, "remaining": None})
    events = _side(stack, "bench-aml-events")
    stack.fault({"kind": "aml_events", "action": "drop", "remaining": None})
    polling = _side(stack, "bench-aml-polling")
    stack.clear()
    return {
        "measured": True,
        "job_s": JOB_S,
        "jobs": len(events),
        "events": events,
        "polling": polling,
        "max_status_calls": max(r["status_calls"] for r in events),
        "max_event_to_detection_s": max(r["delay_s"] for r in events),
        "baseline_median_calls": statistics.median(r["status_calls"] for r in polling),
        "baseline_median_delay_s": statistics.median(r["delay_s"] for r in polling),
    }


def report(r: dict[str, Any]) -> list[str]:
    if not r.get("measured"):
        return [f"events: {r.get('reason', 'not measured')}"]
    lines = [
        f"events ({r['jobs']} Azure ML jobs of {r['job_s']:.0f} s a side, at once): "
        "status calls, delay from the job's end to its detection",
        "   pipeline               calls  woken  delay (s)",
    ]
    lines += [
        f"   {x['pipeline']:<22} {x['status_calls']:>5}  {'yes' if x['woken_by_event'] else 'no':>5}  {x['delay_s']:>9.3f}"
        for x in r["events"] + r["polling"]
    ]
    return lines


def summary(r: dict[str, Any]) -> list[Row]:
    target = "≤ 2 status calls per job; detection within 2 s of the event"
    if not r.get("measured"):
        return [
            Row(
                "status calls with completion events",
                r.get("reason", "not measured"),
                target,
                "polling (events lost)",
                None,
            )
        ]
    met = r["max_status_calls"] <= 2 and r["max_event_to_detection_s"] <= 2
    return [
        Row(
            f"status calls with completion events ({r['job_s']:.0f} s Azure ML jobs)",
            f"at most {r['max_status_calls']} calls; detected at most {r['max_event_to_detection_s']} s after the job's end",
            target,
            f"the baseline's polling, events lost: median {r['baseline_median_calls']} calls, {r['baseline_median_delay_s']} s",
            met,
        )
    ]
