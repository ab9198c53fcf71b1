"""The local stack every figure measures on: Azurite, the emulator and one devhost process, with helpers.

devhost runs as its own process (`retrain serve --settings`, through `bench.devhost_traced`, which
times the app's code for the instances a figure asks for) so /proc shows its CPU, memory and I/O.
Figures add their pipelines (and the endpoints those use) before devhost starts; everything listens
on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobServiceClient

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.datasets import breast_cancer  # noqa: E402
from devhost.files import write_private  # noqa: E402
from devhost.services import Emulator, free_port, start_azurite, start_emulator  # noqa: E402
from devhost.stack import AML_DATA, aml_settings, emulator_settings  # noqa: E402

KEEP = ROOT / "bench" / ".work"  # what outlives a run (the cold-start virtualenv)
WORK = KEEP / "run"  # this run's state, wiped at start
DATA = "labeledexamples"
RECORDS = "runrecords"  # RETRAIN_RUN_RECORDS_CONTAINER's default
BEFORE_DETECTION = (
    "resolving",
    "waiting_for_data",
    "inspecting_data",
    "submitting",
    "starting",
    "polling",
)  # a run's phases up to the job's end seen


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes, from /proc/PID/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def proc(pid: int, name: str) -> int:
    """A /proc/PID/status figure in bytes (VmHWM: peak RSS, VmRSS: RSS now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


def mb(value: float) -> float:
    return round(value / 1024 / 1024, 1)


def timespan(seconds: float) -> str:
    """A definitions timespan (`hh:mm:ss.ffffff`) for a number of seconds under a day."""
    whole = timedelta(seconds=seconds)
    hours, rest = divmod(whole.total_seconds(), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:09.6f}"


class CountingProxy:
    """A TCP proxy in front of Azurite that counts the bytes each client process receives.

    /proc/PID/io does not count socket reads, so the proxy attributes each connection to the
    process that owns the client socket (via /proc/net/tcp and /proc/PID/fd).
    """

    def __init__(self, target_port: int) -> None:
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
                if any(
                    os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")
                ):
                    return pid
            except OSError:
                continue
        return 0

    def _accept(self) -> None:
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


class Stack:
    root, work = ROOT, WORK
    cpu = staticmethod(cpu_seconds)

    def __init__(self) -> None:
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        self.azurite = start_azurite(WORK / "azurite")
        self.proxy = CountingProxy(self.azurite.port)
        proxied = self.azurite.connection_string.replace(f":{self.azurite.port}/", f":{self.proxy.port}/")
        # Azure ML jobs read their input by the URL devhost hands them, which is the proxy's
        self.emulator: Emulator = start_emulator(
            WORK / "emulator", storage_connection_string=(self.azurite.connection_string, proxied)
        )
        self.blobs = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        self.services = self.emulator.services()
        self.training = self.services["webServices"][0]
        self.scoring = self.services["webServices"][1]
        self.settings = emulator_settings(self.services, self.azurite) | {
            "DEVHOST_MAX_ACTIVITIES": "64",
            "RETRAIN_UPDATE_WAIT_SECONDS": "60",
            "DEVHOST_WATCH_BLOBS": "false",
        }  # no blob trigger here: keep its listing out of the figures
        # devhost (and so the SAS locations it hands the service) reaches storage through the counting proxy
        self.settings["TrainingStorage"] = proxied
        self.shipped = json.loads((ROOT / "pipelines.json").read_text())["pipelines"][0]
        self.pipelines: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}  # what a figure's prepare() leaves for its measure()
        self.devhost: subprocess.Popen[bytes] | None = None
        # what bench.devhost_traced traces: instance ids (and their children), HTTP paths
        self.trace_instances: list[str] = []
        self.trace_paths: list[str] = []

    # ---- set-up (before devhost starts) -------------------------------------------------------

    def endpoints(self, service: dict[str, Any], prefix: str, count: int) -> list[dict[str, Any]]:
        """`count` new endpoints of a web service (classic management PUT), as `/_emulator/services` lists them."""
        default = service["endpoints"][0]
        base = default["updateResourceEndpoint"].rsplit("/", 1)[0]
        with requests.Session() as session:
            for i in range(count):
                session.put(
                    f"{base}/{prefix}{i:03d}",
                    json={"Description": "bench"},
                    headers={"Authorization": f"Bearer {default['apiKey']}"},
                    timeout=10,
                ).raise_for_status()
        listed = next(s for s in self.emulator.services()["webServices"] if s["id"] == service["id"])["endpoints"]
        return [e for e in listed if e["name"].startswith(prefix)]

    def pipeline(
        self,
        name: str,
        *,
        targets: list[dict[str, Any]] | None = None,
        training: dict[str, Any] | None = None,
        first_s: float = 0.05,
        max_s: float = 1.5,
        fraction: float = 0.05,
        timeout_s: float = 600,
    ) -> dict[str, Any]:
        """A pipeline like the shipped one, on the bench's data, with no gate, schedule or blob trigger."""
        definition = self.shipped | {
            "name": name,
            "gate": {},
            "targets": targets or [],
            "schedule": {"enabled": False},
            "data": {"container": DATA, "blob": "base.csv", "watch": "never/*"},
            "polling": {"firstInterval": timespan(first_s), "maxInterval": timespan(max_s), "fraction": fraction},
            "policy": {"timeout": timespan(timeout_s), "retry": 1, "retryIntervalInSeconds": 1},
        }
        if training is not None:  # a training endpoint of its own, so its job's duration can be set alone
            key = f"TRAINING_KEY_{training['name'].upper()}"
            self.settings[key] = training["apiKey"]
            definition["training"] = self.shipped["training"] | {
                "mlEndpoint": training["mlEndpoint"],
                "apiKeySetting": key,
            }
        self.pipelines.append(definition)
        return definition

    def aml_pipeline(self, name: str, model: str, **fields: Any) -> dict[str, Any]:
        """A pipeline like the shipped `aml-retrain` (its settings pointed at the emulator's workspace),
        with a registry model of its own, no gate, schedule or blob trigger, and `fields` on top."""
        self.settings |= aml_settings(self.services)
        shipped = next(
            p for p in json.loads((ROOT / "pipelines.json").read_text())["pipelines"] if p["name"] == "aml-retrain"
        )
        definition: dict[str, Any] = (
            copy.deepcopy(shipped) | {"name": name, "gate": {}, "schedule": {"enabled": False}} | fields
        )
        definition["data"] = definition["data"] | {"watch": "never/*"}
        definition["training"] = definition["training"] | {"modelName": model}
        self.pipelines.append(definition)
        return definition

    def classic(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        """A classic scoring target on one endpoint of the scoring service."""
        key = f"KEY_{endpoint['name'].upper()}"
        self.settings[key] = endpoint["apiKey"]
        return {
            "name": endpoint["name"],
            "kind": "classic",
            "updateResourceEndpoint": endpoint["updateResourceEndpoint"],
            "apiKeySetting": key,
            "trainedModelName": self.scoring["resourceName"],
            "policy": {"timeout": "00:05:00", "retry": 1, "retryIntervalInSeconds": 1},
        }

    @property
    def definitions_file(self) -> Path:
        return WORK / "pipelines.json"

    def start_devhost(self) -> None:
        self.definitions_file.write_text(json.dumps({"pipelines": self.pipelines}))
        self.settings["RETRAIN_PIPELINES_FILE"] = str(self.definitions_file)
        write_private(WORK / "local.settings.json", json.dumps({"Values": self.settings}))  # it holds the keys
        home = WORK / "devhost"
        home.mkdir()
        self.devhost_log_path = home / "devhost.log"
        self.devhost_log = open(self.devhost_log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.devhost = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.devhost_traced",
                "serve",
                "--settings",
                str(WORK / "local.settings.json"),
                "--port",
                str(free_port()),
            ],
            cwd=home,
            stdout=self.devhost_log,
            stderr=subprocess.STDOUT,
            env=os.environ
            | {
                "PYTHONPATH": str(ROOT),
                "BENCH_TRACE_FILE": str(self.trace_file),
                "BENCH_TRACE_INSTANCES": ",".join(self.trace_instances),
                "BENCH_TRACE_PATHS": ",".join(self.trace_paths),
            },
        )
        self.proxy.watch = (self.devhost.pid, self.emulator.process.pid)
        state = home / ".devhost" / "serve.json"
        deadline = time.monotonic() + 120
        while not state.exists():
            if self.devhost.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("devhost did not start:\n" + (home / "devhost.log").read_text()[-3000:])
            time.sleep(0.1)
        serve = json.loads(state.read_text())
        self.url, self.key, self.eventgrid_key = serve["url"], serve["key"], serve["eventgridKey"]
        self.blobs.create_container(DATA)
        self.blobs.get_blob_client(DATA, "base.csv").upload_blob(breast_cancer().head(120).to_csv())
        seed = breast_cancer().head(40)
        requests.post(
            f"{self.emulator.http_base}/_emulator/web-services/{self.scoring['id']}/seed",
            json={"ColumnNames": list(seed.names), "Values": [list(r) for r in seed.rows]},
            timeout=60,
        ).raise_for_status()

    @property
    def trace_file(self) -> Path:
        return WORK / "trace.jsonl"

    def trace(self, since: float = 0.0) -> list[dict[str, Any]]:
        """What bench.devhost_traced wrote about the traced instances, from `since` (wall time) on."""
        if not self.trace_file.exists():
            return []
        entries = [json.loads(line) for line in self.trace_file.read_text().splitlines() if line.strip()]
        return [e for e in entries if e["start"] >= since]

    @property
    def devhost_pid(self) -> int:
        assert self.devhost is not None, "devhost is not running"
        return self.devhost.pid

    def stop(self) -> None:
        if self.devhost is not None:
            self.devhost.terminate()
            self.devhost.wait(20)
            self.devhost_log.close()
        self.emulator.stop()
        self.azurite.stop()

    # ---- driving runs ---------------------------------------------------------------------------

    def fault(self, rule: dict[str, Any]) -> None:
        """Add a fault rule to the emulator (`/_emulator/faults`; `kind` names the service and what it hits)."""
        requests.post(f"{self.emulator.http_base}/_emulator/faults", json=rule, timeout=10).raise_for_status()

    def job_behaviour(self, target: str | None = None, **behaviour: Any) -> None:
        """How the next job(s) of the training service (or of one of its endpoints, by service id) behave."""
        self.fault({"kind": "job", "target": target or self.training["id"]} | behaviour)

    def load_aml_data(self) -> None:
        """The breast-cancer set as CSV where the Azure ML pipelines read it (once per run)."""
        container, blob = AML_DATA
        if not self.blobs.get_container_client(container).exists():
            self.blobs.create_container(container)
        self.blobs.get_blob_client(container, blob).upload_blob(breast_cancer().to_csv(), overwrite=True)

    def seed_aml(self, model: str) -> None:
        """Version 1 of `model` (40 rows) serving at 100% on deployment `blue` of the workspace's online endpoint."""
        ws = self.services["azureMl"]["workspaces"][0]
        seed = breast_cancer().head(40)
        requests.post(
            f"{self.emulator.http_base}/_emulator/azure-ml/workspaces/{ws['name']}/seed",
            json={"ColumnNames": list(seed.names), "Values": [list(r) for r in seed.rows], "model": model},
            timeout=60,
        ).raise_for_status()

    def clear(self) -> None:
        requests.delete(f"{self.emulator.http_base}/_emulator/faults", timeout=10)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {
            j["id"]: j for j in requests.get(f"{self.emulator.http_base}/_emulator/state", timeout=30).json()["jobs"]
        }

    def records(self, prefix: str = "") -> set[str]:
        """The names of the run records under `prefix` (read from Azurite, not through devhost)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return {b.name for b in self.blobs.get_container_client(RECORDS).list_blobs(name_starts_with=prefix)}
        except ResourceNotFoundError:
            return set()

    def start(self, pipeline: str, body: dict[str, Any] | None = None) -> tuple[float, set[str]]:
        """Start a run over HTTP; return the time of the request and the records the pipeline had before it."""
        known = self.records(f"{pipeline}/runs/")
        began = time.time()
        requests.post(
            f"{self.url}/api/pipelines/{pipeline}/runs",
            json=body or {},
            headers={"x-functions-key": self.key},
            timeout=60,
        ).raise_for_status()
        return began, known

    def wait(
        self, started: dict[str, tuple[float, set[str]]], poll_s: float = 0.1, timeout_s: float = 900
    ) -> dict[str, tuple[float, dict[str, Any]]]:
        """Each started pipeline's (time of the request, run record), once its new record is written.

        Completion is read from storage, so waiting costs devhost nothing (its status route reads
        storage and every orchestration's status on each call).
        """
        done: dict[str, tuple[float, dict[str, Any]]] = {}
        deadline = time.monotonic() + timeout_s
        while len(done) < len(started):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no record within {timeout_s} s for {sorted(set(started) - set(done))[:10]}")
            names = self.records() if len(started) > 1 else self.records(f"{next(iter(started))}/runs/")
            for pipeline, (began, known) in started.items():
                new = sorted(n for n in names if n.startswith(f"{pipeline}/runs/") and n not in known)
                if pipeline not in done and new:
                    record = json.loads(self.blobs.get_blob_client(RECORDS, new[-1]).download_blob().readall())
                    done[pipeline] = (began, record)
            time.sleep(poll_s)
        return done

    def run(
        self, pipeline: str, body: dict[str, Any] | None = None, poll_s: float = 0.1
    ) -> tuple[float, dict[str, Any]]:
        """Start a run and wait for its record; return (time of the request, run record)."""
        return self.wait({pipeline: self.start(pipeline, body)}, poll_s)[pipeline]

    @staticmethod
    def moments(result: dict[str, Any]) -> tuple[float, float]:
        """(detected, updated) wall times from the run's start and its phase durations."""
        started = datetime.fromisoformat(result["started_at"].replace("Z", "+00:00")).timestamp()
        phases = result["phases"]
        detected = started + sum(phases.get(p, 0.0) for p in BEFORE_DETECTION)
        updated = detected + sum(phases.get(p, 0.0) for p in ("collecting", "evaluating", "updating"))
        return detected, updated

    def record(self, pipeline: str, run_id: str) -> dict[str, Any]:
        data = self.blobs.get_blob_client(RECORDS, f"{pipeline}/runs/{run_id}.json").download_blob().readall()
        return dict(json.loads(data))

    def write_history(self, template: dict[str, Any], pipeline: str, durations: list[float]) -> None:
        """Run records for `pipeline` whose jobs took `durations` (newest first), cloned from a real record."""
        container = self.blobs.get_container_client(RECORDS)
        newest = datetime(2026, 1, 1, tzinfo=UTC)
        for age, elapsed in enumerate(durations):
            moment = newest - timedelta(days=7 * age)
            run_id = f"{moment:%Y%m%dT%H%M%SZ}-{age:08x}"
            record = template | {
                "run_id": run_id,
                "pipeline": pipeline,
                "job": template["job"] | {"elapsed_s": round(elapsed, 3)},
                "request": template["request"] | {"pipeline": pipeline},
                "record": f"{RECORDS}/{pipeline}/runs/{run_id}.json",
            }
            container.upload_blob(f"{pipeline}/runs/{run_id}.json", json.dumps(record), overwrite=True)

    # ---- the floor: the same calls from a plain script ------------------------------------------

    def bes(self, method: str, suffix: str = "", body: Any = None) -> requests.Response:
        url = f"{self.training['mlEndpoint']}{suffix}?api-version=2.0"
        return requests.request(
            method, url, json=body, headers={"Authorization": f"Bearer {self.training['apiKey']}"}, timeout=30
        )

    def direct_job(self, interval: float) -> tuple[float, str, float, int]:
        """Submit, start, poll every `interval`; return (began, job id, detected, polls)."""
        from retraining.models import BlobPath

        storage = self.direct_storage()
        run = f"direct-{time.time_ns()}"

        def ref(name: str, write: bool) -> dict[str, Any]:
            path = BlobPath(DATA if not write else "trainingoutput", name)
            return {
                "BaseLocation": storage.account_url,
                "RelativeLocation": str(path),
                "SasBlobToken": storage.sas(path, read=not write, write=write, lifetime=timedelta(hours=1)),
            }

        storage.ensure_container("trainingoutput")
        began = time.time()
        job = self.bes(
            "POST",
            body={
                "Inputs": {"input1": ref("base.csv", False)},
                "Outputs": {
                    "output1": ref(f"{run}/model.ilearner", True),
                    "output2": ref(f"{run}/evaluation.csv", True),
                },
            },
        ).json()
        self.bes("POST", f"/{job}/start")
        polls, first = 0, time.monotonic()
        while True:
            polls += 1
            if self.bes("GET", f"/{job}").json()["StatusCode"] == "Finished":
                return began, job, time.time(), polls
            # A fixed-interval poller: the k-th call at k * interval, however long each call took.
            time.sleep(max(0.0, first + polls * interval - time.monotonic()))

    def direct_storage(self) -> Any:
        from retraining.settings import Settings
        from retraining.storage import TrainingStorage

        return TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": self.azurite.connection_string}))

    def direct_update(
        self, endpoint: dict[str, Any], model_path: str, storage: Any = None, session: Any = None
    ) -> None:
        """Update Resource as a plain script does it: a read SAS, PATCH, then GET until the endpoint shows the model."""
        from retraining.models import BlobPath

        storage = storage or self.direct_storage()
        http = session or requests
        path = BlobPath.parse(model_path)
        headers = {"Authorization": f"Bearer {endpoint['apiKey']}"}
        body = {
            "Resources": [
                {
                    "Name": self.scoring["resourceName"],
                    "Location": {
                        "BaseLocation": storage.account_url,
                        "RelativeLocation": str(path),
                        "SasBlobToken": storage.sas(path, read=True, lifetime=timedelta(hours=1)),
                    },
                }
            ]
        }
        http.patch(endpoint["updateResourceEndpoint"], json=body, headers=headers, timeout=30).raise_for_status()
        while http.get(endpoint["updateResourceEndpoint"], headers=headers, timeout=30).json()["Resources"][0][
            "Location"
        ]["RelativeLocation"] != str(path):
            time.sleep(0.01)
