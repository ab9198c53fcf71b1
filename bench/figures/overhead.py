"""What a retrain on devhost adds to the job, against a minimal script making the same calls (tight polling)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.figures import Row
from bench.stack import Stack

NAME = "overhead"
JOB_S = 3.0
REPEATS = 3
PARTS = ("trigger_to_submitted", "finished_to_detected", "detected_to_updated")


def prepare(stack: Stack) -> None:
    endpoint2 = next(e for e in stack.scoring["endpoints"] if e["name"] == "endpoint2")
    stack.pipeline("overhead", targets=[stack.classic(endpoint2)], first_s=0.05, max_s=0.25)


def measure(stack: Stack) -> dict[str, Any]:
    endpoint2 = next(e for e in stack.scoring["endpoints"] if e["name"] == "endpoint2")
    app_parts, floor_parts, ratios = [], [], []
    for _ in range(REPEATS):
        stack.job_behaviour(duration_s=JOB_S)
        began, result = stack.run("overhead", poll_s=0.05)
        job = stack.jobs()[result["job_id"]]
        detected, updated = stack.moments(result)
        app_parts.append([job["created_at"] - began, detected - job["finished_at"], updated - detected])
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
    outside = (
        app["trigger_to_submitted"]
        - floor["trigger_to_submitted"]
        + app["detected_to_updated"]
        - floor["detected_to_updated"]
    )
    return {
        "job_s": JOB_S,
        "repeats": REPEATS,
        "wall_ratio": round(statistics.median(ratios), 3),
        "app_s": app,
        "floor_s": floor,
        "overhead_outside_detection_s": round(outside, 3),
        "detection_share_of_job": round(app["finished_to_detected"] / JOB_S, 4),
    }


def report(o: dict[str, Any]) -> list[str]:
    return [
        f"overhead (job {o['job_s']} s, median of {o['repeats']}): wall-time ratio app/floor {o['wall_ratio']}",
        "   part                      app (s)   floor (s)",
        *[f"   {k:<24} {o['app_s'][k]:>8.3f}   {o['floor_s'][k]:>8.3f}" for k in o["app_s"]],
        f"   overhead outside detection {o['overhead_outside_detection_s']:.3f} s (target < 0.3)",
    ]


def summary(o: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "overhead outside detection (3 s job)",
            f"{o['overhead_outside_detection_s']:.2f} s; wall ratio {o['wall_ratio']}",
            "< 0.3 s",
            f"direct script: {sum(o['floor_s'].values()):.2f} s of calls",
            o["overhead_outside_detection_s"] < 0.3,
        )
    ]
