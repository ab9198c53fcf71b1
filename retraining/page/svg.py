"""Inline SVG for the page: metrics over time with the gate's minimums, a run's phases, a traffic split.

Each plot is computed here as plain geometry (numbers already formatted, texts as they are) and drawn by the
macros of `templates/svg.html`, which escape every text. No script, no external resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .engine import macro

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 30
PHASE_COLOURS = {
    "resolving": "#9aa5b1",
    "waiting_for_data": "#c3cfd9",
    "inspecting_data": "#7b8794",
    "submitting": "#5d9cec",
    "starting": "#4a89dc",
    "polling": "#3bafda",
    "collecting": "#37bc9b",
    "evaluating": "#8cc152",
    "awaiting_approval": "#f6bb42",
    "cancelling": "#e9573f",
    "updating": "#967adc",
    "recording": "#656d78",
}
STATUS_CLASS = {
    "Succeeded": "ok",
    "DryRun": "dry",
    "PartiallyUpdated": "warn",
    "Rejected": "bad",
    "Failed": "bad",
    "TimedOut": "bad",
    "NoData": "warn",
    "Expired": "warn",
    "Cancelled": "warn",
}


@dataclass(frozen=True)
class Text:
    """A label at (x, y), anchored at its start, middle or end."""

    x: str
    y: str
    anchor: str
    text: str


@dataclass(frozen=True)
class Rule:
    """A horizontal line across the plot at height y, with its label."""

    y: str
    label: Text


@dataclass(frozen=True)
class Point:
    css: str
    cx: str
    cy: str
    r: str
    run_id: str
    title: str


@dataclass(frozen=True)
class MetricPlot:
    """One metric over time; no points: nothing to plot (the macro says so)."""

    metric: str
    width: int
    height: int
    left: int
    right: int
    grid: list[Rule]
    dates: list[Text]
    minimum: Rule | None
    champions: str | None
    points: list[Point]


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar; `css` or `fill` colours it, `label` is written on it when it is wide enough."""

    x: str
    width: str
    title: str
    css: str | None = None
    fill: str | None = None
    label: Text | None = None


@dataclass(frozen=True)
class Bar:
    css: str
    label: str
    width: int
    height: int
    segments: list[Segment]


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / count for i in range(count + 1)]


def metric_plot_of(metric: str, points: Sequence[Mapping[str, Any]], minimum: float | None) -> MetricPlot:
    """One metric over time: a point per candidate model (`finished_at`, `value`, `status`, `champion`, `run_id`),
    champions ringed and joined, the gate's minimum as a dashed line."""
    if not points:
        return MetricPlot(metric, WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, [], [], None, None, [])
    values = [float(p["value"]) for p in points] + ([minimum] if minimum is not None else [])
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or 0.05
    low, high = low - pad, high + pad
    times = [_moment(str(p["finished_at"])) for p in points]
    first, last = min(times), max(times)
    span = (last - first) or 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: float) -> float:
        return LEFT + (inner_w / 2 if last == first else (moment - first) / span * inner_w)

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * inner_h

    grid = [
        Rule(f"{y(tick):.1f}", Text(str(LEFT - 6), f"{y(tick) + 4:.1f}", "end", f"{tick:.3f}"))
        for tick in _ticks(low, high)
    ]
    dates = [
        Text(f"{x(moment):.1f}", str(HEIGHT - 8), anchor, datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d"))
        for moment, anchor in ((first, "start"), (last, "end"))
    ]
    line = None
    if minimum is not None:
        line = Rule(
            f"{y(minimum):.1f}", Text(str(WIDTH - RIGHT), f"{y(minimum) - 4:.1f}", "end", f"gate minimum {minimum:g}")
        )
    ordered = sorted(zip(times, points, strict=True), key=lambda item: item[0])
    champions = [(t, p) for t, p in ordered if p.get("champion")]
    path = " ".join(f"{x(t):.1f},{y(float(p['value'])):.1f}" for t, p in champions) if len(champions) > 1 else None
    drawn = []
    for moment, point in ordered:
        status = str(point.get("status"))
        champion = bool(point.get("champion"))
        title = f"run {point['run_id']}: {metric} {float(point['value']):.4f}, {status}" + (
            ", champion" if champion else ""
        )
        drawn.append(
            Point(
                css="point " + STATUS_CLASS.get(status, "other") + (" champion" if champion else ""),
                cx=f"{x(moment):.1f}",
                cy=f"{y(float(point['value'])):.1f}",
                r="5" if champion else "3.5",
                run_id=str(point["run_id"]),
                title=title,
            )
        )
    return MetricPlot(metric, WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, grid, dates, line, path, drawn)


def phase_bar_of(phases: Mapping[str, float], width: int = 180, height: int = 12) -> Bar | None:
    """A run's phases as one stacked bar, each phase's share of the run's time, titled with seconds (None: no time)."""
    total = sum(max(0.0, float(v)) for v in phases.values())
    if total <= 0:
        return None
    segments = []
    offset = 0.0
    for name, seconds in phases.items():
        share = max(0.0, float(seconds)) / total * width
        if share <= 0:
            continue
        title = f"{name}: {float(seconds):.1f} s"
        segments.append(Segment(f"{offset:.2f}", f"{share:.2f}", title, fill=PHASE_COLOURS.get(name, "#aab2bd")))
        offset += share
    return Bar("phases", "phases", width, height, segments)


def traffic_bar_of(traffic: Mapping[str, Any], width: int = 160, height: int = 14) -> Bar | None:
    """A traffic split (`{"blue": 90, "green": 10}`) as a bar with each deployment's share (None: no traffic)."""
    shares = [
        (str(name), float(value)) for name, value in traffic.items() if isinstance(value, (int, float)) and value > 0
    ]
    total = sum(v for _, v in shares)
    if total <= 0:
        return None
    segments = []
    offset = 0.0
    for index, (name, value) in enumerate(shares):
        share = value / total * width
        label = Text(f"{offset + 4:.1f}", str(height - 3), "", f"{name} {value:g}%") if share > 40 else None
        segments.append(
            Segment(f"{offset:.2f}", f"{share:.2f}", f"{name}: {value:g}%", css=f"share s{index % 4}", label=label)
        )
        offset += share
    return Bar("traffic", "traffic", width, height, segments)


def metric_plot(metric: str, points: Sequence[Mapping[str, Any]], minimum: float | None) -> str:
    """`metric_plot_of` drawn as SVG (or a sentence saying there is nothing to plot)."""
    return macro("svg.html", "metric_plot", metric_plot_of(metric, points, minimum))


def phase_bar(phases: Mapping[str, float], width: int = 180, height: int = 12) -> str:
    """`phase_bar_of` drawn as SVG ("" when the run took no time)."""
    return macro("svg.html", "bar", phase_bar_of(phases, width, height))


def traffic_bar(traffic: Mapping[str, Any], width: int = 160, height: int = 14) -> str:
    """`traffic_bar_of` drawn as SVG ("" without traffic)."""
    return macro("svg.html", "bar", traffic_bar_of(traffic, width, height))
