"""The status page as HTML, from the plain data of `retraining.page.data`: an overview of every pipeline, and one
page per pipeline (what runs now, what serves where since when, metrics over time, run history, actions).

Every value is escaped; the function key is never written into a page (the script reads it from
the address). Links and action URLs are relative to the app's `/api` prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from .assets import SCRIPT, STYLE
from .svg import STATUS_CLASS, metric_plot, phase_bar, traffic_bar

MAX_PLOTS = 4
PROMOTABLE = ("Succeeded", "PartiallyUpdated", "DryRun")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _badge(status: str | None) -> str:
    return f'<span class="badge {STATUS_CLASS.get(status or "", "")}">{_e(status or "-")}</span>'


def _when(text: str | None) -> str:
    return f'<span class="mono" title="{_e(text)}">{_e((text or "-")[:19].replace("T", " "))}</span>'


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"


def _document(title: str, api: str, pipeline: str, content: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{STYLE}</style></head>'
        f'<body data-api="{_e(api)}" data-pipeline="{_e(pipeline)}">{content}<script>{SCRIPT}</script></body></html>'
    )


def _header(title: str, api: str, back: bool) -> str:
    link = f'<a data-page href="{_e(api)}/status">all pipelines</a>' if back else ""
    return f'<header><h1>{_e(title)}</h1>{link}<span class="live" id="live-stamp">loading live state</span></header>'


def _in_progress(items: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        f'<div class="live-item" data-request="{_e(i["id"])}"><span class="badge {_e(i["state"])}">{_e(i["state"])}</span> '
        f"{_e(i['action'])} ({_e(i['trigger'])}){' run ' + _e(i['run_id']) if i.get('run_id') else ''}</div>"
        for i in items
    ]
    return "".join(rows) or '<p class="muted">Nothing runs or waits now.</p>'


def _last(last: Mapping[str, Any] | None) -> str:
    if not last:
        return '<p class="muted">No run recorded yet.</p>'
    reason = f'<div class="reason">{_e(last.get("reason"))}</div>' if last.get("reason") else ""
    return f"<p>Last run {_e(last['run_id'])}: {_badge(last.get('status'))} finished {_when(last.get('finished_at'))}</p>{reason}"


def _schedule(schedule: Mapping[str, Any]) -> str:
    expression = f"<code>{_e(schedule.get('expression'))}</code>" if schedule.get("expression") else ""
    nxt = f"next run {_when(schedule['next'])} UTC" if schedule.get("next") else _e(schedule.get("note"))
    return f"<p>Schedule {expression}: {nxt}</p>"


def overview_page(pipelines: list[dict[str, Any]], api: str) -> str:
    cards = []
    for view in pipelines:
        name = view["name"]
        cards.append(
            f'<section class="card" data-card="{_e(name)}"><h2><a data-page href="{_e(api)}/status/{quote(name)}">{_e(name)}</a></h2>'
            f"{_schedule(view['schedule'])}{_last(view.get('last'))}"
            f'<div data-live="{_e(name)}" data-newest="{_e((view.get("last") or {}).get("run_id", ""))}">'
            f"{_in_progress(view['in_progress'])}</div>"
            f"</section>"
        )
    content = (
        f'{_header("Retraining pipelines", api, back=False)}<main><div id="message" class="message"></div>'
        f'<div class="cards">{"".join(cards) or "<p>No pipeline is defined.</p>"}</div></main>'
    )
    return _document("Retraining pipelines", api, "", content)


def _action(
    label: str,
    url: str,
    body: Mapping[str, Any] | None = None,
    *,
    confirm: str | None = None,
    done: str = "",
    kind: str = "",
    action: str = "",
) -> str:
    attributes = f' data-url="{_e(url)}" data-done="{_e(done)}" data-action="{_e(action)}"'
    if body:
        attributes += f' data-body="{_e(json.dumps(body))}"'
    if confirm:
        attributes += f' data-confirm="{_e(confirm)}"'
    return f'<button class="{_e(kind)}"{attributes}>{_e(label)}</button>'


def _serving(view: Mapping[str, Any]) -> str:
    models, outcomes = view["models"], view["outcomes"]
    rows = []
    for target in view["definition"]["targets"]:
        name = target["name"]
        served = models["targets"].get(name)
        outcome = outcomes.get(name) or {}
        progress = outcome.get("progress") or {}
        extra = "".join(
            f'<div class="mono">{_e(k)}: {_e(json.dumps(v) if not isinstance(v, str) else v)}</div>'
            for k, v in progress.items()
            if k != "traffic"
        )
        traffic = traffic_bar(progress["traffic"]) if isinstance(progress.get("traffic"), dict) else ""
        model = served["model"] if served else None
        rows.append(
            f'<tr data-target="{_e(name)}"><td>{_e(name)}</td><td>{_e(target["kind"])}</td>'
            f'<td class="mono" data-served="{_e(model["sha256"][:12] if model else "")}">'
            f"{_e((model.get('version') or model['sha256'][:12]) if model else 'nothing recorded')}</td>"
            f"<td>{_e(served['run_id']) if served else '-'}</td><td>{_when(served['since']) if served else '-'}</td>"
            f"<td>{_e(outcome.get('state') or '-')}{' after ' + _e(', '.join(outcome.get('steps') or [])) if outcome.get('steps') else ''}"
            f"{traffic}{extra}</td></tr>"
        )
    return (
        "<table><tr><th>target</th><th>kind</th><th>serves model</th><th>from run</th><th>since</th><th>last roll-out</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _plots(view: Mapping[str, Any]) -> str:
    gate = view["definition"]["gate"]
    candidates = view["models"]["candidates"]
    metrics: list[str] = list(dict.fromkeys([*gate["minimums"], *gate["not_worse_than_serving"]]))
    for candidate in candidates:
        metrics += [m for m in sorted(candidate["model"]["metrics"]) if m not in metrics]
    plots = []
    for metric in metrics[:MAX_PLOTS]:
        points = [
            {
                "run_id": c["run_id"],
                "finished_at": c["finished_at"],
                "status": c["status"],
                "champion": c["champion"],
                "value": c["model"]["metrics"][metric],
            }
            for c in candidates
            if metric in c["model"]["metrics"]
        ]
        plots.append(
            f"<figure><figcaption>{_e(metric)}</figcaption>{metric_plot(metric, points, gate['minimums'].get(metric))}</figure>"
        )
    legend = (
        '<p class="legend"><span><i style="background:var(--ok)"></i>rolled out</span><span><i style="background:var(--bad)"></i>'
        'rejected or failed</span><span><i style="background:var(--warn)"></i>partly, expired, cancelled</span>'
        '<span><i style="background:var(--dry)"></i>dry run</span><span>ringed: champion</span></p>'
    )
    return (
        legend + f'<div class="plots">{"".join(plots)}</div>'
        if plots
        else '<p class="empty">No model has been trained yet.</p>'
    )


def _models(view: Mapping[str, Any], api: str) -> str:
    models, name = view["models"], view["name"]
    rollback = f"{api}/pipelines/{quote(name)}/rollback"
    rows = []
    champion = models["champion"]
    for role, served in ([("champion", champion)] if champion else []) + [
        ("earlier champion", p) for p in models["previous"]
    ]:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(served["model"]["metrics"].items())[:4])
        button = (
            ""
            if role == "champion"
            else _action(
                "Roll back to this",
                rollback,
                {"runId": served["run_id"]},
                confirm="Click again to roll back",
                done="Roll-back queued.",
                action="rollback",
            )
        )
        rows.append(
            f'<tr data-model-run="{_e(served["run_id"])}"><td>{_e(role)}</td><td class="mono">{_e(served["model"]["sha256"][:12])}</td>'
            f"<td>{_e(served['run_id'])}</td><td>{_when(served['since'])}</td><td>{_e(metrics)}</td><td>{button}</td></tr>"
        )
    if not rows:
        return '<p class="muted">No champion yet: no run has updated every target.</p>'
    return (
        "<table><tr><th>role</th><th>model</th><th>run</th><th>since</th><th>metrics</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _decision(run: Mapping[str, Any]) -> str:
    parts = []
    decision = (run.get("approval") or {}).get("decision")
    if decision:
        done = {"approve": "approved", "reject": "rejected"}.get(decision["action"], decision["action"])
        parts.append(f"{_e(done)} by {_e(decision['by'])} at {_when(decision['at'])}")
    elif run.get("approval"):
        parts.append("no decision before " + _when(run["approval"]["expires_at"]))
    if run.get("cancel"):
        parts.append(f"cancelled by {_e(run['cancel']['by'])} at {_when(run['cancel']['at'])}")
    return "<br>".join(parts)


def _history(view: Mapping[str, Any], api: str) -> str:
    rollback = f"{api}/pipelines/{quote(view['name'])}/rollback"
    rows = []
    for run in view["runs"]:
        job = run.get("job") or {}
        duration = sum(float(v) for v in (run.get("phases") or {}).values())
        trigger = (
            run["trigger"]
            + (" (dry run)" if run.get("dry_run") else "")
            + (f" {run['action']} of {run['source_run']}" if run.get("action") == "promote" else "")
        )
        promotable = (
            run.get("model")
            and run["status"] in PROMOTABLE
            and run.get("action") == "retrain"
            and (run.get("gate") or {}).get("promote", True)
        )
        button = (
            _action(
                "Roll out",
                rollback,
                {"runId": run["run_id"]},
                confirm="Click again to roll out",
                done="Roll-out queued.",
                action="rollback",
            )
            if promotable
            else ""
        )
        model = run.get("model") or {}
        rows.append(
            f'<tr id="run-{_e(run["run_id"])}" data-run="{_e(run["run_id"])}" data-status="{_e(run["status"])}">'
            f'<td class="mono">{_e(run["run_id"])}</td><td>{_when(run["started_at"])}</td><td>{_e(trigger)}</td>'
            f"<td>{_badge(run['status'])}</td><td>{phase_bar(run.get('phases') or {})}</td>"
            f'<td class="mono">{_e((run.get("job_id") or "-")[:16])}</td><td>{_e(job.get("polls", "-"))}</td><td>{_seconds(duration)}</td>'
            f'<td class="mono">{_e((model.get("sha256") or "")[:12])}</td>'
            f'<td class="reason">{_e(run.get("reason") or "")}{"<br>" if run.get("reason") and _decision(run) else ""}{_decision(run)}</td>'
            f"<td>{button}</td></tr>"
        )
    more = (
        f'<p class="muted">Showing the newest {len(view["runs"])} of {view["run_count"]} runs; '
        f'<a data-page href="?limit={min(view["run_count"], 1000)}">show more</a>.</p>'
        if view["run_count"] > len(view["runs"])
        else ""
    )
    return (
        '<table class="history"><tr><th>run</th><th>started (UTC)</th><th>trigger</th><th>outcome</th><th>phases</th><th>job</th>'
        "<th>polls</th><th>duration</th><th>model</th><th>reason, decisions</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
        + more
        if rows
        else '<p class="muted">No run recorded yet.</p>'
    )


def pipeline_page(view: Mapping[str, Any], api: str) -> str:
    name = view["name"]
    definition = view["definition"]
    approval = definition["gate"]["approval"]
    gate = ", ".join(f"{k} >= {v:g}" for k, v in definition["gate"]["minimums"].items()) or "none"
    start = _action(
        "Start a run", f"{api}/pipelines/{quote(name)}/runs", {}, done="Run queued.", kind="primary", action="start"
    )
    dry = _action(
        "Dry run", f"{api}/pipelines/{quote(name)}/runs", {"dryRun": True}, done="Dry run queued.", action="start"
    )
    newest = view["runs"][0]["run_id"] if view["runs"] else ""
    content = (
        f'{_header(name, api, back=True)}<main><div id="message" class="message"></div>'
        f"<section><h2>Now</h2>{_schedule(view['schedule'])}{_last(view.get('last'))}"
        f'<p class="muted">Gate: {_e(gate)}; approval '
        f"{'required, within ' + _e(approval['timeout']) if approval['required'] else 'not required'}; "
        f"notified: {_e(', '.join(definition['notifications']) or 'nothing')}.</p>"
        f'<div data-live="{_e(name)}" data-newest="{_e(newest)}">{_in_progress(view["in_progress"])}</div>'
        f'<p>{start} {dry} <input id="comment" placeholder="comment for approve or reject" size="36"></p></section>'
        f"<section><h2>Serving</h2>{_serving(view)}</section>"
        f"<section><h2>Metrics of each model over time</h2>{_plots(view)}</section>"
        f"<section><h2>Champions</h2>{_models(view, api)}</section>"
        f"<section><h2>Runs</h2>{_history(view, api)}</section>"
        f'<p class="muted">Read from the run records, the run index and serving.json at {_e(view["generated_at"])}.</p></main>'
    )
    return _document(f"{name}: retraining", api, name, content)
