"""Data-size independence: 10 MB, 100 MB, 1 GB of training data; devhost's peak RSS and the bytes it reads.

The training data stays between the service and storage: devhost hands out a SAS and reads only
small results, whatever the data's size. The counting proxy in front of Azurite attributes bytes
to the process that received them.
"""

from __future__ import annotations

from typing import Any

from azure.storage.blob import BlobBlock

from bench.figures import Row
from bench.stack import DATA, Stack, mb, proc
from devhost.datasets import breast_cancer

NAME = "data_size"
SIZES_MB = (10, 100, 1000)


def prepare(stack: Stack) -> None:
    stack.pipeline("data")


def measure(stack: Stack) -> dict[str, Any]:
    header, body = breast_cancer().to_csv().split(b"\n", 1)
    devhost, emulator = stack.devhost_pid, stack.emulator.process.pid
    rows = []
    for size in SIZES_MB:
        name = f"data-{size}mb.csv"
        blob = stack.blobs.get_blob_client(DATA, name)
        block = body * max(1, (8 * 1024 * 1024) // len(body))
        ids: list[BlobBlock] = []
        written, target = 0, size * 1024 * 1024
        while written < target:
            piece = (header + b"\n" + block) if not ids else block
            block_id = f"{len(ids):08d}"
            blob.stage_block(block_id, piece)
            ids.append(BlobBlock(block_id))
            written += len(piece)
        blob.commit_block_list(ids)
        stack.job_behaviour(train_on_first_bytes=2 * 1024 * 1024)
        app_read, emulator_read = stack.proxy.bytes_to(devhost), stack.proxy.bytes_to(emulator)
        _, result = stack.run("data", {"dryRun": True, "trainingBlob": f"{DATA}/{name}"})
        assert result["status"] == "DryRun", result
        rows.append(
            {
                "data_mb": round(written / 1024 / 1024),
                "devhost_peak_rss_mb": mb(proc(devhost, "VmHWM")),
                "devhost_bytes_from_storage_mb": round((stack.proxy.bytes_to(devhost) - app_read) / 1024 / 1024, 3),
                "emulator_bytes_from_storage_mb": mb(stack.proxy.bytes_to(emulator) - emulator_read),
            }
        )
        blob.delete_blob()
    stack.clear()
    return {"rows": rows}


def report(d: dict[str, Any]) -> list[str]:
    return [
        "data size: data (MB)  devhost peak RSS (MB)  devhost from storage (MB)  service from storage (MB)",
        *[
            f"            {r['data_mb']:>9}  {r['devhost_peak_rss_mb']:>21}  {r['devhost_bytes_from_storage_mb']:>25}"
            f"  {r['emulator_bytes_from_storage_mb']:>25}"
            for r in d["rows"]
        ],
    ]


def summary(d: dict[str, Any]) -> list[Row]:
    rows = d["rows"]
    flat = max(r["devhost_bytes_from_storage_mb"] for r in rows) < 1
    return [
        Row(
            f"data size {rows[0]['data_mb']} MB to {rows[-1]['data_mb']} MB",
            f"devhost reads {max(r['devhost_bytes_from_storage_mb'] for r in rows)} MB; peak RSS "
            f"{rows[0]['devhost_peak_rss_mb']} to {rows[-1]['devhost_peak_rss_mb']} MB",
            "flat",
            f"the service reads {rows[-1]['emulator_bytes_from_storage_mb']} MB",
            flat,
        )
    ]
