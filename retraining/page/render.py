"""The status page as HTML, from the plain data of `retraining.page.data`: an overview of every pipeline, and one
page per pipeline (what runs now, what serves where since when, metrics over time, run history, actions).

This module turns a view into what the templates show (rows, buttons, plot geometry: plain values, no markup);
the templates in `templates/` write the HTML through Jinja2 with autoescaping (`engine.py`), so no value reaches
the page unescaped. The function key is never written into a page (the script reads it from the address). Links
and action URLs are relative to the app's `/api` prefix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..history import why_text
from .engine import render
from .svg import Bar, MetricPlot, drift_plot_of, metric_plot_of, number, phase_bar_of, traffic_bar_of

MAX_PLOTS = 4
PROMOTABLE = ("Succeeded", "PartiallyUpdated", "RolledBack", "DryRun")


@dataclass(frozen=True)
class Button:
    """An action the page's script posts to `url` (with `body` as JSON); `confirm` asks for a second click."""

    label: str
    url: str
    body: str | None = None
    confirm: str | None = None
    done: str = ""
    kind: str = ""
    action: str = ""


@dataclass(frozen=True)
class ServingRow:
    target: str
    kind: str
    sha: str
    model: str
    served: bool
    run_id: Any
    since: Any
    state: str
    steps: str | None
    traffic: Bar | None
    progress: list[tuple[str, str]]


@dataclass(frozen=True)
class ChampionRow:
    role: str
    sha: str
    run_id: Any
    since: Any
    metrics: str
    button: Button | None


@dataclass(frozen=True)
class Decision:
    """A decision on a run: `text`, then the moment `at`."""

    text: str
    at: Any


@dataclass(frozen=True)
class RunRow:
    run_id: Any
    status: Any
    started_at: Any
    trigger: str
    phases: Bar | None
    job_id: str
    polls: Any
    duration: str
    sha: str
    reason: Any
    decisions: list[Decision]
    button: Button | None
    why: str = ""  # why it trained or was skipped (its drift check), "" when it ran none


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"


def _button(label: str, url: str, body: Mapping[str, Any] | None = None, **options: str) -> Button:
    return Button(label, url, json.dumps(body) if body else None, **options)


def overview_page(pipelines: list[dict[str, Any]], api: str) -> str:
    return render(
        "overview.html",
        title="Retraining pipelines",
        heading="Retraining pipelines",
        api=api,
        pipeline="",
        back=False,
        pipelines=pipelines,
    )


def _serving(view: Mapping[str, Any]) -> list[ServingRow]:
    models, outcomes = view["models"], view["outcomes"]
    rows = []
    for target in view["definition"]["targets"]:
        name = target["name"]
        served = models["targets"].get(name)
        unsettled = (models.get("unsettled") or {}).get(name)
        outcome = outcomes.get(name) or {}
        progress = outcome.get("progress") or {}
        model = served["model"] if served else None
        if unsettled:  # a run left it in a state nobody knows: the last confirmed model may not be what serves
            served = unsettled | {"model": None}
            model = None
        rows.append(
            ServingRow(
                target=name,
                kind=target["kind"],
                sha=model["sha256"][:12] if model else "",
                model=(model.get("version") or model["sha256"][:12])
                if model
                else f"not known ({unsettled['state']})"
                if unsettled
                else "nothing recorded",
                served=bool(served),
                run_id=served["run_id"] if served else None,
                since=served["since"] if served else None,
                state=_text(outcome.get("state") or "-"),
                steps=", ".join(outcome.get("steps") or []) or None,
                traffic=traffic_bar_of(progress["traffic"]) if isinstance(progress.get("traffic"), dict) else None,
                progress=[
                    (_text(k), _text(json.dumps(v) if not isinstance(v, str) else v))
                    for k, v in progress.items()
                    if k != "traffic"
                ],
            )
        )
    return rows


def _plots(view: Mapping[str, Any]) -> list[MetricPlot]:
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
        plots.append(metric_plot_of(metric, points, gate["minimums"].get(metric)))
    return plots


def _drift_plots(view: Mapping[str, Any]) -> list[MetricPlot]:
    """PSI per run over time of the features that drifted most in the runs shown, the psi threshold drawn."""
    checked = [r for r in view["runs"] if isinstance(r.get("drift"), dict)]
    worst: dict[str, float] = {}  # each feature's largest finite PSI over the runs shown
    for run in checked:
        for f in run["drift"].get("features") or []:
            if isinstance(f, dict) and "name" in f:
                psi = f.get("psi")
                finite = float(psi) if isinstance(psi, int | float) and math.isfinite(psi) else 0.0
                worst[str(f["name"])] = max(worst.get(str(f["name"]), 0.0), finite)
    features = sorted(worst, key=lambda name: -worst[name])
    threshold = ((view["definition"].get("retrain_when") or {}).get("drift") or {}).get("psi")
    plots = []
    for feature in features[:MAX_PLOTS]:
        points = [
            {"run_id": r["run_id"], "finished_at": r["finished_at"], "status": r["status"], "value": f.get("psi")}
            for r in checked
            for f in r["drift"].get("features") or []
            if isinstance(f, dict) and f.get("name") == feature
        ]
        plots.append(drift_plot_of(feature, points, threshold))
    return [p for p in plots if p.points]


def _champions(view: Mapping[str, Any], api: str) -> list[ChampionRow]:
    models, name = view["models"], view["name"]
    rollback = f"{api}/pipelines/{quote(name)}/rollback"
    rows = []
    champion = models["champion"]
    for role, served in ([("champion", champion)] if champion else []) + [
        ("earlier champion", p) for p in models["previous"]
    ]:
        metrics = ", ".join(f"{k} {number(float(v), 4)}" for k, v in sorted(served["model"]["metrics"].items())[:4])
        button = (
            None
            if role == "champion"
            else _button(
                "Roll back to this",
                rollback,
                {"runId": served["run_id"]},
                confirm="Click again to roll back",
                done="Roll-back queued.",
                action="rollback",
            )
        )
        rows.append(
            ChampionRow(role, served["model"]["sha256"][:12], served["run_id"], served["since"], metrics, button)
        )
    return rows


def _decisions(run: Mapping[str, Any]) -> list[Decision]:
    decisions = []
    decision = (run.get("approval") or {}).get("decision")
    if decision:
        done = {"approve": "approved", "reject": "rejected"}.get(decision["action"], decision["action"])
        decisions.append(Decision(f"{_text(done)} by {_text(decision['by'])} at ", decision["at"]))
    elif run.get("approval"):
        decisions.append(Decision("no decision before ", run["approval"]["expires_at"]))
    if run.get("cancel"):
        decisions.append(Decision(f"cancelled by {_text(run['cancel']['by'])} at ", run["cancel"]["at"]))
    return decisions


def _runs(view: Mapping[str, Any], api: str) -> list[RunRow]:
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
            _button(
                "Roll out",
                rollback,
                {"runId": run["run_id"]},
                confirm="Click again to roll out",
                done="Roll-out queued.",
                action="rollback",
            )
            if promotable
            else None
        )
        rows.append(
            RunRow(
                run_id=run["run_id"],
                status=run["status"],
                started_at=run["started_at"],
                trigger=trigger,
                phases=phase_bar_of(run.get("phases") or {}),
                job_id=(run.get("job_id") or "-")[:16],
                polls=job.get("polls", "-"),
                duration=_seconds(duration),
                sha=((run.get("model") or {}).get("sha256") or "")[:12],
                reason=run.get("reason") or "",
                decisions=_decisions(run),
                button=button,
                why=why_text(run),
            )
        )
    return rows


def pipeline_page(view: Mapping[str, Any], api: str) -> str:
    name = view["name"]
    definition = view["definition"]
    runs = f"{api}/pipelines/{quote(name)}/runs"
    return render(
        "pipeline.html",
        title=f"{name}: retraining",
        heading=name,
        api=api,
        pipeline=name,
        back=True,
        view=view,
        gate=", ".join(f"{k} >= {v:g}" for k, v in definition["gate"]["minimums"].items()) or "none",
        approval=definition["gate"]["approval"],
        notified=", ".join(definition["notifications"]) or "nothing",
        newest=view["runs"][0]["run_id"] if view["runs"] else "",
        start=_button("Start a run", runs, {}, done="Run queued.", kind="primary", action="start"),
        dry_run=_button("Dry run", runs, {"dryRun": True}, done="Dry run queued.", action="start"),
        serving=_serving(view),
        plots=_plots(view),
        drift_plots=_drift_plots(view),
        retrain_when=json.dumps(view["definition"].get("retrain_when"))
        if view["definition"].get("retrain_when")
        else "",
        champions=_champions(view, api),
        runs=_runs(view, api),
        run_count=view["run_count"],
        generated_at=view["generated_at"],
    )
