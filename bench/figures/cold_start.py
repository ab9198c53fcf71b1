"""Cold start: `import function_app`, indexing and the first activity call, against a minimal Durable app.

Both run in one clean virtualenv holding only `requirements.txt` (bench/.work/cold-venv, made once
and reused while requirements.txt is unchanged), each in a fresh interpreter (`python -I`, so
nothing of this machine's environment leaks in), alternately, REPEATS times; medians are reported.
The first activity is what a run calls first, `take_next_request` (one read of the run queue in
Azurite); the minimal app's reads one blob's properties.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.figures import Row
from bench.stack import KEEP, ROOT, Stack

NAME = "cold_start"
REPEATS = 9
VENV = KEEP / "cold-venv"
PARTS = ("import_s", "index_s", "first_activity_s", "process_s")


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
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
    for _ in range(REPEATS):
        for name, (root, activity, payload) in apps.items():
            samples[name].append(probe(python, root, activity, payload, env))
    medians = {
        name: {part: round(statistics.median(s[part] for s in runs), 3) for part in PARTS}
        | {"modules": runs[-1]["modules"]}
        for name, runs in samples.items()
    }
    return {
        "repeats": REPEATS,
        "virtualenv_made_s": round(made_s, 1),
        **medians,
        "import_ratio": round(medians["app"]["import_s"] / medians["minimal"]["import_s"], 2),
    }


def report(r: dict[str, Any]) -> list[str]:
    made = f"made in {r['virtualenv_made_s']} s" if r["virtualenv_made_s"] else "reused"
    return [
        f"cold start (clean virtualenv, {made}; median of {r['repeats']} fresh interpreters, seconds)",
        "   app        import  index  first activity  process (start to first activity done)  modules",
        *[
            f"   {name:<9} {r[name]['import_s']:>7.3f} {r[name]['index_s']:>6.3f} {r[name]['first_activity_s']:>15.3f}"
            f" {r[name]['process_s']:>40.3f}  {r[name]['modules']:>7}"
            for name in ("app", "minimal")
        ],
        f"   import function_app: {r['import_ratio']}x the minimal app's (target <= 1.5x)",
    ]


def summary(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "cold start, `import function_app`",
            f"{r['app']['import_s']:.3f} s ({r['import_ratio']}x); first activity {r['app']['first_activity_s']:.3f} s",
            "≤ 1.5× a minimal Durable app",
            f"minimal app: {r['minimal']['import_s']:.3f} s; first activity {r['minimal']['first_activity_s']:.3f} s",
            r["import_ratio"] <= 1.5,
        )
    ]
