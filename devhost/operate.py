"""`retrain` commands for operators, the same actions as the status page, over the app's JSON routes:

    retrain runs PIPELINE [--limit N]           in progress (with the live phase) and the newest runs
    retrain models PIPELINE                     what each target serves since when; champions; candidates
    retrain approve|reject PIPELINE RUN [--comment TEXT]
    retrain cancel PIPELINE RUN|REQUEST_ID [--comment TEXT]
    retrain rollback PIPELINE [--to RUN] [--force]

A table by default, the route's JSON with `--json`. Against devhost (`.devhost/serve.json`) or a
deployed app (`--url`, `--key`). Exit codes: 0 done, 1 the app refused (the message says why), 2
bad usage or the app cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import requests

from retraining.history import why_text

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    from .cli import _connection, _error_text

    connection = _connection(args)
    response = requests.request(
        method, f"{connection['url']}/api/{path}", json=body, timeout=60, headers={"x-functions-key": connection["key"]}
    )
    if response.status_code >= 400:
        print(f"retrain: {_error_text(response)} ({response.status_code})", file=sys.stderr)
        return (1 if response.status_code < 500 else 2), None
    return 0, response.json()


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [["-" if c is None or c == "" else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _short(text: Any, width: int = 60) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= width else value[: width - 1] + "…"


def _output(args: argparse.Namespace, answer: Any, table: Callable[[Any], str]) -> int:
    print(json.dumps(answer, indent=2) if args.json else table(answer))
    return 0


def runs_table(answer: dict[str, Any]) -> str:
    lines = []
    for item in answer["in_progress"]:
        progress = item.get("progress") or {}
        phase = progress.get("phase") or item["state"]
        until = f" until {progress['expires_at']}" if progress.get("expires_at") else ""
        lines.append(
            f"{item['state']:<8} {item.get('run_id') or item['id']}  {item['action']} ({item['trigger']})  {phase}{until}"
        )
    rows = []
    for run in answer["runs"]:
        decision = (run.get("approval") or {}).get("decision") or run.get("cancel")
        who = f"{decision['action']} by {decision['by']}" if decision else ""
        duration = sum(float(v) for v in (run.get("phases") or {}).values())
        rows.append(
            [
                run["run_id"],
                run["started_at"][:19],
                run["trigger"],
                run["status"],
                f"{duration:.1f}s",
                (run.get("job") or {}).get("polls"),
                ((run.get("model") or {}).get("sha256") or "")[:12],
                who,
                _short(run.get("reason")),
                _short(why_text(run), 100),
            ]
        )
    table = _table(
        rows, ["RUN", "STARTED", "TRIGGER", "STATUS", "DURATION", "POLLS", "MODEL", "DECISION", "REASON", "WHY (DATA)"]
    )
    return "\n".join([*lines, *([""] if lines else []), table if rows else "no run recorded yet"])


def models_table(answer: dict[str, Any]) -> str:
    def metrics(model: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in sorted(model.get("metrics", {}).items())[:3])

    rows = [
        [f"target {name}", s["model"]["sha256"][:12], s["run_id"], s["since"][:19], metrics(s["model"])]
        for name, s in answer["targets"].items()
    ]
    if answer.get("champion"):
        champion = answer["champion"]
        rows.append(
            [
                "champion",
                champion["model"]["sha256"][:12],
                champion["run_id"],
                champion["since"][:19],
                metrics(champion["model"]),
            ]
        )
    rows += [
        ["earlier champion", p["model"]["sha256"][:12], p["run_id"], p["since"][:19], metrics(p["model"])]
        for p in answer["previous"]
    ]
    rows += [
        [
            f"candidate ({c['status']})",
            c["model"]["sha256"][:12],
            c["run_id"],
            c["finished_at"][:19],
            metrics(c["model"]),
        ]
        for c in answer["candidates"][:10]
    ]
    return _table(rows, ["ROLE", "MODEL", "RUN", "SINCE", "METRICS"]) if rows else "no model recorded yet"


def runs(args: argparse.Namespace) -> int:
    status, answer = _call(args, "GET", f"pipelines/{quote(args.pipeline)}/runs?limit={args.limit}")
    return status or _output(args, answer, runs_table)


def models(args: argparse.Namespace) -> int:
    status, answer = _call(args, "GET", f"pipelines/{quote(args.pipeline)}/models")
    return status or _output(args, answer, models_table)


def decide(args: argparse.Namespace) -> int:
    action = args.action
    body = {"comment": args.comment} if args.comment else {}
    if action == "cancel" and REQUEST_ID.match(args.run):
        path = f"pipelines/{quote(args.pipeline)}/requests/{args.run}/cancel"
    else:
        path = f"pipelines/{quote(args.pipeline)}/runs/{quote(args.run)}/{action}"
    status, answer = _call(args, "POST", path, body)
    if status:
        return status
    decision = answer.get("decision") or {}
    return _output(
        args,
        answer,
        lambda a: (
            f"{decision.get('action')} of {args.run} recorded ({decision.get('by')}, {decision.get('at')})"
            + (f"; {a['note']}" if a.get("note") else "")
        ),
    )


def rollback(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"force": True} if args.force else {}
    if args.to:
        body["runId"] = args.to
    status, answer = _call(args, "POST", f"pipelines/{quote(args.pipeline)}/rollback", body)
    return status or _output(
        args, answer, lambda a: f"roll-back to run {a['sourceRun']} queued: request {a['id']}\n{a['statusUri']}"
    )


def add_commands(commands: Any) -> None:
    """Register the operator commands on `retrain`'s subparsers."""

    def connection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url")
        p.add_argument("--key")
        p.add_argument("--json", action="store_true", help="print the app's JSON answer instead of a table")

    p = commands.add_parser("runs", help="runs in progress and the newest runs of a pipeline")
    p.add_argument("pipeline")
    p.add_argument("--limit", type=int, default=20)
    connection(p)
    p.set_defaults(handler=runs)
    p = commands.add_parser("models", help="what each target serves since when, champions and candidates")
    p.add_argument("pipeline")
    connection(p)
    p.set_defaults(handler=models)
    for action, text in (
        ("approve", "approve a run waiting for approval"),
        ("reject", "reject a run waiting for approval"),
        ("cancel", "cancel a run (or a request that has not run yet)"),
    ):
        p = commands.add_parser(action, help=text)
        p.add_argument("pipeline")
        p.add_argument("run", help="the run id" + (" or request id" if action == "cancel" else ""))
        p.add_argument("--comment", help="why, for the record")
        connection(p)
        p.set_defaults(handler=decide, action=action)
    p = commands.add_parser("rollback", help="roll every target back to an earlier verified model")
    p.add_argument("pipeline")
    p.add_argument("--to", help="the run whose model to roll out (default: the champion before the current one)")
    p.add_argument("--force", action="store_true", help="even if that model did not pass its gate (recorded)")
    connection(p)
    p.set_defaults(handler=rollback)
