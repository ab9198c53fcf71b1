"""Follow a run through the Durable status API and print its phases, polls and elapsed time."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote

import requests

TERMINAL = {"Completed", "Failed", "Terminated"}


def _decoded(value: Any) -> Any:
    """Inputs arrive JSON-encoded from the Python SDK; show them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class Follower:
    status_url: str
    out: TextIO = sys.stdout
    poll_s: float = 0.25
    started: float = field(default_factory=time.monotonic)
    _last: str = ""

    def _say(self, text: str) -> None:
        if text != self._last:
            print(f"  [{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)
            self._last = text

    def _monitor_line(self, custom: dict[str, Any]) -> str:
        """The monitor sub-orchestration's status: polls and the job's state."""
        monitor = custom.get("monitor")
        if not monitor:
            return ""
        url = self.status_url.split("?", 1)
        base = url[0].rsplit("/", 1)[0] + "/" + quote(monitor, safe="")
        response = requests.get(base + ("?" + url[1] if len(url) > 1 else ""), timeout=10)
        if response.status_code not in (200, 202):
            return ""
        status = response.json().get("customStatus") or {}
        if not status:
            return ""
        return f", poll {status.get('polls')}, job {status.get('job_state')}, job time {status.get('elapsed_s', 0):.1f}s"

    def follow(self, *, until_run: str | None = None, timeout_s: float = 600, skip_run: str | None = None) -> dict[str, Any]:
        """Print progress until the instance ends (or until a run other than `skip_run` ends)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body: dict[str, Any] = requests.get(self.status_url, timeout=10).json()
            custom = body.get("customStatus") or {}
            runtime = body.get("runtimeStatus")
            if isinstance(custom, dict) and custom.get("phase") and custom.get("run_id") != skip_run:
                line = f"run {custom.get('run_id')} ({custom.get('trigger')}): {custom['phase']}"
                if custom.get("job_id"):
                    line += f", job {custom['job_id'][:12]}"
                if custom["phase"] == "polling":
                    line += self._monitor_line(custom)
                if custom["phase"] == "updating":
                    line += ": " + ", ".join(custom.get("targets", []))
                if custom["phase"] == "done":
                    line += f" -> {custom.get('status')}"
                self._say(line)
            output = body.get("output")
            if runtime in TERMINAL and not (skip_run and isinstance(output, dict) and output.get("run_id") == skip_run):
                self._say(f"instance {runtime}")
                body["input"] = _decoded(body.get("input"))
                return body
            time.sleep(self.poll_s)
        raise TimeoutError(f"the run did not finish within {timeout_s:.0f}s")
