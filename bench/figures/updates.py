"""CPU per target update and fan-out: devhost updating N = 1, 10, 50 classic endpoints, against a direct script.

The direct script (`bench/direct.py`, its own process, with the environment devhost gives the app)
makes the same calls with nothing of the app: a read SAS, PATCH, GET at once and then on the app's
confirm cadence, all N in parallel on one pooled session. CPU per update is (CPU at N = 50 - CPU
at N = 1) / 49 for devhost and for the script, so what a run costs whatever its fan-out (the job,
the record) cancels out. devhost's share is split into the app's own activity code
(`bench/activity_cpu.py`: the same activities, called without any host, each thread's CPU counted)
and the rest: the orchestrations, the Durable engine (durabletask's in-memory backend over gRPC,
in the same process) and devhost itself.

These are devhost's figures, not goals for the app: on Azure the Durable engine and the dispatch
are the Functions host's (outside the Python worker), so the part that is the app's is its activity
code, reported beside the direct script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.figures import Row
from bench.stack import Stack

NAME = "updates"
SIZES = (1, 10, 50)


def prepare(stack: Stack) -> None:
    endpoints = stack.endpoints(stack.scoring, "fan", max(SIZES))
    stack.state["fan"] = endpoints
    for n in SIZES:
        stack.pipeline(f"fan-{n}", targets=[stack.classic(e) for e in endpoints[:n]])


def app_environment(stack: Stack) -> dict[str, str]:
    """The environment devhost gives the app: this process's, plus every app setting."""
    return dict(os.environ) | stack.settings


def direct(
    stack: Stack, endpoints: list[dict[str, Any]], model: str, environment: dict[str, str] | None = None
) -> dict[str, float]:
    spec = {
        "connection_string": stack.azurite.connection_string,
        "model": model,
        "resource": stack.scoring["resourceName"],
        "endpoints": [{"url": e["updateResourceEndpoint"], "key": e["apiKey"]} for e in endpoints],
        "parallel": True,
    }
    path = stack.work / f"direct-{len(endpoints)}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(stack.root / "bench" / "direct.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=environment,
    )
    return dict(json.loads(done.stdout))


def activity_code(
    stack: Stack, pipeline: str, endpoints: list[dict[str, Any]], model: dict[str, Any], profile: int = 0
) -> float:
    """CPU seconds the app's own activity code spends on these updates (bench/activity_cpu.py, no host)."""
    path = stack.work / "activity-cpu.json"
    path.write_text(json.dumps({"pipeline": pipeline, "targets": [e["name"] for e in endpoints], "model": model}))
    command = [
        sys.executable,
        str(stack.root / "bench" / "activity_cpu.py"),
        str(path),
        *(["--profile", str(profile)] if profile else []),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=True, env=app_environment(stack), cwd=stack.work
    )
    if profile:
        print(done.stderr, file=sys.stderr)
    return float(json.loads(done.stdout)["cpu_s"])


def copy(stack: Stack, location: str, suffix: str) -> str:
    """The same model under another name, which no endpoint shows yet (so each update waits for its swap)."""
    container, name = location.split("/", 1)
    data = stack.blobs.get_blob_client(container, name).download_blob().readall()
    stack.blobs.get_blob_client(container, f"{name}.{suffix}.ilearner").upload_blob(data, overwrite=True)
    return f"{container}/{name}.{suffix}.ilearner"


def measure(stack: Stack) -> dict[str, Any]:
    endpoints = stack.state["fan"]
    pids = [stack.devhost_pid, stack.emulator.process.pid, stack.azurite.process.pid]
    rows = []
    for n in SIZES:
        stack.job_behaviour(duration_s=0.1)
        devhost_before, all_before = stack.cpu([stack.devhost_pid]), stack.cpu(pids)
        _, result = stack.run(f"fan-{n}")
        devhost_cpu, all_cpu = stack.cpu([stack.devhost_pid]) - devhost_before, stack.cpu(pids) - all_before
        assert len(result["targets"]) == n and all(t["updated"] for t in result["targets"]), result
        floor = direct(stack, endpoints[:n], copy(stack, result["model"]["location"], "direct"), app_environment(stack))
        bare = direct(stack, endpoints[:n], copy(stack, result["model"]["location"], "bare"))
        code_cpu = None
        if n == max(SIZES):
            model = result["model"] | {"location": copy(stack, result["model"]["location"], "activities")}
            code_cpu = activity_code(stack, f"fan-{n}", endpoints[:n], model)
        rows.append(
            {
                "targets": n,
                "app_update_s": round(result["phases"]["updating"], 3),
                "direct_update_s": round(floor["wall_s"], 3),
                "devhost_cpu_s": round(devhost_cpu, 3),
                "all_cpu_s": round(all_cpu, 3),
                "direct_cpu_s": round(floor["cpu_s"], 4),
                "direct_bare_cpu_s": round(bare["cpu_s"], 4),
                "activity_code_cpu_s": None if code_cpu is None else round(code_cpu, 4),
            }
        )
    stack.clear()
    first, last = rows[0], rows[-1]
    extra = last["targets"] - first["targets"]

    def per_update(key: str) -> float:
        return round((last[key] - first[key]) / extra * 1000, 2)

    app_ms, direct_ms, code_ms = (
        per_update("devhost_cpu_s"),
        per_update("direct_cpu_s"),
        round(last["activity_code_cpu_s"] / last["targets"] * 1000, 2),
    )
    return {
        "rows": rows,
        "app_cpu_ms_per_update": app_ms,
        "direct_cpu_ms_per_update": direct_ms,
        "activity_code_cpu_ms_per_update": code_ms,
        "direct_bare_cpu_ms_per_update": per_update("direct_bare_cpu_s"),
        "all_cpu_ms_per_update": per_update("all_cpu_s"),
        "cpu_ratio": round(app_ms / direct_ms, 2),
        "n50_over_n1": round(last["app_update_s"] / first["app_update_s"], 2),
        "direct_n50_over_n1": round(last["direct_update_s"] / first["direct_update_s"], 2),
    }


def report(r: dict[str, Any]) -> list[str]:
    return [
        "updates: targets  app update (s)  direct (s)  devhost CPU (s)  all processes CPU (s)  direct CPU (s)",
        *[
            f"          {x['targets']:>7}  {x['app_update_s']:>14.3f}  {x['direct_update_s']:>10.3f}  {x['devhost_cpu_s']:>15.3f}"
            f"  {x['all_cpu_s']:>21.3f}  {x['direct_cpu_s']:>14.4f}"
            for x in r["rows"]
        ],
        f"   CPU per update: devhost {r['app_cpu_ms_per_update']} ms"
        f" (of which the app's activity code {r['activity_code_cpu_ms_per_update']} ms),"
        f" direct script {r['direct_cpu_ms_per_update']} ms: {r['cpu_ratio']}x (devhost's figure; the app's activity"
        f" code {_code_ratio(r)}x the direct script);"
        f" direct script without the app settings in its environment {r['direct_bare_cpu_ms_per_update']} ms;"
        f" all processes {r['all_cpu_ms_per_update']} ms",
        f"   fan-out: N=50 takes {r['n50_over_n1']}x the time of N=1 on devhost (devhost's figure); direct script"
        f" {r['direct_n50_over_n1']}x",
    ]


def _code_ratio(r: dict[str, Any]) -> float:
    return round(r["activity_code_cpu_ms_per_update"] / r["direct_cpu_ms_per_update"], 2)


def summary(r: dict[str, Any]) -> list[Row]:
    rest = round(r["app_cpu_ms_per_update"] - r["activity_code_cpu_ms_per_update"], 2)
    # N = 50 less N = 1: if something else ran in devhost during N = 1 (its ten-minute queue sweep) the
    # difference is meaningless
    meaningful = r["app_cpu_ms_per_update"] > 0
    return [
        Row(
            "devhost: CPU per target update (the devhost process)",
            f"{r['app_cpu_ms_per_update']} ms ({r['cpu_ratio']}×)"
            + (
                f"; the app's activity code {r['activity_code_cpu_ms_per_update']} ms ({_code_ratio(r)}×),"
                f" devhost's engine and the orchestrations {rest} ms"
                if meaningful
                else " (devhost's queue sweep fell into N = 1: no figure)"
            ),
            "devhost's figure, not a goal for the app",
            f"direct script: {r['direct_cpu_ms_per_update']} ms",
            None,
            "devhost's figure",
        ),
        Row(
            "devhost: fan-out, N = 50 vs N = 1 wall time",
            f"{r['n50_over_n1']}× ({r['rows'][-1]['app_update_s']} s vs {r['rows'][0]['app_update_s']} s)",
            "devhost's figure, not a goal for the app",
            f"direct script: {r['direct_n50_over_n1']}×",
            None,
            "devhost's figure",
        ),
    ]
