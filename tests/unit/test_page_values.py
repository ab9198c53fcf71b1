"""The page cannot break on data: any float a record may hold, NaN and infinities included,
a single point or equal points, renders; values off the plotted range are clipped to its edge and marked."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from retraining.page.render import overview_page, pipeline_page
from retraining.page.svg import metric_plot, metric_plot_of, phase_bar, phase_bar_of, traffic_bar, traffic_bar_of

from .test_page import run, view

FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, max_examples=150)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
HUGE = st.sampled_from([1e15, 1e16, 1e300, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -0.0])
VALUES = st.one_of(ANY_FLOAT, HUGE)
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")  # what every coordinate of the SVG must be


def points(values: list[float], champion: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"r{i}",
            "finished_at": f"2026-11-{1 + i % 28:02d}T03:10:00Z",
            "status": "Succeeded",
            "champion": champion,
            "value": value,
        }
        for i, value in enumerate(values)
    ]


def assert_drawable(svg: str) -> None:
    """Every coordinate and size is a finite number inside the picture, no text holds 'nan' or 'inf' as geometry."""
    for name, value in re.findall(r'\b(x|y|cx|cy|x1|x2|y1|y2|width|r)="([^"]*)"', svg):
        assert NUMBER.match(value), (name, value)
    for pair in re.findall(r'points="([^"]*)"', svg):
        for coordinate in pair.replace(",", " ").split():
            assert NUMBER.match(coordinate), coordinate


def assert_plot_geometry(metric_values: list[float], minimum: float | None) -> None:
    plot = metric_plot_of("AUC", points(metric_values), minimum)
    for point in plot.points:
        assert 0 <= float(point.cy) <= plot.height and 0 <= float(point.cx) <= plot.width
    for rule in plot.grid:
        assert 0 <= float(rule.y) <= plot.height
        assert len(rule.label.text) <= 12  # a tick label fits its margin, however large the value
    if plot.minimum is not None:
        assert 0 <= float(plot.minimum.y) <= plot.height
    clipped = [p for p in plot.points if "clipped" in p.css]
    assert len(clipped) == sum(1 for v in metric_values if not math.isfinite(v))


@FAST
@given(st.lists(VALUES, min_size=1, max_size=6), st.one_of(st.none(), VALUES))
def test_any_metric_values_plot_inside_the_picture(metric_values: list[float], minimum: float | None) -> None:
    assert_plot_geometry(metric_values, minimum)
    assert_drawable(metric_plot("AUC", points(metric_values), minimum))


@FAST
@example({"polling": math.inf, "updating": 5.0})
@example({"polling": 1e308, "updating": 1e308})
@given(st.dictionaries(st.sampled_from(["polling", "updating", "evaluating", "other"]), VALUES, max_size=4))
def test_any_phase_durations_draw_a_bar_or_nothing(phases: dict[str, float]) -> None:
    bar = phase_bar_of(phases)
    if bar is not None:
        assert sum(float(s.width) for s in bar.segments) <= bar.width + 0.1
    assert_drawable(phase_bar(phases))


@FAST
@example({"blue": math.inf, "green": 10})
@example({"blue": 1e308, "green": 1e308})
@example({"blue": 10**400, "green": 10})
@given(st.dictionaries(st.sampled_from(["blue", "green", "red"]), st.one_of(VALUES, st.integers()), max_size=3))
def test_any_traffic_split_draws_a_bar_or_nothing(traffic: dict[str, Any]) -> None:
    bar = traffic_bar_of(traffic)
    if bar is not None:
        assert sum(float(s.width) for s in bar.segments) <= bar.width + 0.1
    assert_drawable(traffic_bar(traffic))


@FAST
@given(st.lists(VALUES, min_size=1, max_size=4), VALUES, st.dictionaries(st.just("polling"), VALUES))
def test_both_pages_render_whatever_the_records_hold(
    metric_values: list[float], minimum: float, phases: dict[str, float]
) -> None:
    runs = [
        run(f"202611{20 - i:02d}T030000Z-0000000{i}", "Succeeded" if i % 2 else "Rejected", value, phases=phases)
        for i, value in enumerate(metric_values)
    ]
    runs[0]["targets"] = [
        {
            "target": "blue-green",
            "kind": "aml-online",
            "state": "updated",
            "error": None,
            "steps": ["deploy"],
            "progress": {"traffic": {"blue": minimum, "green": metric_values[0]}},
        }
    ]
    page = view(runs)
    page["definition"]["gate"]["minimums"] = {"AUC": minimum}
    page["models"]["previous"] = [page["models"]["champion"]]
    html = pipeline_page(page, "/api")
    assert html.count("<circle") == len(metric_values)
    assert_drawable(html.split("<svg", 1)[1] if "<svg" in html else "")
    assert "weekly-retrain" in overview_page([page], "/api")


def test_a_huge_single_metric_plots_in_the_middle() -> None:
    """1e15 and more: the padding of a single point was lost in rounding and the scale divided by zero."""
    for value in (1e15, 1e16, 1e308):
        plot = metric_plot_of("loss", points([value]), None)
        assert plot.points and abs(float(plot.points[0].cy) - (14 + (220 - 14 - 30) / 2)) < 1


def test_equal_points_and_a_single_point_render() -> None:
    assert "<circle" in metric_plot("AUC", points([0.9, 0.9, 0.9]), 0.9)
    assert "<circle" in metric_plot("AUC", points([0.9]), None)


def test_non_finite_values_are_clipped_to_the_edge_and_marked() -> None:
    plot = metric_plot_of("loss", points([0.2, 0.3, math.inf, -math.inf, math.nan]), None)
    top, bottom = 14.0, 220.0 - 30.0
    by_run = {p.run_id: p for p in plot.points}
    assert float(by_run["r2"].cy) == top and "clipped" in by_run["r2"].css and "off the scale" in by_run["r2"].title
    assert float(by_run["r3"].cy) == bottom and "clipped" in by_run["r3"].css
    assert "clipped" in by_run["r4"].css and "not a number" in by_run["r4"].title
    assert "clipped" not in by_run["r0"].css + by_run["r1"].css
    assert all(top <= float(rule.y) <= bottom for rule in plot.grid)
    assert "inf" not in " ".join(rule.label.text for rule in plot.grid)
