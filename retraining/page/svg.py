"""Inline SVG for the page: metrics over time with the gate's minimums, a run's phases, a traffic split.

Each plot is computed here as plain geometry (numbers already formatted, texts as they are) and drawn by the
macros of `templates/svg.html`, which escape every text. No script, no external resource.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .engine import macro

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 30
PHASE_COLOURS = {
    "resolving": "#9aa5b1",
    "waiting_for_data": "#c3cfd9",
    "inspecting_data": "#7b8794",
    "checking_drift": "#52606d",
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
    "RolledBack": "warn",
    "Rejected": "bad",
    "Failed": "bad",
    "TimedOut": "bad",
    "NoData": "warn",
    "Expired": "warn",
    "Cancelled": "warn",
    "Interrupted": "warn",
    "Skipped": "skipped",
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


def _readable_moment(text: Any) -> bool:
    try:
        _moment(text)
    except (TypeError, ValueError, AttributeError, OverflowError, OSError):
        return False
    return True


def number(value: float, places: int = 3) -> str:
    """A value as a short text whatever its size: fixed places in the usual range, else scientific notation."""
    if not math.isfinite(value):
        return "not a number" if math.isnan(value) else "+inf" if value > 0 else "-inf"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.{places}f}"
    return f"{value:.{places}e}"


def _finite(value: Any) -> float | None:
    """`value` as a float if it is a finite number (a bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def _range(values: Sequence[float]) -> tuple[float, float]:
    """The plotted range: the finite values with 10% padding; never empty, never beyond the largest float.

    A single point or equal points get a padding of 5% of their size (0.05 at zero); so do points whose
    spread is lost in rounding at their size (one of 1e15 padded by 0.05 stays 1e15).
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    pad = (high / 2 - low / 2) * 0.2  # halves: the spread of -1e308 and 1e308 overflows, theirs does not
    if not (low - pad < low and high + pad > high):
        pad = max(abs(low), abs(high)) * 0.05 or 0.05
        if not (low - pad < low and high + pad > high):  # the smallest subnormals: 5% of them is nothing
            pad = 0.05
    return max(low - pad, -sys.float_info.max), min(high + pad, sys.float_info.max)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    return [min(max(low * (1 - i / count) + high * (i / count), low), high) for i in range(count + 1)]


def metric_plot_of(metric: str, points: Sequence[Mapping[str, Any]], minimum: float | None) -> MetricPlot:
    """One metric over time: a point per candidate model (`finished_at`, `value`, `status`, `champion`, `run_id`),
    champions ringed and joined, the gate's minimum as a dashed line.

    Any value plots: the scale spans the finite values (and the minimum); NaN and infinities, which no scale
    spans, are clipped to an edge (+inf the top, -inf and NaN the bottom) and marked (`clipped`, and their title).
    """
    if not points:
        return MetricPlot(metric, WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, [], [], None, None, [])
    values = [float(p["value"]) for p in points]
    low, high = _range(values + ([float(minimum)] if minimum is not None else []))
    half_span = high / 2 - low / 2
    times = [_moment(str(p["finished_at"])) for p in points]
    first, last = min(times), max(times)
    span = (last - first) or 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: float) -> float:
        return LEFT + (inner_w / 2 if last == first else (moment - first) / span * inner_w)

    def y(value: float) -> float:
        if math.isnan(value):
            return TOP + inner_h
        shown = min(max(value, low), high)
        return min(max(TOP + (high / 2 - shown / 2) / half_span * inner_h, TOP), TOP + inner_h)

    grid = [
        Rule(f"{y(tick):.1f}", Text(str(LEFT - 6), f"{y(tick) + 4:.1f}", "end", number(tick)))
        for tick in _ticks(low, high)
    ]
    dates = [
        Text(f"{x(moment):.1f}", str(HEIGHT - 8), anchor, datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d"))
        for moment, anchor in ((first, "start"), (last, "end"))
    ]
    line = None
    if minimum is not None and not math.isnan(minimum):
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
        value = float(point["value"])
        clipped = not math.isfinite(value)
        shown = number(value, 4) + (" (off the scale)" if math.isinf(value) else "")
        title = f"run {point['run_id']}: {metric} {shown}, {status}" + (", champion" if champion else "")
        drawn.append(
            Point(
                css="point "
                + STATUS_CLASS.get(status, "other")
                + (" champion" if champion else "")
                + (" clipped" if clipped else ""),
                cx=f"{x(moment):.1f}",
                cy=f"{y(value):.1f}",
                r="5" if champion else "3.5",
                run_id=str(point["run_id"]),
                title=title,
            )
        )
    return MetricPlot(metric, WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, grid, dates, line, path, drawn)


def drift_plot_of(feature: str, points: Sequence[Mapping[str, Any]], threshold: float | None) -> MetricPlot:
    """A feature's PSI per run over time (`finished_at`, `value`, `status`, `run_id`), the retrainWhen threshold drawn.

    Values that are not finite numbers (a hand-edited or damaged record) are left out, never a failure."""
    shown = [
        dict(p) | {"value": value, "champion": False}
        for p in points
        if (value := _finite(p.get("value"))) is not None and _readable_moment(p.get("finished_at"))
    ]
    limit = _finite(threshold)
    plot = metric_plot_of(f"PSI {feature}", shown, limit)
    if plot.minimum is not None and limit is not None:
        label = plot.minimum.label
        plot = replace(plot, minimum=replace(plot.minimum, label=replace(label, text=f"threshold {limit:g}")))
    return plot


def phase_bar_of(phases: Mapping[str, float], width: int = 180, height: int = 12) -> Bar | None:
    """A run's phases as one stacked bar, each phase's share of the run's time, titled with seconds (None: no time).

    Only finite, positive durations are drawn; shares are taken of the longest one first, so no sum overflows."""
    durations = [(str(name), seconds) for name, raw in phases.items() if (seconds := _finite(raw)) and seconds > 0]
    return _bar("phases", durations, width, height, lambda name, seconds: f"{name}: {number(seconds, 1)} s", None)


def traffic_bar_of(traffic: Mapping[str, Any], width: int = 160, height: int = 14) -> Bar | None:
    """A traffic split (`{"blue": 90, "green": 10}`) as a bar with each deployment's share (None: no traffic)."""
    shares = [(str(name), value) for name, raw in traffic.items() if (value := _finite(raw)) and value > 0]
    return _bar("traffic", shares, width, height, lambda name, value: f"{name}: {value:g}%", "share s")


def _bar(kind: str, parts: list[tuple[str, float]], width: int, height: int, title: Any, css: str | None) -> Bar | None:
    if not parts:
        return None
    largest = max(value for _, value in parts)
    total = sum(value / largest for _, value in parts)
    segments = []
    offset = 0.0
    for index, (name, value) in enumerate(parts):
        share = min(value / largest / total * width, width - offset)
        if share <= 0:
            continue
        text = title(name, value)
        if css is None:
            segments.append(Segment(f"{offset:.2f}", f"{share:.2f}", text, fill=PHASE_COLOURS.get(name, "#aab2bd")))
        else:
            label = Text(f"{offset + 4:.1f}", str(height - 3), "", f"{name} {value:g}%") if share > 40 else None
            segments.append(Segment(f"{offset:.2f}", f"{share:.2f}", text, css=f"{css}{index % 4}", label=label))
        offset += share
    return Bar(kind, kind, width, height, segments)


def metric_plot(metric: str, points: Sequence[Mapping[str, Any]], minimum: float | None) -> str:
    """`metric_plot_of` drawn as SVG (or a sentence saying there is nothing to plot)."""
    return macro("svg.html", "metric_plot", metric_plot_of(metric, points, minimum))


def phase_bar(phases: Mapping[str, float], width: int = 180, height: int = 12) -> str:
    """`phase_bar_of` drawn as SVG ("" when the run took no time)."""
    return macro("svg.html", "bar", phase_bar_of(phases, width, height))


def traffic_bar(traffic: Mapping[str, Any], width: int = 160, height: int = 14) -> str:
    """`traffic_bar_of` drawn as SVG ("" without traffic)."""
    return macro("svg.html", "bar", traffic_bar_of(traffic, width, height))
