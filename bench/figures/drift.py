"""The drift check's throughput and peak memory on 16 MB to 1 GB of CSV, beside reading the same bytes unparsed.

Each measurement runs in a fresh Python process (so its peak RSS is its own): it builds the champion's
profile from 8 MB of generated rows (20 numeric features, one categorical, a label; about 170 bytes a
row), then streams SIZE MB of new rows, with the first feature shifted, as 4 MB chunks (the Blob SDK's
download chunk) through `retraining.drift.check` (the drift report and the new data's own profile, one
pass). The baselines stream the same chunks and only count their bytes, or decode them and split them
into lines (the floor under any text parser). The rows repeat an
8 MB pool held in memory (so the figure measures parsing, not the disk or the network), and the
pool's 8 MB is part of both processes' peak RSS.

Sizes: `SIZES_MB` (small by default, for a quick run), `DRIFT_SIZES_MB=16,64,256,1024` in the
environment, or `python -m bench.figures.drift 16 64 256 1024` on its own.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.figures import Row

NAME = "drift"
needs_devhost = False
SIZES_MB: tuple[int, ...] = (16, 64)
FEATURES = 20
POOL_MB = 8
CHUNK = 4 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def sizes() -> tuple[int, ...]:
    text = os.environ.get("DRIFT_SIZES_MB", "")
    return tuple(int(s) for s in text.split(",") if s.strip()) or SIZES_MB


def header() -> bytes:
    return (",".join([*(f"x{i}" for i in range(FEATURES)), "colour", "label"]) + "\n").encode()


def pool(seed: int, shift: float) -> bytes:
    """About POOL_MB of whole rows (no header)."""
    rnd = random.Random(seed)
    lines: list[str] = []
    size = 0
    while size < POOL_MB * 1024 * 1024:
        numbers = [f"{rnd.gauss(shift if i == 0 else 0.0, 1.0):.5f}" for i in range(FEATURES)]
        line = ",".join([*numbers, rnd.choice("rgbcmyk"), rnd.choice("01")])
        lines.append(line)
        size += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def stream(rows: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes or a little more (whole pools): the header, then the pool's chunks again and again."""
    chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]
    yield header()
    sent = len(header())
    while sent < total:
        for chunk in chunks:
            yield chunk
            sent += len(chunk)


def child(mode: str, size_mb: int) -> dict[str, Any]:
    """One measurement, in this process: `read` (bytes counted) or `check` (the drift check)."""
    from retraining.drift import Source, build_profile, check

    reference = build_profile(Source(iter([header(), pool(1, 0.0)]), "champion.csv"))
    rows = pool(2, 0.3)
    counted = 0

    def counting() -> Iterator[bytes]:
        nonlocal counted
        for chunk in stream(rows, size_mb * 1024 * 1024):
            counted += len(chunk)
            yield chunk

    began = time.perf_counter()
    extra: dict[str, Any] = {}
    if mode == "read":
        for _ in counting():
            pass
    elif mode == "lines":  # UTF-8 decoding and line splitting only: the floor under any text parser
        from retraining.drift.reader import _Lines

        for _ in _Lines(counting(), "data.csv"):
            pass
    else:
        report, profile = check(reference, Source(counting(), "data.csv"))
        extra = {
            "top": list(report.top[:3]),
            "top_psi": report.features[0].psi,
            "top_ks": report.features[0].ks,
            "profile_json_kb": round(len(json.dumps(profile.to_dict())) / 1024, 1),
        }
    seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "data_mb": round(counted / 1024 / 1024, 1),
        "seconds": round(seconds, 3),
        "mb_per_s": round(counted / 1024 / 1024 / seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        **extra,
    }


def run_child(mode: str, size_mb: int) -> dict[str, Any]:
    code = f"import json; from bench.figures.drift import child; print(json.dumps(child({mode!r}, {size_mb})))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"drift bench ({mode}, {size_mb} MB) failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def prepare(stack: Any) -> None:
    pass


def measure(stack: Any = None, sizes_mb: tuple[int, ...] | None = None) -> dict[str, Any]:
    rows = []
    for size in sizes_mb or sizes():
        read, lines, drift = run_child("read", size), run_child("lines", size), run_child("check", size)
        rows.append({"size_mb": size, "read": read, "lines": lines, "check": drift})
    return {"rows": rows}


def report(d: dict[str, Any]) -> list[str]:
    lines = [
        "drift check: data (MB)  check (MB/s)  peak RSS (MB)  |  decode+lines (MB/s)  |  bytes only (MB/s)"
        "  peak RSS (MB)  |  top (PSI, KS)"
    ]
    for r in d["rows"]:
        c, t, b = r["check"], r["lines"], r["read"]
        lines.append(
            f"             {c['data_mb']:>9}  {c['mb_per_s']:>12}  {c['peak_rss_mb']:>13}  |  {t['mb_per_s']:>19}"
            f"  |  {b['mb_per_s']:>17}  {b['peak_rss_mb']:>13}  |  {c['top'][0]} ({c['top_psi']:.3f}, {c['top_ks']:.3f})"
        )
    return lines


def summary(d: dict[str, Any]) -> list[Row]:
    rows = d["rows"]
    first, last = rows[0]["check"], rows[-1]["check"]
    growth = last["peak_rss_mb"] - first["peak_rss_mb"]
    return [
        Row(
            f"drift check {first['data_mb']:.0f} MB to {last['data_mb']:.0f} MB",
            f"{min(r['check']['mb_per_s'] for r in rows)} to {max(r['check']['mb_per_s'] for r in rows)} MB/s; "
            f"peak RSS {first['peak_rss_mb']} to {last['peak_rss_mb']} MB",
            "memory flat (peak RSS grows < 16 MB)",
            f"the same bytes unparsed: {rows[-1]['read']['mb_per_s']} MB/s (decoded and split into lines: "
            f"{rows[-1]['lines']['mb_per_s']} MB/s), peak RSS {rows[-1]['read']['peak_rss_mb']} MB",
            growth < 16 if len(rows) > 1 else None,
        )
    ]


if __name__ == "__main__":
    chosen = tuple(int(a) for a in sys.argv[1:]) or None
    result = measure(None, chosen)
    print("\n".join(report(result)))
    print(json.dumps([r.to_dict() for r in summary(result)], indent=2))
