"""Follow a request through the app's status route and print its state, phases, polls and targets."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import requests


@dataclass
class Follower:
    status_url: str
    key: str
    out: TextIO = sys.stdout
    poll_s: float = 0.25
    started: float = field(default_factory=time.monotonic)
    _last: str = ""

    def _say(self, text: str) -> None:
        if text != self._last:
            print(f"  [{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)
            self._last = text

    @staticmethod
    def describe(view: dict[str, Any]) -> str:
        """One line for a request's status view."""
        state = view.get("state")
        if state == "pending":
            return "queued, waiting for the pipeline's current run"
        if state == "superseded":
            newer = view.get("superseded_by") or {}
            return f"superseded by a newer trigger (request {newer.get('request_id')}, run {newer.get('run_id')})"
        if state == "done":
            return f"run {view.get('run_id')} -> {view.get('outcome')}"
        progress = view.get("progress") or {}
        line = f"run {view.get('run_id')} ({view.get('trigger', {}).get('kind')}): {progress.get('phase', 'starting')}"
        if progress.get("job_id"):
            line += f", job {str(progress['job_id'])[:40]}"
        job = progress.get("job") or {}
        if job.get("polls") is not None:
            line += (
                f", poll {job['polls']}, job {job.get('job_state')}, job time {float(job.get('elapsed_s') or 0):.1f}s"
            )
            if job.get("failed_polls"):
                line += f" ({job['failed_polls']} failed polls)"
        for name, target in (progress.get("targets") or {}).items():
            shares = (target.get("progress") or {}).get("traffic")
            line += f"; {name}: {target.get('step')}" + (f" traffic {shares}" if shares else "")
        return line

    def follow(self, *, timeout_s: float = 600, appear_within_s: float = 0.0) -> dict[str, Any]:
        """Print progress until the request is finished; return its last status view.

        `appear_within_s`: how long a request that is not there yet (a blob event on its way) may take to appear.
        """
        deadline = time.monotonic() + timeout_s
        appear_by = time.monotonic() + appear_within_s
        while time.monotonic() < deadline:
            response = requests.get(self.status_url, headers={"x-functions-key": self.key}, timeout=10)
            if response.status_code == 404 and time.monotonic() < appear_by:
                self._say("waiting for the trigger to arrive")
                time.sleep(self.poll_s)
                continue
            if response.status_code not in (200, 202):
                raise RuntimeError(f"the status route answered {response.status_code}: {response.text[:300]}")
            view: dict[str, Any] = response.json()
            self._say(self.describe(view))
            if response.status_code == 200:
                return view
            time.sleep(self.poll_s)
        raise TimeoutError(f"the request did not finish within {timeout_s:.0f}s")

    def record(self, view: dict[str, Any]) -> dict[str, Any] | None:
        """The run record of a finished request (None if it was superseded)."""
        if view.get("state") != "done" or not view.get("run_id"):
            return None
        base = self.status_url.split("/requests/", 1)[0]
        response = requests.get(f"{base}/runs/{view['run_id']}", headers={"x-functions-key": self.key}, timeout=10)
        return response.json() if response.status_code == 200 else None
