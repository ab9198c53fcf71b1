"""The status page on plain data: next fire times, plots, escaping, progress of Azure ML targets, and that the
template engine is loaded only when a page is served."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from croniter import croniter
from markupsafe import escape

from retraining.page.assets import SCRIPT, STYLE
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


HOSTILE = [
    "<script>alert(1)</script>",
    '"onmouseover=alert(1) x="',
    "'",
    "&",
    "<script>alert(1)</script>\"onmouseover='&",
]
DATA_KEYED = {"metrics", "minimums", "traffic", "progress", "phases", "targets", "outcomes"}  # maps keyed by names
FIELDS = {"traffic"}  # a field of `progress`, not a name


def poisoned(value: Any, text: str, key: str | None = None) -> Any:
    """Every string of a view with `text` appended, names used as keys included; only the moments plotted stay."""
    if isinstance(value, str):
        return value if key == "finished_at" else value + text
    if isinstance(value, list):
        return [poisoned(v, text) for v in value]
    if isinstance(value, dict):
        return {
            (poisoned(k, text) if key in DATA_KEYED and k not in FIELDS else k): poisoned(v, text, k)
            for k, v in value.items()
        }
    return value


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, [name for name, _ in attrs]))


def assert_escaped(html: str, text: str) -> None:
    assert html.count(SCRIPT) == 1 and html.count(STYLE) == 1
    markup = html.replace(SCRIPT, "").replace(STYLE, "")  # the page's own script and style, written as they are
    assert text == "&" or text not in markup
    assert "'" not in markup and not re.search(r"&(?!(amp|lt|gt|quot|#34|#39|#x27);)", markup)
    parser = Tags()
    parser.feed(html)
    assert [tag for tag, _ in parser.tags].count("script") == 1
    assert not [(tag, names) for tag, names in parser.tags if any(n.startswith("on") for n in names)]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_value_reaches_either_page_unescaped(text: str) -> None:
    runs = [
        run(
            "20261122T030000Z-00000003",
            "Succeeded",
            0.97,
            reason="gate passed",
            targets=[
                {
                    "target": "blue-green",
                    "kind": "aml-online",
                    "state": "updated",
                    "error": "none",
                    "steps": ["deploy", "shift_10"],
                    "progress": {"traffic": {"blue": 90, "green": 10}, "step": "shift_10", "blob": "models/m.pkl"},
                }
            ],
            approval={
                "asked_at": "2026-11-22T03:05:00Z",
                "expires_at": "2026-11-24T03:05:00Z",
                "decision": {"action": "approve", "by": "ana", "at": "2026-11-22T04:00:00Z", "comment": "fine"},
            },
        ),
        run("20261115T030000Z-00000002", "Failed", 0.61, reason="job failed", cancel={"by": "bo", "at": "x"}),
        run("20261108T030000Z-00000001", "Succeeded", 0.93, action="promote", source_run="20261101T030000Z-0"),
    ]
    clean = view(runs)
    clean["definition"]["gate"]["not_worse_than_serving"] = ["F1"]
    clean["definition"]["notifications"] = ["run_failed"]
    clean["definition"]["data"] = "training/data.arff"
    clean["models"]["previous"] = [
        {"run_id": runs[2]["run_id"], "since": "2026-11-08T03:10:00Z", "model": runs[2]["model"]}
    ]
    clean["in_progress"] = [
        {"id": "req-1", "state": "running", "action": "retrain", "trigger": "manual", "run_id": "r1"}
    ]
    clean["schedule"]["note"] = "the schedule is disabled"
    hostile = poisoned(clean, text)
    for row in hostile["runs"]:  # what decides which buttons a run gets comes from enums, not from people
        row["status"], row["action"] = row["status"].removesuffix(text), row["action"].removesuffix(text)
    hostile["run_count"] = 500
    page = pipeline_page(hostile, "/api" + text)
    assert_escaped(page, text)
    assert page.count('data-action="rollback"') == 2 and "<circle" in page and "<title>blue" in page
    for name in ["weekly-retrain", "blue-green", "AUC", "20261115T030000Z-00000002", "job failed", "ana", "bo"]:
        assert str(escape(name + text)) in page, name
    overview = overview_page([hostile | {"last": hostile["runs"][1]}], "/api" + text)
    assert_escaped(overview, text)
    assert str(escape("weekly-retrain" + text)) in overview and str(escape("r1" + text)) in overview


def test_no_template_marks_a_value_safe() -> None:
    templates = Path(__file__).resolve().parents[2] / "retraining" / "page" / "templates"
    sources = [path.read_text(encoding="utf-8") for path in sorted(templates.glob("*.html"))]
    assert len(sources) >= 4
    assert not [s for s in sources if re.search(r"\|\s*safe\b|autoescape\s+false|Markup", s)]


def test_importing_the_app_does_not_import_the_template_engine() -> None:
    """A cold start imports function_app; Jinja2 is imported by the first page served, not before."""
    code = (
        "import sys, function_app\n"
        "before = sorted(m for m in sys.modules if m.partition('.')[0] == 'jinja2')\n"
        "from retraining.page.render import overview_page\n"
        "overview_page([], '/api')\n"
        "print(before, 'jinja2' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]


def test_a_target_a_run_left_unsettled_reads_not_known_not_its_last_confirmed_model() -> None:
    failed = {
        "target": "blue-green",
        "kind": "aml-online",
        "state": "rollback_failed",
        "error": "the rollback did not finish",
        "steps": ["deploy", "shift_50"],
        "progress": {"traffic": {"blue": 50, "green": 50}},
    }
    runs = [
        run("20261122T030000Z-00000003", "Failed", 0.97, targets=[failed]),
        run("20261108T030000Z-00000001", "Succeeded", 0.93),
    ]
    page = view(runs)
    served = page["models"]["targets"]["blue-green"] = {
        "run_id": runs[1]["run_id"],
        "since": "2026-11-08T03:10:00Z",
        "model": runs[1]["model"],
    }
    page["models"]["unsettled"] = {
        "blue-green": {"run_id": runs[0]["run_id"], "state": "rollback_failed", "since": "2026-11-22T03:10:00Z"}
    }
    html = pipeline_page(page, "/api")
    assert "not known (rollback_failed)" in html
    assert served["model"]["sha256"][:12] not in html.split("<h2>Serving</h2>")[1].split("</section>")[0]
