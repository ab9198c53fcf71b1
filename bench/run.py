"""`make bench`: what the app adds on top of the ML job, measured side by side with baselines.

1. overhead: a retrain on devhost vs a minimal direct script (same HTTP calls, tight polling);
2. polling cost: status calls and detection latency over job durations spanning 100x (time-scaled
   1:200, so 0.3 s stands for 1 minute), vs fixed 1 s and 5 s polling;
3. fan-out: updating N = 1, 10, 50 targets, vs updating them one after another;
4. data-size independence: 10 MB, 100 MB, 1 GB of training data; devhost's peak RSS and bytes read;
5. concurrency: 100 pipelines retraining at once on one devhost.

devhost runs as its own process (`retrain serve --settings`) so /proc shows its memory and I/O.
Prints a table, writes bench/results.json and appends a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobBlock, BlobServiceClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import page  # noqa: E402  (6. the status page of a pipeline with 1,000 runs)
from devhost.datasets import breast_cancer  # noqa: E402
from devhost.services import Emulator, free_port, start_azurite, start_emulator  # noqa: E402
from devhost.stack import emulator_settings  # noqa: E402

WORK = ROOT / "bench" / ".work"
SCALE = 200  # time scale for the polling section: 1 real minute is 0.3 s here
DATA = "labeledexamples"


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes, from /proc/PID/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def proc(pid: int, name: str) -> int:
    """A /proc/PID/status figure in bytes (VmHWM: peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


class CountingProxy:
    """A TCP proxy in front of Azurite that counts the bytes each client process receives.

    /proc/PID/io does not count socket reads, so the proxy attributes each connection to the
    process that owns the client socket (via /proc/net/tcp and /proc/PID/fd).
    """

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.port = free_port()
        self.received: dict[int, int] = {}  # pid -> bytes sent to it by storage
        self.watch: tuple[int, ...] = ()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def owner(self, client_port: int) -> int:
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == client_port and int(remote.split(":")[1], 16) == self.port:
                inode = fields[9]
                break
        for pid in self.watch:
            try:
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                    return pid
            except OSError:
                continue
        return 0

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            client, (_, client_port) = self._listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            pid = self.owner(client_port)
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, pid), daemon=True).start()

    def _pipe(self, source: Any, sink: Any, pid: int | None) -> None:
        try:
            while chunk := source.recv(1 << 16):
                sink.sendall(chunk)
                if pid is not None:
                    with self._lock:
                        self.received[pid] = self.received.get(pid, 0) + len(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()

    def bytes_to(self, pid: int) -> int:
        with self._lock:
            return self.received.get(pid, 0)


class Bench:
    def __init__(self) -> None:
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        self.azurite = start_azurite(WORK / "azurite")
        self.emulator: Emulator = start_emulator(WORK / "emulator")
        self.blobs = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        self.proxy = CountingProxy(self.azurite.port)
        self.services = self.emulator.services()
        self.scoring = self.services["webServices"][1]
        self.training = self.services["webServices"][0]
        self.endpoints = self._endpoints(100)
        self.results: dict[str, Any] = {}

    # ---- set-up ---------------------------------------------------------------------------------

    def _endpoints(self, count: int) -> list[dict[str, Any]]:
        default = self.scoring["endpoints"][0]
        base = default["updateResourceEndpoint"].rsplit("/", 1)[0]
        for i in range(count):
            requests.put(f"{base}/bench{i:03d}", json={"Description": "bench"}, headers={"Authorization": f"Bearer {default['apiKey']}"},
                         timeout=10).raise_for_status()
        listed = self.emulator.services()["webServices"][1]["endpoints"]
        return [e for e in listed if e["name"].startswith("bench")]

    def definitions(self) -> tuple[dict[str, Any], dict[str, str]]:
        shipped = json.loads((ROOT / "pipelines.json").read_text())["pipelines"][0]
        settings = emulator_settings(self.services, self.azurite) | {"DEVHOST_MAX_ACTIVITIES": "64", "RETRAIN_UPDATE_WAIT_SECONDS": "60",
                                                                        "DEVHOST_WATCH_BLOBS": "false"}  # no blob trigger here: keep its listing out of the figures
        # devhost (and so the SAS locations it hands the service) reaches storage through the counting proxy
        settings["TrainingStorage"] = self.azurite.connection_string.replace(f":{self.azurite.port}/", f":{self.proxy.port}/")

        def pipeline(name: str, targets: list[dict[str, Any]], first: float = 0.05, maximum: float = 1.5) -> dict[str, Any]:
            return shipped | {
                "name": name, "gate": {}, "targets": targets, "schedule": {"enabled": False},
                "data": {"container": DATA, "blob": "base.csv", "watch": "never/*"},
                "polling": {"firstInterval": f"00:00:{first:09.6f}", "maxInterval": f"00:00:{maximum:09.6f}", "fraction": 0.05},
                "policy": {"timeout": "00:10:00", "retry": 1, "retryIntervalInSeconds": 1},
            }

        def classic(endpoint: dict[str, Any]) -> dict[str, Any]:
            key = f"KEY_{endpoint['name'].upper()}"
            settings[key] = endpoint["apiKey"]
            return {"name": endpoint["name"], "kind": "classic", "updateResourceEndpoint": endpoint["updateResourceEndpoint"],
                    "apiKeySetting": key, "trainedModelName": self.scoring["resourceName"],
                    "policy": {"timeout": "00:05:00", "retry": 1, "retryIntervalInSeconds": 1}}

        endpoint2 = self.scoring["endpoints"][1]
        pipelines = [pipeline("overhead", [classic(endpoint2)], first=0.05, maximum=0.25),
                     pipeline("polling", [], first=5 / SCALE, maximum=300 / SCALE),
                     pipeline("data", [])]
        pipelines += [pipeline(f"fan-{n}", [classic(e) for e in self.endpoints[:n]]) for n in (1, 10, 50)]
        pipelines += [pipeline(f"p{i:03d}", [classic(e)]) for i, e in enumerate(self.endpoints)]
        return {"pipelines": pipelines}, settings

    def start_devhost(self) -> None:
        definitions, settings = self.definitions()
        (WORK / "pipelines.json").write_text(json.dumps(definitions))
        settings["RETRAIN_PIPELINES_FILE"] = str(WORK / "pipelines.json")
        (WORK / "local.settings.json").write_text(json.dumps({"Values": settings}))
        home = WORK / "devhost"
        home.mkdir()
        port = free_port()
        self.devhost_log = open(home / "devhost.log", "wb")  # noqa: SIM115 - closed in stop()
        self.devhost = subprocess.Popen([sys.executable, "-m", "devhost.cli", "serve", "--settings", str(WORK / "local.settings.json"),
                                         "--port", str(port)], cwd=home, stdout=self.devhost_log, stderr=subprocess.STDOUT,
                                        env=os.environ | {"PYTHONPATH": str(ROOT)})
        self.proxy.watch = (self.devhost.pid, self.emulator.process.pid)
        state = home / ".devhost" / "serve.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            if self.devhost.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("devhost did not start:\n" + (home / "devhost.log").read_text()[-3000:])
            time.sleep(0.1)
        serve = json.loads(state.read_text())
        self.url, self.key = serve["url"], serve["key"]
        table = breast_cancer().head(120)
        self.blobs.create_container(DATA)
        self.blobs.get_blob_client(DATA, "base.csv").upload_blob(table.to_csv())
        seed = breast_cancer().head(40)
        requests.post(f"{self.emulator.http_base}/_emulator/web-services/{self.scoring['id']}/seed",
                      json={"ColumnNames": list(seed.names), "Values": [list(r) for r in seed.rows]}, timeout=60).raise_for_status()

    def stop(self) -> None:
        if getattr(self, "devhost", None):
            self.devhost.terminate()
            self.devhost.wait(20)
            self.devhost_log.close()
        self.emulator.stop()
        self.azurite.stop()

    # ---- helpers --------------------------------------------------------------------------------

    def job_behaviour(self, **behaviour: Any) -> None:
        requests.post(f"{self.emulator.http_base}/_emulator/faults", json={"kind": "job", "target": self.training["id"]} | behaviour,
                      timeout=10).raise_for_status()

    def clear(self) -> None:
        requests.delete(f"{self.emulator.http_base}/_emulator/faults", timeout=10)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in requests.get(f"{self.emulator.http_base}/_emulator/state", timeout=30).json()["jobs"]}

    def run(self, pipeline: str, body: dict[str, Any] | None = None, poll_s: float = 0.05) -> tuple[float, dict[str, Any]]:
        """Start a run over HTTP and wait for its result; return (time of the request, result)."""
        began = time.time()
        response = requests.post(f"{self.url}/api/pipelines/{pipeline}/runs", json=body or {}, headers={"x-functions-key": self.key}, timeout=60)
        response.raise_for_status()
        status_url = response.json()["statusQueryGetUri"]
        while True:
            status = requests.get(status_url, timeout=30).json()
            if status["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
                if not isinstance(status["output"], dict):
                    raise RuntimeError(f"{pipeline}: {status['output']}")
                return began, status["output"]
            time.sleep(poll_s)

    @staticmethod
    def moments(result: dict[str, Any]) -> tuple[float, float]:
        """(detected, updated) wall times from the run's start and its phase durations."""
        started = datetime.fromisoformat(result["started_at"].replace("Z", "+00:00")).timestamp()
        phases = result["phases"]
        detected = started + sum(phases.get(p, 0.0) for p in ("resolving", "waiting_for_data", "submitting", "starting", "polling"))
        updated = detected + sum(phases.get(p, 0.0) for p in ("collecting", "evaluating", "updating"))
        return detected, updated

    def bes(self, method: str, suffix: str = "", body: Any = None) -> requests.Response:
        url = f"{self.training['mlEndpoint']}{suffix}?api-version=2.0"
        return requests.request(method, url, json=body, headers={"Authorization": f"Bearer {self.training['apiKey']}"}, timeout=30)

    def direct_job(self, interval: float) -> tuple[float, str, float, int]:
        """The floor: submit, start, poll every `interval`; return (began, job id, detected, polls)."""
        from retraining.models import BlobPath
        from retraining.settings import Settings
        from retraining.storage import TrainingStorage

        storage = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": self.azurite.connection_string}))
        run = f"direct-{time.time_ns()}"
        from datetime import timedelta

        def ref(name: str, write: bool) -> dict[str, Any]:
            path = BlobPath(DATA if not write else "trainingoutput", name)
            return {"BaseLocation": storage.account_url, "RelativeLocation": str(path),
                    "SasBlobToken": storage.sas(path, read=not write, write=write, lifetime=timedelta(hours=1))}

        storage.ensure_container("trainingoutput")
        began = time.time()
        job = self.bes("POST", body={"Inputs": {"input1": ref("base.csv", False)},
                                     "Outputs": {"output1": ref(f"{run}/model.ilearner", True), "output2": ref(f"{run}/evaluation.csv", True)}}).json()
        self.bes("POST", f"/{job}/start")
        polls, first = 0, time.monotonic()
        while True:
            polls += 1
            if self.bes("GET", f"/{job}").json()["StatusCode"] == "Finished":
                return began, job, time.time(), polls
            # A fixed-interval poller: the k-th call at k * interval, however long each call took.
            time.sleep(max(0.0, first + polls * interval - time.monotonic()))

    def direct_update(self, endpoint: dict[str, Any], model_path: str) -> None:
        from datetime import timedelta

        from retraining.models import BlobPath
        from retraining.settings import Settings
        from retraining.storage import TrainingStorage

        storage = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": self.azurite.connection_string}))
        path = BlobPath.parse(model_path)
        headers = {"Authorization": f"Bearer {endpoint['apiKey']}"}
        body = {"Resources": [{"Name": self.scoring["resourceName"], "Location": {
            "BaseLocation": storage.account_url, "RelativeLocation": str(path), "SasBlobToken": storage.sas(path, read=True, lifetime=timedelta(hours=1))}}]}
        requests.patch(endpoint["updateResourceEndpoint"], json=body, headers=headers, timeout=30).raise_for_status()
        while requests.get(endpoint["updateResourceEndpoint"], headers=headers, timeout=30).json()["Resources"][0]["Location"]["RelativeLocation"] != str(path):
            time.sleep(0.01)

    # ---- the sections ---------------------------------------------------------------------------

    def overhead(self, job_s: float = 3.0, repeats: int = 3) -> None:
        app_parts, floor_parts, ratios = [], [], []
        for _ in range(repeats):
            self.job_behaviour(duration_s=job_s)
            began, result = self.run("overhead", poll_s=0.02)
            job = self.jobs()[result["job_id"]]
            detected, updated = self.moments(result)
            app = [job["created_at"] - began, detected - job["finished_at"], updated - detected]
            self.job_behaviour(duration_s=job_s)
            f_began, f_job, f_detected, _ = self.direct_job(0.01)
            self.direct_update(self.scoring["endpoints"][1], f"trainingoutput/{self.jobs()[f_job]['outputs'][0].split('/', 1)[1]}")
            f_updated = time.time()
            floor_job = self.jobs()[f_job]
            floor = [floor_job["created_at"] - f_began, f_detected - floor_job["finished_at"], f_updated - f_detected]
            app_parts.append(app)
            floor_parts.append(floor)
            ratios.append((updated - began) / (f_updated - f_began))
        med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
        self.results["overhead"] = {
            "job_s": job_s, "repeats": repeats, "wall_ratio": round(statistics.median(ratios), 3),
            "app_s": {"trigger_to_submitted": round(med(app_parts, 0), 3), "finished_to_detected": round(med(app_parts, 1), 3),
                      "detected_to_updated": round(med(app_parts, 2), 3)},
            "floor_s": {"trigger_to_submitted": round(med(floor_parts, 0), 3), "finished_to_detected": round(med(floor_parts, 1), 3),
                        "detected_to_updated": round(med(floor_parts, 2), 3)},
        }
        o = self.results["overhead"]
        o["overhead_outside_detection_s"] = round(o["app_s"]["trigger_to_submitted"] - o["floor_s"]["trigger_to_submitted"]
                                                  + o["app_s"]["detected_to_updated"] - o["floor_s"]["detected_to_updated"], 3)
        o["detection_share_of_job"] = round(o["app_s"]["finished_to_detected"] / job_s, 4)

    def polling(self, minutes: tuple[float, ...] = (1, 10, 100)) -> None:
        rows = []
        for real_minutes in minutes:
            duration = real_minutes * 60 / SCALE
            self.job_behaviour(duration_s=duration)
            _, result = self.run("polling", {"dryRun": True}, poll_s=0.05)
            job = self.jobs()[result["job_id"]]
            detected, _ = self.moments(result)
            row = {"real_minutes": real_minutes, "scaled_s": duration, "app_calls": job["status_polls"],
                   "app_detect_s": round(max(0.0, detected - job["finished_at"]) * SCALE, 1)}
            for label, seconds in (("fixed_1s", 1.0), ("fixed_5s", 5.0)):
                self.job_behaviour(duration_s=duration)
                _, job_id, f_detected, polls = self.direct_job(seconds / SCALE)
                row[f"{label}_calls"] = polls
                row[f"{label}_detect_s"] = round(max(0.0, f_detected - self.jobs()[job_id]["finished_at"]) * SCALE, 1)
            rows.append(row)
        self.results["polling"] = {"scale": SCALE, "rows": rows,
                                   "long_job_fewer_calls_than_1s": round(rows[-1]["fixed_1s_calls"] / rows[-1]["app_calls"], 1)}

    def fan_out(self) -> None:
        rows = []
        pids = [self.devhost.pid, self.emulator.process.pid, self.azurite.process.pid, os.getpid()]
        for n in (1, 10, 50):
            self.job_behaviour(duration_s=0.1)
            cpu_before = cpu_seconds(pids)
            _, result = self.run(f"fan-{n}")
            cpu_used = cpu_seconds(pids) - cpu_before
            assert all(t["updated"] for t in result["targets"]) and len(result["targets"]) == n, result
            container, name = result["model"]["model_blob"].split("/", 1)
            copy = f"{name}.baseline.ilearner"
            data = self.blobs.get_blob_client(container, name).download_blob().readall()
            self.blobs.get_blob_client(container, copy).upload_blob(data, overwrite=True)
            began = time.time()
            for endpoint in self.endpoints[:n]:
                self.direct_update(endpoint, f"{container}/{copy}")
            rows.append({"targets": n, "app_update_s": round(result["phases"]["updating"], 3),
                         "one_after_another_s": round(time.time() - began, 3), "run_cpu_s": round(cpu_used, 2)})
        self.results["fan_out"] = {"rows": rows, "n50_over_n1": round(rows[-1]["app_update_s"] / rows[0]["app_update_s"], 2)}

    def data_size(self, sizes_mb: tuple[int, ...] = (10, 100, 1000)) -> None:
        table = breast_cancer()
        header, body = table.to_csv().split(b"\n", 1)
        rows = []
        for size in sizes_mb:
            name = f"data-{size}mb.csv"
            blob = self.blobs.get_blob_client(DATA, name)
            block = body * max(1, (8 * 1024 * 1024) // len(body))
            ids, written = [], 0
            target = size * 1024 * 1024
            while written < target:
                piece = (header + b"\n" + block) if not ids else block
                block_id = f"{len(ids):08d}"
                blob.stage_block(block_id, piece)
                ids.append(BlobBlock(block_id))
                written += len(piece)
            blob.commit_block_list(ids)
            self.job_behaviour(train_on_first_bytes=2 * 1024 * 1024)
            app_read, emulator_read = self.proxy.bytes_to(self.devhost.pid), self.proxy.bytes_to(self.emulator.process.pid)
            _, result = self.run("data", {"dryRun": True, "trainingBlob": f"{DATA}/{name}"})
            assert result["status"] == "DryRun", result
            rows.append({"data_mb": round(written / 1024 / 1024), "devhost_peak_rss_mb": round(proc(self.devhost.pid, "VmHWM") / 1024 / 1024, 1),
                         "devhost_bytes_from_storage_mb": round((self.proxy.bytes_to(self.devhost.pid) - app_read) / 1024 / 1024, 3),
                         "emulator_bytes_from_storage_mb": round((self.proxy.bytes_to(self.emulator.process.pid) - emulator_read) / 1024 / 1024, 1)})
            blob.delete_blob()
        self.results["data_size"] = {"rows": rows}

    def concurrency(self, pipelines: int = 100, job_s: float = 2.0) -> None:
        self.job_behaviour(duration_s=job_s, remaining=pipelines)
        rss_before = proc(self.devhost.pid, "VmHWM")
        began = time.time()
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda i: self.run(f"p{i:03d}", poll_s=0.5), range(pipelines)))
        wall = time.time() - began
        jobs = self.jobs()
        overheads = []
        for started, result in results:
            job = jobs[result["job_id"]]
            _, updated = self.moments(result)
            overheads.append(updated - started - (job["finished_at"] - job["started_at"]))
        succeeded = sum(r["status"] == "Succeeded" for _, r in results)
        q = statistics.quantiles(overheads, n=20)
        self.results["concurrency"] = {"pipelines": pipelines, "succeeded": succeeded, "job_s": job_s, "wall_s": round(wall, 1),
                                       "overhead_p50_s": round(statistics.median(overheads), 3), "overhead_p95_s": round(q[18], 3),
                                       "devhost_peak_rss_mb": round(max(rss_before, proc(self.devhost.pid, "VmHWM")) / 1024 / 1024, 1)}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "unknown CPU")
    memory = next(int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {memory} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def report(results: dict[str, Any], seconds: float) -> str:
    o, p, f, d, c = (results[k] for k in ("overhead", "polling", "fan_out", "data_size", "concurrency"))
    lines = [
        f"1. overhead (job {o['job_s']} s, median of {o['repeats']}): wall-time ratio app/floor {o['wall_ratio']}",
        "   part                      app (s)   floor (s)",
        *[f"   {k:<24} {o['app_s'][k]:>8.3f}   {o['floor_s'][k]:>8.3f}" for k in o["app_s"]],
        f"   overhead outside detection {o['overhead_outside_detection_s']:.3f} s (target < 0.3); "
        f"detection {o['detection_share_of_job']:.1%} of the job (target <= 5%)",
        f"2. polling (time-scaled 1:{p['scale']}; calls per job, detection delay in real seconds)",
        "   job      app calls  app delay   1s calls  1s delay   5s calls  5s delay",
        *[f"   {r['real_minutes']:>4g} min  {r['app_calls']:>9}  {r['app_detect_s']:>8.1f}s  {r['fixed_1s_calls']:>8}  {r['fixed_1s_detect_s']:>7.1f}s"
          f"  {r['fixed_5s_calls']:>8}  {r['fixed_5s_detect_s']:>7.1f}s" for r in p["rows"]],
        f"   longest job: {p['long_job_fewer_calls_than_1s']}x fewer calls than 1 s polling (target >= 50x)",
        "3. fan-out: targets  app update (s)  one after another (s)  CPU used by the run, all processes (s)",
        *[f"            {r['targets']:>7}  {r['app_update_s']:>14.3f}  {r['one_after_another_s']:>21.3f}  {r['run_cpu_s']:>37.2f}" for r in f["rows"]],
        f"   N=50 takes {f['n50_over_n1']}x the time of N=1 (target <= 2x)",
        "4. data size: data (MB)  devhost peak RSS (MB)  devhost from storage (MB)  service from storage (MB)",
        *[f"              {r['data_mb']:>9}  {r['devhost_peak_rss_mb']:>21}  {r['devhost_bytes_from_storage_mb']:>25}  {r['emulator_bytes_from_storage_mb']:>25}"
          for r in d["rows"]],
        f"5. concurrency: {c['succeeded']}/{c['pipelines']} pipelines succeeded in {c['wall_s']} s; overhead p50 {c['overhead_p50_s']} s, "
        f"p95 {c['overhead_p95_s']} s; devhost peak RSS {c['devhost_peak_rss_mb']} MB",
        f"(bench ran {seconds:.0f} s)",
    ]
    return "\n".join(lines)


def main() -> int:
    began = time.monotonic()
    bench = Bench()
    try:
        bench.start_devhost()
        for name in ("overhead", "polling", "fan_out", "data_size", "concurrency"):
            print(f"bench: {name} ...", flush=True)
            section = getattr(bench, name)
            section()
            bench.clear()
    finally:
        bench.stop()
    print("bench: page ...", flush=True)
    bench.results["page"] = page.measure(WORK / "page")
    seconds = time.monotonic() - began
    results = bench.results | {"machine": machine(), "date": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": round(seconds)}
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results, seconds) + "\n" + page.report(results["page"])
    print(text)
    with open(ROOT / "bench" / "RESULTS.md", "a") as out:
        out.write(f"\n## {results['date']}\n\nMachine: {results['machine']}\n\n```\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
