"""Cold start: `import function_app`, indexing and the first activity call, against a minimal Durable app.

Both run in one clean virtualenv holding only `requirements.txt` (bench/.work/cold-venv, made once
and reused while requirements.txt is unchanged), each in a fresh interpreter (`python -I`, so
nothing of this machine's environment leaks in). The figure is RUNS runs in one bench; each run
starts both apps alternately REPEATS times and gives the ratio of their median import times (after
one uncounted start of each, which brings the virtualenv's files into the page cache). The
verdict takes the worst run's ratio (the goal is a ratio that holds run after run), the median
is reported beside it. The ratio is of the import's CPU time (`time.process_time` in the probe):
the bench machine is shared (2 cores, other work running), and wall time then measures the
scheduler as much as the import; the wall-time ratio is reported beside it. The first activity is
what a run calls first, `take_next_request` (one read of the run queue in Azurite); the minimal
app's reads one blob's properties.

What is still imported, and why: one more interpreter per app under `-X importtime`
(`cold_probe.py --analyse`) gives every module's own import time and who imported it. The modules
the minimal app does not load are grouped by package (the app's own packages, each third-party
package with the first of the app's modules that imported it); the probe also counts the dataclasses
and enums made during the import and the time their creation took, which is what the app's own
modules spend most of theirs on. `-X importtime` slows an import, so these times are shares, not
the figure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import Row
from bench.stack import KEEP, ROOT, Stack

NAME = "cold_start"
RUNS = 5
REPEATS = 5  # fresh interpreters per app in each run, alternating
TARGET = 1.5
OWN = ("function_app", "retraining", "activities", "orchestrators", "triggers")  # the app's own packages
TOP = 8  # groups listed
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
VENV = KEEP / "cold-venv"
PARTS = ("import_s", "import_cpu_s", "index_s", "first_activity_s", "process_s")


def virtualenv() -> tuple[str, float]:
    """The clean virtualenv's python, and how long making it took now (0 when reused)."""
    requirements = (ROOT / "requirements.txt").read_bytes()
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(requirements).hexdigest()
    python = VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return str(python), 0.0
    began = time.monotonic()
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stamp.write_text(digest)
    return str(python), time.monotonic() - began


def probe(python: str, root: str, activity: str, payload: Any, env: dict[str, str]) -> dict[str, float]:
    began = time.perf_counter()
    done = subprocess.run(
        [python, "-I", str(ROOT / "bench" / "cold_probe.py"), root, activity, json.dumps(payload)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    process = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"cold start probe of {root} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout)) | {"process_s": process}


def prepare(stack: Stack) -> None:
    pass


def measure(stack: Stack) -> dict[str, Any]:
    python, made_s = virtualenv()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TrainingStorage": stack.azurite.connection_string,
        "AzureWebJobsStorage": stack.azurite.connection_string,
        "RETRAIN_PIPELINES_FILE": str(stack.definitions_file),
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    apps = {
        "app": (
            str(ROOT),
            "take_next_request",
            {"pipeline": "cold-start", "run_id": "20260101T000000Z-00000000", "now": now},
        ),
        "minimal": (str(ROOT / "bench" / "minimal_app"), "read_blob", "labeledexamples/base.csv"),
    }
    for root, activity, payload in apps.values():  # not counted: brings the virtualenv into the page cache
        probe(python, root, activity, payload, env)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
    runs = []
    for _ in range(RUNS):
        run: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
        for _ in range(REPEATS):
            for name, (root, activity, payload) in apps.items():
                run[name].append(probe(python, root, activity, payload, env))
        app_s = statistics.median(s["import_s"] for s in run["app"])
        minimal_s = statistics.median(s["import_s"] for s in run["minimal"])
        app_cpu = statistics.median(s["import_cpu_s"] for s in run["app"])
        minimal_cpu = statistics.median(s["import_cpu_s"] for s in run["minimal"])
        runs.append(
            {
                "app_s": round(app_s, 3),
                "minimal_s": round(minimal_s, 3),
                "wall_ratio": round(app_s / minimal_s, 3),
                "app_cpu_s": round(app_cpu, 3),
                "minimal_cpu_s": round(minimal_cpu, 3),
                "ratio": round(app_cpu / minimal_cpu, 3),
            }
        )
        for name in apps:
            samples[name] += run[name]
    medians = {
        name: {part: round(statistics.median(s[part] for s in taken), 3) for part in PARTS}
        | {"modules": int(taken[-1]["modules"])}
        for name, taken in samples.items()
    }
    ratios = [r["ratio"] for r in runs]
    walls = [r["wall_ratio"] for r in runs]
    return {
        "runs": RUNS,
        "repeats": REPEATS,
        "virtualenv_made_s": round(made_s, 1),
        **medians,
        "per_run": runs,
        "import_ratio": round(statistics.median(ratios), 2),  # the median run's
        "import_ratio_worst": round(max(ratios), 2),
        "import_ratio_best": round(min(ratios), 2),
        "wall_ratio": round(statistics.median(walls), 2),
        "wall_ratio_worst": round(max(walls), 2),
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "imports": imports(python, {name: root for name, (root, _, _) in apps.items()}, env),
    }


def _tree(stderr: str) -> list[tuple[str, int, int, str | None]]:
    """(module, own µs, depth, importer) for each line of `-X importtime`, in the order imports finished.

    A module's importer is the next line with a smaller depth: the enclosing import finishes after it."""
    rows = [
        (m[4], int(m[1]), len(m[3]) // 2) for line in stderr.splitlines() if (m := IMPORT_LINE.match(line)) is not None
    ]
    out = []
    for i, (module, own, depth) in enumerate(rows):
        parent = next((rows[j][0] for j in range(i + 1, len(rows)) if rows[j][2] < depth), None)
        out.append((module, own, depth, parent))
    return out


def _group(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] in ("azure", "google") and len(parts) > 1 else parts[0]


def _own(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in OWN


def imports(python: str, roots: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    """What `import function_app` loads beyond the minimal app's, grouped, with who imported each group first."""
    trees: dict[str, list[tuple[str, int, int, str | None]]] = {}
    made: dict[str, dict[str, float]] = {}
    for name, root in roots.items():
        done = subprocess.run(
            [python, "-I", "-X", "importtime", str(ROOT / "bench" / "cold_probe.py"), root, "--analyse"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"import analysis of {root} failed:\n{done.stderr[-3000:]}")
        trees[name] = _tree(done.stderr)
        made[name] = json.loads(done.stdout)
    parents = {module: parent for module, _, _, parent in trees["app"]}
    minimal = {module for module, _, _, _ in trees["minimal"]}
    extra = [(module, own) for module, own, _, _ in trees["app"] if module not in minimal]
    groups: dict[str, dict[str, Any]] = {}
    for module, own in extra:
        group = groups.setdefault(_group(module), {"modules": 0, "own_ms": 0.0, "first": module})
        group["modules"] += 1
        group["own_ms"] += own / 1000
    for name, group in groups.items():
        chain: list[str] = []
        at: str | None = group.pop("first")
        while at is not None and not _own(at):
            at = parents.get(at)
        while at is not None and _own(at) and len(chain) < 3:  # the app's module that pulled it in
            chain.append(at)
            at = parents.get(at)
        group["own_ms"] = round(group["own_ms"], 1)
        group["imported_by"] = None if name.split(".")[0] in OWN else " <- ".join(chain) or None
    ranked = sorted(groups.items(), key=lambda item: -item[1]["own_ms"])
    total_ms = sum(own for _, own, _, _ in trees["app"]) / 1000
    return {
        "modules": {name: len(tree) for name, tree in trees.items()},
        "extra_modules": len(extra),
        "extra_own_ms": round(sum(own for _, own in extra) / 1000, 1),
        "app_own_ms": round(total_ms, 1),
        "minimal_own_ms": round(sum(own for _, own, _, _ in trees["minimal"]) / 1000, 1),
        "made": {name: {k: round(v, 4) for k, v in m.items()} for name, m in made.items()},
        "groups": [{"group": name} | group for name, group in ranked[:TOP]],
    }


def _made(m: dict[str, float]) -> str:
    return (
        f"{m['dataclasses']:.0f} dataclasses ({m['dataclass_s'] * 1000:.0f} ms), "
        f"{m['enums']:.0f} enums ({m['enum_s'] * 1000:.0f} ms)"
    )


def report(r: dict[str, Any]) -> list[str]:
    made = f"made in {r['virtualenv_made_s']} s" if r["virtualenv_made_s"] else "reused"
    i = r["imports"]
    lines = [
        f"cold start (clean virtualenv, {made}; {r['runs']} runs of {r['repeats']} fresh interpreters per app,"
        " alternating; seconds, medians over all)",
        "   app        import  index  first activity  process (start to first activity done)  modules",
        *[
            f"   {name:<9} {r[name]['import_s']:>7.3f} {r[name]['index_s']:>6.3f} {r[name]['first_activity_s']:>15.3f}"
            f" {r[name]['process_s']:>40.3f}  {r[name]['modules']:>7}"
            for name in ("app", "minimal")
        ],
        "   run  import CPU (median): app  minimal  ratio | wall (median): app  minimal  ratio",
        *[
            f"   {k:>3}  {run['app_cpu_s']:>24.3f}  {run['minimal_cpu_s']:>7.3f}  {run['ratio']:>4.2f}x"
            f" | {run['app_s']:>17.3f}  {run['minimal_s']:>7.3f}  {run['wall_ratio']:>4.2f}x"
            for k, run in enumerate(r["per_run"], 1)
        ],
        f"   import function_app, CPU time: median run {r['import_ratio']}x, worst {r['import_ratio_worst']}x,"
        f" best {r['import_ratio_best']}x the minimal app's (target <= {TARGET}x in every run); wall time: median"
        f" {r['wall_ratio']}x, worst {r['wall_ratio_worst']}x (load average at the end {r['load_average']})",
        f"   what it imports beyond the minimal app (-X importtime, one interpreter each): {i['extra_modules']} modules"
        f" more ({i['modules']['app']} vs {i['modules']['minimal']}), {i['extra_own_ms']} ms of their own import time"
        f" (app {i['app_own_ms']} ms in all, minimal {i['minimal_own_ms']} ms)",
        "      group                         modules  own ms  first imported by",
        *[
            f"      {g['group']:<29} {g['modules']:>7}  {g['own_ms']:>6.1f}  {g['imported_by'] or '(the app itself)'}"
            for g in i["groups"]
        ],
        f"   made while importing: app {_made(i['made']['app'])}; minimal app {_made(i['made']['minimal'])}",
    ]
    return lines


def summary(r: dict[str, Any]) -> list[Row]:
    i = r["imports"]
    app_made, minimal_made = i["made"]["app"], i["made"]["minimal"]
    extra_dc = app_made["dataclasses"] - minimal_made["dataclasses"]
    extra_dc_ms = (app_made["dataclass_s"] - minimal_made["dataclass_s"]) * 1000
    worst = r["import_ratio_worst"]
    ratios = ", ".join(f"{run['ratio']:.2f}" for run in r["per_run"])
    top = "; ".join(
        f"{g['group']} {g['modules']} modules {g['own_ms']:.0f} ms"
        + (f" (for {g['imported_by'].split(' <- ')[0]})" if g["imported_by"] else "")
        for g in i["groups"][:3]
    )
    return [
        Row(
            f"cold start, `import function_app` ({r['runs']} runs in this bench)",
            f"{r['app']['import_s']:.3f} s (CPU {r['app']['import_cpu_s']:.3f} s); CPU-time ratio median"
            f" {r['import_ratio']}×, worst {worst}× (runs: {ratios}); wall-time ratio median {r['wall_ratio']}×,"
            f" worst {r['wall_ratio_worst']}×; first activity {r['app']['first_activity_s']:.3f} s. Beyond the minimal app"
            f" ({i['extra_modules']} modules, -X importtime): {top}; {extra_dc:.0f} dataclasses more,"
            f" {extra_dc_ms:.0f} ms to make",
            f"≤ {TARGET}× a minimal Durable app, every run",
            f"minimal app: {r['minimal']['import_s']:.3f} s (CPU {r['minimal']['import_cpu_s']:.3f} s); first activity"
            f" {r['minimal']['first_activity_s']:.3f} s",
            worst <= TARGET,
        )
    ]
