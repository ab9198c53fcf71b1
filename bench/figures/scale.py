"""Scale: 1,000 pipelines in the definitions, and 300 runs at once on one devhost.

devhost runs with every figure's pipelines plus idle ones, 1,000 in all. Loading that file (parsed
and validated, `%SETTING%`s resolved: what a worker's first activity does) is timed in fresh
interpreters against a file of one pipeline, with the memory the loaded definitions hold (tracemalloc).
Then 300 pipelines, each with its own
scoring endpoint (training spread over 8 endpoints, within the service's 40 running jobs per
endpoint), retrain at once with 1 s jobs; the baseline is such a run alone on the same devhost (median
of three, one after another).
Overhead is a run's time from the HTTP start to its last update confirmed, less its job's running time.
devhost's log gives how long each sweep of the run queues (`triggers/recovery.py`, one storage read
per pipeline) took.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.figures import Row
from bench.stack import ROOT, Stack, mb, proc

NAME = "scale"
DEFINED = 1000
RUNS = 300
TRAINING_ENDPOINTS = 8
JOB_S = 1.0
LOADS = 3
ALONE = 3  # runs one after another, for the baseline (median)
SWEEP = re.compile(r"Executed 'Functions.keep_queues_running' \((\d+) ms\)")

LOAD = """
import json, sys, time, tracemalloc
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from retraining.definitions import load_definitions
path, settings = Path(sys.argv[2]), json.loads(sys.argv[3])
began = time.perf_counter()
count = len(load_definitions(path, settings).pipelines)
took = time.perf_counter() - began
tracemalloc.start()  # a second load, traced apart: tracing slows loading several times
held = load_definitions(path, settings)
print(json.dumps({"pipelines": count, "load_s": took, "held_bytes": tracemalloc.get_traced_memory()[0]}))
"""


def prepare(stack: Stack) -> None:
    training = stack.endpoints(stack.training, "ctr", TRAINING_ENDPOINTS)
    scoring = stack.endpoints(stack.scoring, "con", RUNS)
    stack.state["con-training"] = training
    for i, endpoint in enumerate(scoring):
        stack.pipeline(f"con-{i:03d}", targets=[stack.classic(endpoint)], training=training[i % TRAINING_ENDPOINTS])


def pad(stack: Stack) -> None:
    """Idle pipelines up to DEFINED in all (call last, once every figure has added its own)."""
    for i in range(max(0, DEFINED - len(stack.pipelines))):
        stack.pipeline(f"idle-{i:04d}")


def load(stack: Stack, definitions: Path) -> dict[str, float]:
    runs = []
    for _ in range(LOADS):
        done = subprocess.run(
            [sys.executable, "-c", LOAD, str(ROOT), str(definitions), json.dumps(stack.settings)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        runs.append(json.loads(done.stdout))
    return {
        "pipelines": runs[0]["pipelines"],
        "load_s": round(statistics.median(r["load_s"] for r in runs), 4),
        "held_mb": mb(statistics.median(r["held_bytes"] for r in runs)),
    }


def overheads(stack: Stack, results: list[tuple[float, dict[str, Any]]]) -> list[float]:
    jobs = stack.jobs()
    out = []
    for began, result in results:
        job = jobs[result["job_id"]]
        _, updated = stack.moments(result)
        out.append(updated - began - (job["finished_at"] - job["started_at"]))
    return out


def measure(stack: Stack) -> dict[str, Any]:
    one = stack.work / "one-pipeline.json"
    one.write_text(json.dumps({"pipelines": stack.pipelines[:1]}))
    loads = {"all": load(stack, stack.definitions_file), "one": load(stack, one)}
    for endpoint in stack.state["con-training"]:
        stack.job_behaviour(target=endpoint["service_id"], duration_s=JOB_S, remaining=None)
    alone = statistics.median(overheads(stack, [stack.run(f"con-{i:03d}") for i in range(ALONE)]))
    rss_before = proc(stack.devhost_pid, "VmRSS")
    Path(f"/proc/{stack.devhost_pid}/clear_refs").write_text("5")  # peak RSS from here on
    began = time.time()
    names = [f"con-{i:03d}" for i in range(RUNS)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        started = dict(zip(names, pool.map(stack.start, names), strict=True))
    finished = stack.wait(started, poll_s=1.0)
    results = [finished[name] for name in names]
    wall = time.time() - began
    stack.clear()
    spent = overheads(stack, results)
    q = statistics.quantiles(spent, n=20)
    return {
        "defined": loads["all"]["pipelines"],
        "load": loads,
        "runs": RUNS,
        "job_s": JOB_S,
        "wall_s": round(wall, 1),
        "succeeded": sum(r["status"] == "Succeeded" for _, r in results),
        "alone_overhead_s": round(alone, 3),
        "overhead_p50_s": round(statistics.median(spent), 3),
        "overhead_p95_s": round(q[18], 3),
        "devhost_rss_before_mb": mb(rss_before),
        "devhost_peak_rss_mb": mb(proc(stack.devhost_pid, "VmHWM")),
        "queue_sweeps_s": [round(int(ms) / 1000, 1) for ms in SWEEP.findall(stack.devhost_log_path.read_text())],
    }


def report(r: dict[str, Any]) -> list[str]:
    a, o = r["load"]["all"], r["load"]["one"]
    return [
        f"scale: loading {a['pipelines']} pipelines {a['load_s'] * 1000:.0f} ms, holding {a['held_mb']} MB "
        f"(1 pipeline: {o['load_s'] * 1000:.1f} ms, {o['held_mb']} MB; median of {LOADS} fresh interpreters)",
        f"   {r['runs']} runs at once ({r['job_s']} s jobs): {r['succeeded']}/{r['runs']} succeeded in {r['wall_s']} s; overhead p50 "
        f"{r['overhead_p50_s']} s, p95 {r['overhead_p95_s']} s (one run at a time: {r['alone_overhead_s']} s); devhost RSS "
        f"{r['devhost_rss_before_mb']} MB before, peak {r['devhost_peak_rss_mb']} MB",
        f"   the queue sweep over every pipeline (at start, then every 10 minutes) took {r['queue_sweeps_s']} s",
    ]


def summary(r: dict[str, Any]) -> list[Row]:
    a, o = r["load"]["all"], r["load"]["one"]
    return [
        Row(
            f"{a['pipelines']} pipelines in the definitions",
            f"load {a['load_s'] * 1000:.0f} ms, {a['held_mb']} MB held",
            "reported",
            f"1 pipeline: {o['load_s'] * 1000:.1f} ms, {o['held_mb']} MB",
            None,
        ),
        Row(
            f"devhost: {r['runs']} concurrent runs on one devhost",
            f"{r['succeeded']}/{r['runs']} complete in {r['wall_s']} s; overhead p50 {r['overhead_p50_s']} s,"
            f" p95 {r['overhead_p95_s']} s; peak RSS {r['devhost_peak_rss_mb']} MB",
            "devhost's figure: all complete; RSS reported",
            f"one run at a time: {r['alone_overhead_s']} s; RSS before {r['devhost_rss_before_mb']} MB",
            None,
            f"devhost's figure ({r['succeeded']}/{r['runs']} complete)",
        ),
    ]
