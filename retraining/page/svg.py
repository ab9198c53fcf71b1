"""Inline SVG for the page: metrics over time with the gate's minimums, a run's phases, a traffic split.

Pure functions from plain data to markup; every text is escaped. No script, no external resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

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


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / count for i in range(count + 1)]


def metric_plot(metric: str, points: Sequence[Mapping[str, Any]], minimum: float | None) -> str:
    """One metric over time: a point per candidate model (`finished_at`, `value`, `status`, `champion`, `run_id`),
    champions ringed, the gate's minimum as a dashed line."""
    values = [float(p["value"]) for p in points] + ([minimum] if minimum is not None else [])
    if not points:
        return f'<p class="empty">No model has reported {escape(metric)} yet.</p>'
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

    parts = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-metric="{escape(metric)}" '
        f'aria-label="{escape(metric)} of each model over time">'
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.3f}</text>'
        )
    for moment, anchor in ((first, "start"), (last, "end")):
        label = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")
        parts.append(f'<text class="axis" x="{x(moment):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{label}</text>')
    if minimum is not None:
        parts.append(
            f'<line class="minimum" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(minimum):.1f}" y2="{y(minimum):.1f}"/>'
            f'<text class="minimum-label" x="{WIDTH - RIGHT}" y="{y(minimum) - 4:.1f}" text-anchor="end">'
            f"gate minimum {minimum:g}</text>"
        )
    ordered = sorted(zip(times, points, strict=True), key=lambda item: item[0])
    champions = [(t, p) for t, p in ordered if p.get("champion")]
    if len(champions) > 1:
        path = " ".join(f"{x(t):.1f},{y(float(p['value'])):.1f}" for t, p in champions)
        parts.append(f'<polyline class="champion-line" points="{path}"/>')
    for moment, point in ordered:
        status = str(point.get("status"))
        css = "point " + STATUS_CLASS.get(status, "other") + (" champion" if point.get("champion") else "")
        title = f"run {point['run_id']}: {metric} {float(point['value']):.4f}, {status}" + (
            ", champion" if point.get("champion") else ""
        )
        radius = 5 if point.get("champion") else 3.5
        parts.append(
            f'<circle class="{css}" cx="{x(moment):.1f}" cy="{y(float(point["value"])):.1f}" r="{radius}" '
            f'data-run="{escape(str(point["run_id"]))}"><title>{escape(title)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def phase_bar(phases: Mapping[str, float], width: int = 180, height: int = 12) -> str:
    """A run's phases as one stacked bar, each phase's share of the run's time, titled with seconds."""
    total = sum(max(0.0, float(v)) for v in phases.values())
    if total <= 0:
        return ""
    parts = [
        f'<svg class="phases" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="phases">'
    ]
    offset = 0.0
    for name, seconds in phases.items():
        share = max(0.0, float(seconds)) / total * width
        if share <= 0:
            continue
        colour = PHASE_COLOURS.get(name, "#aab2bd")
        parts.append(
            f'<rect x="{offset:.2f}" y="0" width="{share:.2f}" height="{height}" fill="{colour}">'
            f"<title>{escape(name)}: {float(seconds):.1f} s</title></rect>"
        )
        offset += share
    parts.append("</svg>")
    return "".join(parts)


def traffic_bar(traffic: Mapping[str, Any], width: int = 160, height: int = 14) -> str:
    """A traffic split (`{"blue": 90, "green": 10}`) as a bar with each deployment's share."""
    shares = [
        (str(name), float(value)) for name, value in traffic.items() if isinstance(value, (int, float)) and value > 0
    ]
    total = sum(v for _, v in shares)
    if total <= 0:
        return ""
    parts = [
        f'<svg class="traffic" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="traffic">'
    ]
    offset = 0.0
    for index, (name, value) in enumerate(shares):
        share = value / total * width
        parts.append(
            f'<rect class="share s{index % 4}" x="{offset:.2f}" y="0" width="{share:.2f}" height="{height}">'
            f"<title>{escape(name)}: {value:g}%</title></rect>"
        )
        if share > 40:
            parts.append(f'<text x="{offset + 4:.1f}" y="{height - 3}">{escape(name)} {value:g}%</text>')
        offset += share
    parts.append("</svg>")
    return "".join(parts)
