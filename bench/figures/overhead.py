"""What a retrain on devhost adds to the job, against a minimal script making the same calls (tight polling).

Outside detection (the HTTP start to the job's submission, and the job's detection to the target's
update confirmed) the app's time is split, from `bench.devhost_traced`'s trace of this pipeline's
instances, into what adds up to it exactly:

- the app's code: HTTP start function, activities (their storage and service calls included),
  orchestrator code (every replayed step); less the Durable client calls the HTTP function makes
  (start, status, raise event), which are the host's API and count as its dispatch;
- the waits the app chose: durable timers (e.g. the update's first confirm look) that woke their
  orchestration (a guard timer raced against an activity or an event, which something else beat, is
  not a wait);
- devhost's dispatch: the rest, when none of the app's code runs and no timer of its own is pending
  (the Durable engine handing work items over gRPC, its timer thread, queue orchestration hand-offs).

The floor's calls (the same submission and update from a plain script) are what any app would pay,
so the overhead is dispatch + waits + (app code - the floor's calls). On Azure the dispatch is the
Functions host's and its storage provider's (not measured here); the app's code and waits are the
same code.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.figures import Row
from bench.stack import Stack
from retraining.instances import queue_instance_id

NAME = "overhead"
PIPELINE = "overhead"
JOB_S = 3.0
REPEATS = 3
TARGET_S = 0.3
PARTS = ("trigger_to_submitted", "finished_to_detected", "detected_to_updated")
OUTSIDE = ("trigger_to_submitted", "detected_to_updated")
CODE = ("http", "activity", "step")


def prepare(stack: Stack) -> None:
    endpoint2 = next(e for e in stack.scoring["endpoints"] if e["name"] == "endpoint2")
    stack.pipeline(PIPELINE, targets=[stack.classic(endpoint2)], first_s=0.05, max_s=0.25)
    stack.trace_instances.append(queue_instance_id(PIPELINE))
    stack.trace_paths.append(f"/api/pipelines/{PIPELINE}/runs")


def _measure(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of `intervals` clipped to [lo, hi]."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) > max(a, lo))
    total, end = 0.0, lo
    for a, b in clipped:
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def waits(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timers that woke their orchestration: its next episode began at or after the timer's due time."""
    episodes: dict[str, list[float]] = {}
    for e in trace:
        if e["kind"] == "episode":
            episodes.setdefault(e["instance"], []).append(e["start"])
    woke = []
    for timer in (e for e in trace if e["kind"] == "timer"):
        following = [t for t in episodes.get(timer["instance"], []) if t > timer["at"]]
        if following and min(following) >= timer["end"] - 0.001:
            woke.append(timer)
    return woke


def split(trace: list[dict[str, Any]], lo: float, hi: float) -> dict[str, Any]:
    """[lo, hi] of a run as the app's code, its timers, and devhost's dispatch (the three add up to hi - lo)."""
    spans = {kind: [(e["start"], e["end"]) for e in trace if e["kind"] == kind] for kind in (*CODE, "client")}
    spans["timer"] = [(e["start"], e["end"]) for e in waits(trace)]
    client = _measure(spans["client"], lo, hi)
    code_or_client = _measure([s for kind in (*CODE, "client") for s in spans[kind]], lo, hi)
    busy = _measure([s for kind in (*CODE, "client", "timer") for s in spans[kind]], lo, hi)
    inside = [e for e in trace if lo <= e["start"] < hi]
    return {
        "length": hi - lo,
        "code": code_or_client - client,
        "waits": busy - code_or_client,
        "dispatch": (hi - lo) - busy + client,
        "client_s": client,
        "client_calls": sum(1 for e in inside if e["kind"] == "client"),
        **{f"{kind}_s": _measure(spans[kind], lo, hi) for kind in (*CODE, "timer")},
        "activities": sorted({e["name"] for e in inside if e["kind"] == "activity"}),
        "by_activity": {
            name: round(_measure([(e["start"], e["end"]) for e in trace if e.get("name") == name], lo, hi), 3)
            for name in sorted({e["name"] for e in inside if e["kind"] in ("activity", "http")})
        },
        "activity_calls": sum(1 for e in inside if e["kind"] == "activity"),
        "activity_cpu_s": sum(e["cpu"] for e in inside if e["kind"] == "activity"),
        "episodes": sum(1 for e in inside if e["kind"] == "episode"),
        "timers": sum(1 for e in waits(trace) if lo <= e["start"] < hi),
    }


def measure(stack: Stack) -> dict[str, Any]:
    endpoint2 = next(e for e in stack.scoring["endpoints"] if e["name"] == "endpoint2")
    app_parts, floor_parts, ratios, splits = [], [], [], []
    for _ in range(REPEATS):
        stack.job_behaviour(duration_s=JOB_S)
        began, result = stack.run(PIPELINE, poll_s=0.05)
        job = stack.jobs()[result["job_id"]]
        detected, updated = stack.moments(result)
        app_parts.append([job["created_at"] - began, detected - job["finished_at"], updated - detected])
        time.sleep(0.5)  # the trace's last lines (the run's record) are written after the record is seen
        trace = stack.trace(since=began - 1)
        splits.append({"trigger_to_submitted": split(trace, began, job["created_at"])})
        splits[-1]["detected_to_updated"] = split(trace, detected, updated)
        stack.job_behaviour(duration_s=JOB_S)
        f_began, f_job, f_detected, _ = stack.direct_job(0.01)
        stack.direct_update(endpoint2, f"trainingoutput/{stack.jobs()[f_job]['outputs'][0].split('/', 1)[1]}")
        f_updated = time.time()
        floor_job = stack.jobs()[f_job]
        floor_parts.append(
            [floor_job["created_at"] - f_began, f_detected - floor_job["finished_at"], f_updated - f_detected]
        )
        ratios.append((updated - began) / (f_updated - f_began))
        stack.clear()
    app = {part: round(statistics.median(r[i] for r in app_parts), 3) for i, part in enumerate(PARTS)}
    floor = {part: round(statistics.median(r[i] for r in floor_parts), 3) for i, part in enumerate(PARTS)}
    outside = sum(app[p] - floor[p] for p in OUTSIDE)
    breakdown: dict[str, dict[str, Any]] = {}
    for part in OUTSIDE:
        taken = [s[part] for s in splits]
        numbers = {
            k: round(statistics.median(t[k] for t in taken), 3)
            for k in taken[0]
            if k not in ("activities", "by_activity")
        }
        names = sorted({name for t in taken for name in t["by_activity"]})
        by_activity = {n: round(statistics.median(t["by_activity"].get(n, 0.0) for t in taken), 3) for n in names}
        breakdown[part] = numbers | {"activities": taken[0]["activities"], "by_activity": by_activity}
    return {
        "job_s": JOB_S,
        "repeats": REPEATS,
        "wall_ratio": round(statistics.median(ratios), 3),
        "app_s": app,
        "floor_s": floor,
        "overhead_outside_detection_s": round(outside, 3),
        "detection_share_of_job": round(app["finished_to_detected"] / JOB_S, 4),
        "breakdown": breakdown,
        "outside": _outside(breakdown, floor),
    }


def _outside(breakdown: dict[str, dict[str, Any]], floor: dict[str, float]) -> dict[str, float]:
    """The overhead outside detection as devhost's dispatch, the app's waits, and its code beyond the floor's calls
    (medians of each part, so the sum can differ from the overhead's own median by a few ms)."""
    dispatch = sum(breakdown[p]["dispatch"] for p in OUTSIDE)
    waits = sum(breakdown[p]["waits"] for p in OUTSIDE)
    code = sum(breakdown[p]["code"] for p in OUTSIDE)
    episodes = sum(breakdown[p]["episodes"] for p in OUTSIDE)
    floor_s = sum(floor[p] for p in OUTSIDE)
    return {
        "dispatch_s": round(dispatch, 3),
        "waits_s": round(waits, 3),
        "code_s": round(code, 3),
        "floor_s": round(floor_s, 3),
        "episodes": episodes,
        "dispatch_per_episode_ms": round(dispatch / episodes * 1000, 1) if episodes else 0.0,
        # the overhead on a host whose dispatch cost nothing: the app's code and waits, less the floor's calls
        "without_dispatch_s": round(waits + code - floor_s, 3),
    }


def report(o: dict[str, Any]) -> list[str]:
    lines = [
        f"overhead (job {o['job_s']} s, median of {o['repeats']}): wall-time ratio app/floor {o['wall_ratio']}",
        "   part                      app (s)   floor (s)",
        *[f"   {k:<24} {o['app_s'][k]:>8.3f}   {o['floor_s'][k]:>8.3f}" for k in o["app_s"]],
        f"   overhead outside detection {o['overhead_outside_detection_s']:.3f} s (target < {TARGET_S})",
        "   split (traced)          app code (http less client calls, activities, orchestrators) | waits (timers)"
        " | devhost dispatch (episodes; of which client calls) | activity CPU  activities",
    ]
    for part, b in o.get("breakdown", {}).items():
        lines.append(
            f"   {part:<24} {b['code']:.3f} ({b['http_s'] - b['client_s']:.3f}, {b['activity_s']:.3f},"
            f" {b['step_s']:.3f}){'':>30} | {b['waits']:.3f} ({b['timers']:.0f})"
            f"  | {b['dispatch']:.3f} ({b['episodes']:.0f}; {b['client_s']:.3f} in {b['client_calls']:.0f} calls){'':>12}"
            f" | {b['activity_cpu_s']:>12.3f}  {b['activity_calls']:.0f}: {', '.join(b['activities'])}"
        )
    for part, b in o.get("breakdown", {}).items():
        ranked = sorted(b.get("by_activity", {}).items(), key=lambda item: -item[1])
        lines.append(f"   {part:<24} by function (s): " + ", ".join(f"{n} {v:.3f}" for n, v in ranked))
    if "outside" in o:
        x = o["outside"]
        lines.append(
            f"   outside detection, app: code {x['code_s']:.3f} s + waits {x['waits_s']:.3f} s + devhost dispatch"
            f" {x['dispatch_s']:.3f} s ({x['episodes']:.0f} episodes, {x['dispatch_per_episode_ms']} ms each);"
            f" floor {x['floor_s']:.3f} s; overhead without devhost's dispatch (code + waits - floor):"
            f" {x['without_dispatch_s']:.3f} s"
        )
    return lines


def summary(o: dict[str, Any]) -> list[Row]:
    measured = f"{o['overhead_outside_detection_s']:.2f} s; wall ratio {o['wall_ratio']}"
    met = o["overhead_outside_detection_s"] < TARGET_S
    if "outside" in o:
        x = o["outside"]
        measured += (
            f"; app code {x['code_s']:.2f} s + its waits {x['waits_s']:.2f} s + devhost dispatch"
            f" {x['dispatch_s']:.2f} s ({x['episodes']:.0f} episodes) - the floor's {x['floor_s']:.2f} s;"
            f" without devhost's dispatch {x['without_dispatch_s']:.2f} s"
        )
    return [
        Row(
            "overhead outside detection (3 s job)",
            measured,
            f"< {TARGET_S} s",
            f"direct script: {sum(o['floor_s'].values()):.2f} s of calls",
            met,
        )
    ]
