"""A per-pipeline index of run summaries, so a history of thousands of runs reads in a few calls.

    {records}/{pipeline}/index/{YYYY-MM}.json    {"runs": [summary, ...]}, oldest first, by run start month

Each summary is what a listing shows of a run (status, trigger, phases, job, metrics, targets,
decisions, reason), bounded in size. It is appended when the run record is written, in the same
activity, with an ETag-conditional write (a concurrent writer makes it read again), and an entry
already there is left alone, so a retried write adds nothing twice. Records written before the
index existed, or whose entry never made it, are added by `reconcile` (the retention timer runs it
daily).

Why monthly blobs: listing a thousand small blobs with their metadata took 0.45 s on Azurite,
reading one blob with a thousand summaries 0.025 s (see bench/page.py).
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, StorageConflictError, StorageError
from .models import BlobPath, DriftRecord, RunResult, check_run_id
from .storage import TrainingStorage

INDEX_LIMIT = 64 * 1024 * 1024  # one month's index; about 60,000 runs
MAX_METRICS = 24
MAX_TEXT = 400


def _short(text: str | None, limit: int = MAX_TEXT) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def summary_of(result: RunResult) -> dict[str, Any]:
    """What a run listing shows of a run, bounded in size whatever the record holds."""
    request, job, model = result.request, result.job, result.model
    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "action": request.action.value,
        "trigger": request.trigger.kind.value,
        "trigger_detail": _short(request.trigger.detail, 200),
        "requested_by": request.requested_by,
        "dry_run": request.dry_run,
        "source_run": request.source_run,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "reason": _short(result.reason),
        "phases": dict(result.phases),
        "job_id": result.job_id,
        "job": {"status": job.status, "polls": job.polls, "failed_polls": job.failed_polls, "elapsed_s": job.elapsed_s}
        if job
        else None,
        "model": {
            "sha256": model.sha256,
            "version": model.version,
            "size": model.size,
            "metrics": dict(sorted(model.metrics.items())[:MAX_METRICS]),
        }
        if model
        else None,
        "gate": {"promote": result.gate.promote, "reasons": [_short(r, 200) for r in result.gate.reasons[:5]]}
        if result.gate
        else None,
        "targets": [
            {
                "target": t.target,
                "kind": t.kind,
                "state": t.state.value if t.state else None,
                "error": _short(t.error, 200),
                "steps": list(t.steps)[:20],
                "progress": dict(t.progress),
            }
            for t in result.targets[:50]
        ],
        "approval": result.approval.to_dict() if result.approval else None,
        "cancel": result.cancel.to_dict() if result.cancel else None,
        "notes": [_short(n, 200) for n in result.notes[:10]],
        "superseded": len(result.superseded),
        "record": result.record,
        "drift": drift_summary(result.drift) if result.drift else None,
    }


def drift_summary(drift: DriftRecord) -> dict[str, Any]:
    """Why the run trained or was skipped, and its drift scores, as listings and the page's plots show them."""
    return {
        "train": drift.train,
        "reasons": [_short(r, 300) for r in drift.reasons[:5]],
        "drifting": list(drift.drifting[:10]),
        "features": [{"name": f.name, "psi": f.psi, "ks": f.ks, "tvd": f.tvd} for f in drift.features[:10]],
        "conditions": [
            {"name": c.name, "score": c.score, "threshold": c.threshold, "held": c.held} for c in drift.conditions
        ],
        "label_shift": drift.label_shift,
        "growth": drift.growth,
        "reference_run": drift.reference_run,
        "detected": drift.detected,
    }


def why_text(summary: dict[str, Any]) -> str:
    """Why a run trained or was skipped, from its summary's drift check ("" when it ran none)."""
    drift = summary.get("drift")
    if not isinstance(drift, dict):
        return ""
    reasons = "; ".join(str(r) for r in drift.get("reasons") or [])
    drifting = [str(f) for f in drift.get("drifting") or []]
    shown = f" (drifting: {', '.join(drifting[:5])})" if drifting else ""
    return f"{'trained' if drift.get('train') else 'skipped'}: {reasons}{shown}"


class RunIndex:
    def __init__(self, storage: TrainingStorage, container: str) -> None:
        self._storage = storage
        self._container = container

    def _month(self, pipeline: str, run_id: str) -> BlobPath:
        check_run_id(run_id)
        return BlobPath(self._container, f"{pipeline}/index/{run_id[:4]}-{run_id[4:6]}.json")

    def add(self, summaries: list[dict[str, Any]], pipeline: str, attempts: int = 8) -> int:
        """Append summaries (of one month) that are not there yet; return how many were added."""
        if not summaries:
            return 0
        path = self._month(pipeline, summaries[0]["run_id"])
        for _ in range(attempts):
            found = self._storage.read_json_with_etag(path, INDEX_LIMIT)
            runs = list(found[0].get("runs", [])) if found and isinstance(found[0], dict) else []
            known = {r.get("run_id") for r in runs if isinstance(r, dict)}
            new = [s for s in summaries if s["run_id"] not in known]
            if not new:
                return 0
            runs = sorted(runs + new, key=lambda r: str(r.get("run_id")))
            try:
                self._storage.write_json(
                    path, {"runs": runs}, overwrite=found is None, if_match=found[1] if found else None
                )
                return len(new)
            except StorageConflictError:
                continue
        raise StorageError(f"{path} kept changing; the run summary was not indexed")

    def months(self, pipeline: str) -> list[str]:
        """The index blobs of a pipeline, newest first."""
        prefix = f"{pipeline}/index/"
        return sorted(
            (b.name for b in self._storage.list(self._container, prefix) if b.name.endswith(".json")), reverse=True
        )

    def recent(self, pipeline: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` summaries, newest first; an unreadable month is skipped, never a failure."""
        found: list[dict[str, Any]] = []
        for name in self.months(pipeline):
            try:
                raw = self._storage.read_json(BlobPath(self._container, name), INDEX_LIMIT)
            except StorageError:
                continue
            runs = raw.get("runs", []) if isinstance(raw, dict) else []
            found += [r for r in reversed(runs) if isinstance(r, dict) and isinstance(r.get("run_id"), str)]
            if len(found) >= limit:
                break
        return found[:limit]

    def reconcile(self, pipeline: str, run_ids: list[str], read: Any) -> int:
        """Index the runs among `run_ids` that have a record but no summary; `read(run_id)` gives a RunResult."""
        indexed = {r["run_id"] for r in self.recent(pipeline, 10**9)}
        missing: dict[str, list[dict[str, Any]]] = {}
        for run_id in run_ids:
            if run_id in indexed:
                continue
            try:
                result = read(run_id)
            except (ConfigError, StorageError, KeyError, ValueError, TypeError):
                continue  # an unreadable record is not indexed
            missing.setdefault(run_id[:6], []).append(summary_of(result))
        return sum(self.add(group, pipeline) for group in missing.values())
