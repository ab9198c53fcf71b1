"""The status page on plain data: next fire times, plots, escaping, progress of Azure ML targets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from croniter import croniter

from retraining.page.data import latest_outcomes
from retraining.page.render import overview_page, pipeline_page
from retraining.page.schedule import next_fire
from retraining.page.svg import metric_plot

SCHEDULES = [
    "0 0 3 * * 0",
    "0 */5 * * * *",
    "*/10 * * * * *",
    "0 30 9 * * Mon-Fri",
    "0 0 0 1 * *",
    "0 0 0 13 * 5",
    "5,35 0 4 * jan,jul sun",
    "0 0 0 29 2 *",
    "0 15 10-14/2 * * *",
    "0 0 0 * * 7",
]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_next_fire_agrees_with_croniter_which_devhost_fires_by(schedule: str) -> None:
    draw = random.Random(schedule)
    for _ in range(25):
        after = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw.randrange(0, 3 * 365 * 86400))
        assert next_fire(schedule, after) == croniter(schedule, after, second_at_beginning=True).get_next(datetime)


@pytest.mark.parametrize("schedule", ["0 0 3 * *", "0 0 25 * * *", "0 0 3 * * funday", "0 0 0 30 2 *", "0 */0 * * * *"])
def test_schedules_the_timer_would_refuse_are_value_errors(schedule: str) -> None:
    with pytest.raises(ValueError):
        next_fire(schedule, datetime(2026, 1, 1, tzinfo=UTC))


def run(run_id: str, status: str, auc: float, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "status": status,
        "action": "retrain",
        "trigger": "schedule",
        "dry_run": False,
        "source_run": None,
        "started_at": "2026-11-22T03:00:00.000000Z",
        "finished_at": f"2026-11-{run_id[6:8]}T03:10:00.000000Z",
        "reason": None,
        "phases": {"polling": 600.0, "updating": 5.0},
        "job_id": "job",
        "job": {"polls": 9},
        "gate": {"promote": True, "reasons": []},
        "model": {"sha256": run_id[-8:] * 8, "version": None, "size": 1, "metrics": {"AUC": auc}},
        "targets": [],
        "approval": None,
        "cancel": None,
    } | extra


def view(runs: list[dict[str, Any]]) -> dict[str, Any]:
    served = {"run_id": runs[0]["run_id"], "since": "2026-11-22T03:10:00Z", "model": runs[0]["model"]}
    candidates = [
        {
            "run_id": r["run_id"],
            "status": r["status"],
            "finished_at": r["finished_at"],
            "model": r["model"],
            "gate": r["gate"],
            "champion": r["status"] == "Succeeded",
        }
        for r in runs
    ]
    return {
        "name": "weekly-retrain",
        "schedule": {"expression": "0 0 3 * * 0", "next": "2026-11-29T03:00:00Z", "note": None},
        "last": runs[0],
        "in_progress": [],
        "runs": runs,
        "run_count": len(runs),
        "generated_at": "2026-11-22T04:00:00Z",
        "definition": {
            "gate": {
                "minimums": {"AUC": 0.7},
                "not_worse_than_serving": [],
                "approval": {"required": True, "timeout": "2.00:00:00"},
            },
            "targets": [{"name": "blue-green", "kind": "aml-online"}],
            "notifications": [],
            "data": "d/x.arff",
        },
        "models": {"champion": served, "previous": [], "targets": {"blue-green": served}, "candidates": candidates},
        "outcomes": latest_outcomes(runs),
    }


def test_the_pipeline_page_plots_each_model_with_the_gate_minimum_and_shows_a_canary() -> None:
    canary = {
        "target": "blue-green",
        "kind": "aml-online",
        "state": "updated",
        "error": None,
        "steps": ["deploy", "shift_10"],
        "progress": {"traffic": {"blue": 90, "green": 10}, "step": "shift_10"},
    }
    runs = [
        run("20261122T030000Z-00000003", "Succeeded", 0.97, targets=[canary]),
        run("20261115T030000Z-00000002", "Rejected", 0.61),
        run("20261108T030000Z-00000001", "Succeeded", 0.93),
    ]
    html = pipeline_page(view(runs), "/api")
    assert html.count('<circle class="point') == 3 and html.count("point ok champion") == 2 and "point bad" in html
    assert 'class="minimum"' in html and "gate minimum 0.7" in html
    assert "<title>green: 10%</title>" in html and "shift_10" in html  # the traffic split and the canary's step
    assert (
        'id="run-20261115T030000Z-00000002"' in html and html.count('data-action="rollback"') == 2
    )  # the rejected one is not offered


def test_decisions_read_as_people_say_them() -> None:
    decision = {"action": "reject", "by": "ana", "at": "2026-11-22T04:00:00Z", "comment": ""}
    runs = [
        run(
            "20261122T030000Z-00000003",
            "Rejected",
            0.9,
            approval={"asked_at": "x", "expires_at": "y", "decision": decision},
        )
    ]
    assert "rejected by ana" in pipeline_page(view(runs), "/api")


def test_hostile_text_is_escaped_everywhere() -> None:
    hostile = "<script>alert(1)</script>\"'"
    runs = [run("20261122T030000Z-00000003", "Failed", 0.5, reason=hostile, trigger_detail=hostile)]
    page = view(runs)
    page["definition"]["targets"] = [{"name": hostile, "kind": hostile}]
    html = pipeline_page(page, "/api")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    overview = overview_page(
        [{"name": hostile, "schedule": page["schedule"], "last": runs[0], "in_progress": []}], "/api"
    )
    assert "<script>alert" not in overview


def test_a_plot_without_points_says_so() -> None:
    assert "No model has reported AUC" in metric_plot("AUC", [], 0.7)
