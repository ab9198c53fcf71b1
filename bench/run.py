"""`make bench`: every figure, each measured side by side with its baseline in the same run.

One local stack (Azurite, the emulator, one devhost process; loopback only) serves all figures
(`bench/figures/`, one module each, run in this order):

1. cold_start  `import function_app` and the first activity in a clean virtualenv, vs a minimal Durable app (5 runs)
2. overhead    a retrain on devhost vs a direct script making the same calls; split into app code, waits, dispatch
3. detection   polling that learns from history vs the baseline schedule (time-scaled, and at real scale), plus a planner sweep
4. events      Azure ML jobs with completion events vs polling with the events lost
5. canary      an Azure ML canary rollout's time beyond its bakes vs a direct script
6. updates     CPU per target update vs a direct script; fan-out N = 1, 10, 50 (devhost's figures)
7. data_size   10 MB to 1 GB of training data: devhost's memory and reads stay flat
8. scale       1,000 pipelines in the definitions; 300 runs at once (devhost's figure)
9. page        the status page of a pipeline with 1,000 runs, vs reading its records one by one
10. replay     Azure's replay cost: every episode through azure-functions-durable's handler, bounded vs not

Prints the table of targets and each figure's lines, writes bench/results.json and appends a dated
section to bench/RESULTS.md. `python bench/run.py --only detection,updates` runs some figures and
writes bench/.work/partial.json instead (for iterating).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import (
    Row,
    canary,
    cold_start,
    data_size,
    detection,
    events,
    overhead,
    page,
    replay,
    scale,
    updates,
)
from bench.stack import KEEP, ROOT, Stack

FIGURES: tuple[ModuleType, ...] = (
    cold_start,
    overhead,
    detection,
    events,
    canary,
    updates,
    data_size,
    scale,
    page,
    replay,
)
FIGURES += (__import__("bench.figures.drift").figures.drift,)  # the drift check's MB/s and peak memory


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    memory = next(
        int(line.split()[1]) // 1024 // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores ({cpu}), {memory} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def settle(stack: Stack, quiet_cpu_s: float = 0.05, timeout_s: float = 90) -> float:
    """Wait until devhost is idle (its start-up queue sweep over every pipeline has finished); return the wait."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        before = stack.cpu([stack.devhost_pid])
        time.sleep(1.0)
        if stack.cpu([stack.devhost_pid]) - before < quiet_cpu_s:
            break
    return round(time.monotonic() - began, 1)


def table(rows: list[Row]) -> list[str]:
    return [
        "| figure | measured | target | baseline (same run) | |",
        "|---|---|---|---|---|",
        *[f"| {r.figure} | {r.measured} | {r.target} | {r.baseline} | {r.verdict} |" for r in rows],
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated figure names (writes bench/.work/partial.json only)")
    args = parser.parse_args(argv)
    chosen = [f for f in FIGURES if not args.only or f.NAME in args.only.split(",")]
    began = time.monotonic()
    load_at_start = load_average()
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    stack = Stack()
    try:
        for figure in chosen:
            figure.prepare(stack)
        scale.pad(stack)  # devhost always holds DEFINED pipelines, whichever figures run
        stack.start_devhost()
        settled = settle(stack)
        print(f"bench: devhost up with {len(stack.pipelines)} pipelines, idle after {settled} s", flush=True)
        for figure in chosen:
            print(f"bench: {figure.NAME} ...", flush=True)
            start = time.monotonic()
            try:
                results[figure.NAME] = figure.measure(stack)
            except Exception as exc:  # one figure's failure must not lose the others' measurements
                traceback.print_exc()
                failed[figure.NAME] = f"{type(exc).__name__}: {exc}"
            seconds[figure.NAME] = round(time.monotonic() - start, 1)
    finally:
        stack.stop()
    total = time.monotonic() - began
    measured = [f for f in chosen if f.NAME in results]
    rows = [row for figure in measured for row in figure.summary(results[figure.NAME])]
    rows += [Row(f"{name}: not measured", why[:300], "-", "-", None, "**failed**") for name, why in failed.items()]
    lines = [line for figure in measured for line in figure.report(results[figure.NAME])]
    lines += [f"{name}: FAILED, {why}" for name, why in failed.items()]
    timing = ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
    text = "\n".join([*table(rows), "", "```", *lines, f"(bench ran {total:.0f} s: {timing})", "```"])
    print(text)
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": load_at_start,
        "seconds": round(total),
        "figure_seconds": seconds,
        "summary": [r.to_dict() for r in rows],
        "failed": failed,
        **results,
    }
    if args.only:
        (KEEP / "partial.json").write_text(json.dumps(document, indent=2) + "\n")
        return 0
    (ROOT / "bench" / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    with open(ROOT / "bench" / "RESULTS.md", "a") as out:
        out.write(
            f"\n## {document['date']}\n\nMachine: {document['machine']}; load average at start {load_at_start} "
            f"(1, 5, 15 min)\n\n{text}\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
