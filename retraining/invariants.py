"""What must hold after any schedule of faults: named invariants over plain observed state.

Each invariant is a function of what an observer can read after the fact, as plain JSON-like data:
the queue's stored requests (`QueuedRequest.to_dict`), the run records (`RunResult.to_dict`), the
serving record (`Serving.to_dict`), the emulator's `GET /_emulator/state`, and the orchestration
instances an engine saw (`Instance` below). Each returns a list of violations, one sentence each,
empty when the invariant holds. Nothing here does I/O or depends on a framework: the fault-schedule
explorer (`tests/explore`) calls them after every schedule, and anything else may.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict

Json = Mapping[str, Any]

FINISHED_REQUEST = ("done", "superseded", "cancelled")
RUNNING_JOB = (
    "NotStarted",
    "Running",
    "Queued",
    "Starting",
    "Preparing",
    "Provisioning",
    "Finalizing",
    "CancelRequested",
)
UPDATED = "updated"
RUN_ORCHESTRATIONS = ("retrain_pipeline", "promote_model", "reconcile_targets")  # what the run queue calls a run
OLD_MODEL = ("failed", "rolled_back")  # states that say the target still serves what it served before


class Instance(TypedDict):
    """An orchestration instance as an engine saw it end (or still running)."""

    instance: str
    name: str
    status: str  # running, completed, failed, continued, terminated
    started_at: str
    ended_at: str | None
    running_children: list[str]  # children still running when it ended
    pipeline: str | None
    run_id: str | None
    request_id: NotRequired[str | None]  # a run's request
    jobs: NotRequired[list[str]]  # the training jobs a run's submit calls returned
    output: NotRequired[Any]  # what it returned, once completed


class Target(TypedDict):
    """Where a pipeline's target lives in the emulator: `kind` (classic, arm, aml-online, aml-batch) and its name there."""

    pipeline: str
    name: str
    kind: str
    service: str


class Observed(TypedDict):
    requests: list[dict[str, Any]]
    records: list[dict[str, Any]]
    serving: dict[str, dict[str, Any]]  # pipeline -> serving record
    emulator: dict[str, Any]
    instances: list[Instance]
    targets: list[Target]
    queue_idle: bool
    jobs_before: list[str]  # training jobs that existed before the schedule
    decisions: NotRequired[dict[str, dict[str, Any]]]  # run id -> the approve or reject decision stored for it
    deliveries: NotRequired[list[dict[str, Any]]]  # the delivery records (`Delivery.to_dict`) beside the run records
    webhook_accepted: NotRequired[list[str]]  # the delivery ids (X-Retrain-Delivery) the webhook answered with 2xx


def requests_settle(observed: Observed) -> list[str]:
    """Every accepted request ends run (done), superseded or cancelled; none is running or pending once the queue is idle."""
    if not observed["queue_idle"]:
        return []
    return [
        f"request {r['request_id'][:12]} of {r['request']['pipeline']} is {r['state']} (run {r.get('run_id')}) "
        "while the queue is idle"
        for r in observed["requests"]
        if r["state"] not in FINISHED_REQUEST
    ]


def runs_never_overlap(observed: Observed) -> list[str]:
    """No two runs of one pipeline overlap in time (by their orchestration instances)."""
    runs = [i for i in observed["instances"] if i["run_id"] and i["name"] in RUN_ORCHESTRATIONS]
    found = []
    for index, first in enumerate(runs):
        for second in runs[index + 1 :]:
            if first["pipeline"] != second["pipeline"] or first["run_id"] == second["run_id"]:
                continue
            first_end, second_end = first["ended_at"] or "~", second["ended_at"] or "~"
            if first["started_at"] < second_end and second["started_at"] < first_end:
                found.append(f"runs {first['run_id']} and {second['run_id']} of {first['pipeline']} overlap")
    return found


def _jobs(emulator: Json) -> dict[str, str]:
    """Every training job the emulator knows, by id: its status (Studio BES jobs and Azure ML jobs)."""
    # A Studio BES job that was submitted but never started stays NotStarted and never runs: it holds no
    # compute, so it is reported apart ("Unstarted"), not as running. Azure ML's NotStarted is queued to run.
    jobs = {
        str(j["id"]): "Unstarted" if j["status"] == "NotStarted" else str(j["status"]) for j in emulator.get("jobs", [])
    }
    for workspace in emulator.get("azureMl", {}).get("workspaces", []):
        jobs |= {str(j["name"]): str(j["status"]) for j in workspace.get("jobs", []) if j.get("jobType") == "command"}
    return jobs


def _job_of(job_id: str | None, jobs: Mapping[str, str]) -> str | None:
    """The emulator's id for a record's job id (a Studio job id may carry its service as a prefix)."""
    if not job_id:
        return None
    if job_id in jobs:
        return job_id
    return next((j for j in jobs if job_id.endswith(j) or j.endswith(job_id)), None)


ENDED_RUN = ("completed", "failed", "terminated")


def no_job_outlives_its_run(observed: Observed) -> list[str]:
    """No training job is still running once its run has ended: its record is written, or its orchestration
    completed, failed or was terminated (an interrupted run's job is cancelled by the queue's recovery)."""
    jobs = _jobs(observed["emulator"])
    found = []
    for record in observed["records"]:
        job = _job_of(record.get("job_id"), jobs)
        if job is not None and jobs[job] in RUNNING_JOB:
            found.append(f"run {record['run_id']} ended {record['status']} while its job {job} is {jobs[job]}")
    recorded = {str(r["run_id"]) for r in observed["records"]}
    for instance in observed["instances"]:
        if not instance["run_id"] or instance["run_id"] in recorded or instance["status"] not in ENDED_RUN:
            continue
        for submitted in instance.get("jobs", []):
            job = _job_of(submitted, jobs)
            if job is not None and jobs[job] in RUNNING_JOB:
                found.append(
                    f"run {instance['run_id']} ended {instance['status']} (no record) while its job {job} is {jobs[job]}"
                )
    return found


def no_child_outlives_its_parent(observed: Observed) -> list[str]:
    """No child orchestration is still running when its parent completed (or failed)."""
    return [
        f"{i['name']} {i['instance']} ended {i['status']} while its children {i['running_children']} still ran"
        for i in observed["instances"]
        if i["status"] in ("completed", "failed") and i["running_children"]
    ]


def _served(observed: Observed, target: Target) -> list[str]:
    """The training jobs (Studio) or model ids (Azure ML) whose model the target serves now, with any live traffic."""
    emulator = observed["emulator"]
    if target["kind"] == "classic":
        return [
            str(e["model_training_job"]) for e in emulator.get("endpoints", []) if e["endpoint"] == target["service"]
        ]
    if target["kind"] == "arm":
        return [
            str(a["model_training_job"]) for a in emulator.get("arm_web_services", []) if a["name"] == target["service"]
        ]
    served: list[str] = []
    for workspace in emulator.get("azureMl", {}).get("workspaces", []):
        if target["kind"] == "aml-online":
            for endpoint in workspace.get("onlineEndpoints", []):
                if endpoint["name"] != target["service"]:
                    continue
                traffic = endpoint.get("traffic") or {}
                served += [str(d["model"]) for d in endpoint["deployments"] if traffic.get(d["name"], 0) > 0]
        else:
            for endpoint in workspace.get("batchEndpoints", []):
                if endpoint["name"] == target["service"]:
                    served += [
                        str(d["model"])
                        for d in endpoint["deployments"]
                        if d["name"] == endpoint.get("defaultDeployment")
                    ]
    return served


def _sha(record: Json) -> str | None:
    model = record.get("model") or {}
    return str(model["sha256"]) if model.get("sha256") else None


def _marks(observed: Observed, record: Json) -> list[str]:
    """What identifies a run's model at a service: its training job (Studio), its registered model ids (Azure ML).

    A promotion trains nothing: its model is an earlier run's (the same bytes), known by that run's marks.
    """
    sha = _sha(record)
    marks = _own_marks(observed, record)
    for other in observed["records"]:
        if sha is not None and other is not record and _sha(other) == sha:
            marks += [m for m in _own_marks(observed, other) if m not in marks]
    return marks


def _own_marks(observed: Observed, record: Json) -> list[str]:
    marks = [str(record["job_id"])] if record.get("job_id") else []
    model = record.get("model") or {}
    for key in ("model_id", "registered", "uri", "version_id"):
        value = model.get(key)
        if isinstance(value, str) and "/versions/" in value:
            marks.append(value)
    job = record.get("job_id")
    for workspace in observed["emulator"].get("azureMl", {}).get("workspaces", []):
        marks += [
            f"{m['name']}/versions/{m['version']}" for m in workspace.get("models", []) if job and m["jobName"] == job
        ]
    return marks


def _serves(served: Iterable[str], marks: Sequence[str]) -> bool:
    return any(mark and (s == mark or s.endswith(mark) or mark.endswith(s)) for s in served for mark in marks)


def targets_match_the_service(observed: Observed) -> list[str]:
    """Each target's recorded model (the serving record) is what the service serves."""
    records = {r["run_id"]: r for r in observed["records"]}
    found = []
    newest: dict[tuple[str, str], str] = {}  # a service two pipelines roll out to serves the newer claim
    for target in observed["targets"]:
        entry = observed["serving"].get(target["pipeline"], {}).get("targets", {}).get(target["name"]) or {}
        key = (target["kind"], target["service"])
        newest[key] = max(newest.get(key, ""), str(entry.get("since", "")))
    for target in observed["targets"]:
        serving = observed["serving"].get(target["pipeline"], {})
        entry = serving.get("targets", {}).get(target["name"])
        if entry and str(entry.get("since", "")) < newest[(target["kind"], target["service"])]:
            continue  # another pipeline rolled out to the same service since
        if not entry or entry.get("run_id") not in records or target["name"] in (serving.get("unsettled") or {}):
            continue  # nothing recorded, or recorded as not known (a run left it unsettled): nothing claimed
        marks = _marks(observed, records[entry["run_id"]])
        others = [s for s in _served(observed, target) if not _serves([s], marks)]
        if others:  # anything else with live traffic: an orphan canary, another writer's deployment
            found.append(
                f"target {target['name']} of {target['pipeline']} is recorded as serving run {entry['run_id']}'s model, "
                f"but the service also or only serves {others}"
            )
    return found


def targets_of(pipeline: Json) -> list[Target]:
    """Where a pipeline definition's targets live at the service (the definition as JSON)."""
    found: list[Target] = []
    for target in pipeline.get("targets", []):
        kind = str(target.get("kind", "classic"))
        service = target["name"] if kind in ("classic", "arm") else target.get("endpoint", target["name"])
        found.append(Target(pipeline=str(pipeline["name"]), name=str(target["name"]), kind=kind, service=str(service)))
    return found


def completed_run_never_runs_again(observed: Observed) -> list[str]:
    """A request whose run completed (a record was written, or its orchestration completed) is never run again
    under another run id."""
    by_request: dict[str, list[Json]] = {}
    for record in observed["records"]:
        if record.get("status") == "Interrupted":
            continue  # the record of a run that did not complete: its request goes back in line, and runs again
        if record.get("request_id"):
            by_request.setdefault(str(record["request_id"]), []).append(record)
    found = [
        f"request {request[:12]} ran {len(runs)} times: {sorted(str(r['run_id']) for r in runs)}"
        for request, runs in by_request.items()
        if len(runs) > 1
    ]
    runs = sorted(
        (i for i in observed["instances"] if i["run_id"] and i.get("request_id")), key=lambda i: i["started_at"]
    )
    for index, first in enumerate(runs):
        if first["status"] != "completed":
            continue
        again = sorted(
            {str(i["run_id"]) for i in runs[index + 1 :] if i["request_id"] == first["request_id"]} - {first["run_id"]}
        )
        if again and len(by_request.get(str(first["request_id"]), [])) <= 1:
            found.append(
                f"request {str(first['request_id'])[:12]}: run {first['run_id']} completed, then it ran again as {again}"
            )
    return found


def one_job_and_one_model_per_run(observed: Observed) -> list[str]:
    """Each run made at most one training job and registered at most one model version; no job belongs to no run."""
    jobs = _jobs(observed["emulator"])
    new = sorted(set(jobs) - set(observed["jobs_before"]))
    claimed = [_job_of(r.get("job_id"), jobs) for r in observed["records"]]
    found = [f"job {job} appears in {n} run records" for job, n in Counter(claimed).items() if job and n > 1]
    running = {i["run_id"] for i in observed["instances"] if i["run_id"] and i["status"] == "running"}
    terminated = {  # jobs of runs terminated by hand: no record, and the queue's recovery cancelled them
        _job_of(j, jobs) for i in observed["instances"] if i["status"] == "terminated" for j in i.get("jobs", [])
    }
    if not running:
        found += [
            f"training job {job} ({jobs[job]}) belongs to no run record"
            for job in new
            if job not in claimed and job not in terminated
        ]
    for workspace in observed["emulator"].get("azureMl", {}).get("workspaces", []):
        per_job = Counter(str(m["jobName"]) for m in workspace.get("models", []) if m.get("jobName") in new)
        found += [f"job {job} registered {n} model versions" for job, n in per_job.items() if n > 1]
    return found


def records_tell_the_truth(observed: Observed) -> list[str]:
    """A run record says what happened: each target's outcome matches what the service serves, every target of
    a run that reached its roll-out has an outcome, and the queue's outcome is the record's status."""
    found = []
    targets = {(t["pipeline"], t["name"]): t for t in observed["targets"]}
    latest: dict[tuple[str, str], str] = {}
    for record in sorted(observed["records"], key=lambda r: (str(r.get("started_at")), str(r["run_id"]))):
        for outcome in record.get("targets") or []:
            latest[(str(record["pipeline"]), str(outcome["target"]))] = str(record["run_id"])
    records = {str(r["run_id"]): r for r in observed["records"]}
    for (pipeline, name), run_id in latest.items():
        target = targets.get((pipeline, name))
        if target is None:
            continue
        record = records[run_id]
        outcome = next(o for o in record["targets"] if o["target"] == name)
        state = outcome.get("state") or (UPDATED if outcome.get("updated") else "failed")
        serves_it = _serves(_served(observed, target), _marks(observed, record))
        if state == UPDATED and not serves_it:
            found.append(f"run {run_id} says target {name} was updated, but it does not serve the run's model")
        if state in OLD_MODEL and serves_it:
            found.append(f"run {run_id} says target {name} is {state} (old model), but it serves the run's model")
    for record in observed["records"]:
        sha = _sha(record)
        same_model = [r for r in observed["records"] if r is record or (sha is not None and _sha(r) == sha)]
        mentioned = {str(o["target"]) for r in same_model for o in r.get("targets") or []}  # a promotion rolled it out
        for target in observed["targets"]:
            if target["pipeline"] != record["pipeline"] or target["name"] in mentioned:
                continue
            if _serves(_served(observed, target), _marks(observed, record)):
                found.append(
                    f"run {record['run_id']} ended {record['status']} with no outcome for target {target['name']}, "
                    "which serves the run's model"
                )
    for request in observed["requests"]:
        ran = records.get(str(request.get("run_id")))
        if request["state"] == "done" and ran is not None and request.get("outcome") != ran["status"]:
            found.append(
                f"request {request['request_id'][:12]} says its run ended {request.get('outcome')}, "
                f"the record says {ran['status']}"
            )
    return found


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _rolled_out(observed: Observed, record: Json) -> list[str]:
    """The targets a run changed: an outcome that says updated, a serving entry naming the run, or a target serving its model."""
    changed = {str(o["target"]) for o in record.get("targets") or [] if o.get("updated") or o.get("state") == UPDATED}
    serving = observed["serving"].get(str(record["pipeline"]), {}).get("targets", {})
    changed |= {str(name) for name, entry in serving.items() if (entry or {}).get("run_id") == record["run_id"]}
    for target in observed["targets"]:
        if target["pipeline"] == record["pipeline"] and _serves(_served(observed, target), _marks(observed, record)):
            changed.add(target["name"])
    return sorted(changed)


def no_late_decision_takes_effect(observed: Observed) -> list[str]:
    """A run that waited for approval rolls out only on an approval made by its deadline: no decision stamped
    after `approval.expires_at` (in its record, or in the decision store) takes effect, and a wait that
    ended with no decision touches no target."""
    found = []
    stored = observed.get("decisions", {})
    for record in observed["records"]:
        approval = record.get("approval")
        if not approval:
            continue
        run_id, expires = str(record["run_id"]), _moment(approval.get("expires_at"))
        changed = _rolled_out(observed, record)
        decision = approval.get("decision")
        if decision is None:
            if changed or record["status"] in ("Succeeded", "PartiallyUpdated", "RolledBack"):
                found.append(
                    f"run {run_id} ended {record['status']} with no decision on its approval, touching {changed}"
                )
            continue
        at = _moment(decision.get("at"))
        if expires is not None and at is not None and at > expires and (changed or decision.get("action") == "approve"):
            found.append(
                f"run {run_id} took the {decision.get('action')} made at {decision.get('at')}, after its approval expired "
                f"at {approval.get('expires_at')} (targets changed: {changed})"
            )
        late = stored.get(run_id)
        late_at = _moment((late or {}).get("at"))
        if late and late_at is not None and expires is not None and late_at > expires and changed:
            found.append(
                f"run {run_id} rolled out to {changed} though the decision stored for it was made at {late['at']}, "
                f"after its approval expired at {approval.get('expires_at')}"
            )
    return found


NOTIFY_ORCHESTRATION = "notify_webhook"


def notifications_end_known(observed: Observed) -> list[str]:
    """Every notification delivery a run started ends (never fails or hangs once the queue is idle); one that
    says it was delivered was accepted by the webhook; its record, where written, says what its output says."""
    found = []
    accepted = set(observed.get("webhook_accepted", []))
    recorded = {(str(d.get("run_id")), str(d.get("event"))): d for d in observed.get("deliveries", [])}
    for instance in observed["instances"]:
        if instance["name"] != NOTIFY_ORCHESTRATION:
            continue
        if instance["status"] == "running":
            if observed["queue_idle"]:
                found.append(f"notification delivery {instance['instance']} is still running while the queue is idle")
            continue
        output = instance.get("output")
        if instance["status"] != "completed" or not isinstance(output, Mapping):
            found.append(
                f"notification delivery {instance['instance']} ended {instance['status']}, not with its outcome"
            )
            continue
        delivery = f"{output.get('pipeline')}:{output.get('run_id')}:{output.get('event')}"
        if output.get("delivered") and "webhook_accepted" in observed and delivery not in accepted:
            found.append(f"notification {delivery} is recorded delivered, but the webhook never accepted it")
        record = recorded.get((str(output.get("run_id")), str(output.get("event"))))
        if record is not None and bool(record.get("delivered")) != bool(output.get("delivered")):
            found.append(
                f"notification {delivery}: its record says delivered={record.get('delivered')}, "
                f"its delivery ended delivered={output.get('delivered')}"
            )
    return found


INVARIANTS: tuple[Callable[[Observed], list[str]], ...] = (
    requests_settle,
    runs_never_overlap,
    no_job_outlives_its_run,
    no_child_outlives_its_parent,
    targets_match_the_service,
    completed_run_never_runs_again,
    one_job_and_one_model_per_run,
    records_tell_the_truth,
    no_late_decision_takes_effect,
    notifications_end_known,
)


def check(observed: Observed) -> list[str]:
    """Every invariant's violations, each prefixed with the invariant's name."""
    return [f"{invariant.__name__}: {v}" for invariant in INVARIANTS for v in invariant(observed)]
