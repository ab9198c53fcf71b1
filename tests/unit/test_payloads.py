"""Typed payloads at the joints: every activity's input is read only through its class, round trips,
names the wrong field, and still reads the shapes that orchestrations already in flight were given."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retraining import inputs
from retraining.errors import ConfigError
from retraining.inputs import (
    DataCheck,
    InspectedData,
    ModelCollection,
    QueueFinish,
    QueueInput,
    QueueTake,
    RolloutInput,
    RolloutStepInput,
    ServingRecord,
    TakenRequest,
)
from retraining.models import JobEnd, JobOutcome, MonitorInput, PipelinePlan, TargetState
from retraining.payloads import Payload

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "20261121T030000Z-0a1b2c3d"
MODEL = {"location": "out/model.ilearner", "size": 2048, "sha256": "f" * 64, "metrics": {"AUC": 0.97}}
TARGET = {"name": "endpoint2", "kind": "classic", "retry": 3, "retry_interval_s": 30.0, "timeout_s": 3600}
JOB = {"pipeline": "weekly-retrain", "run_id": RUN_ID, "job_id": "abc123", "outputs": {"model": "out/model.ilearner"}}

# The dicts the orchestrators wrote before their inputs were typed: a run started before an upgrade
# replays with exactly these, so each must still be read.
OLD_SHAPES: list[tuple[type[Payload], dict[str, Any]]] = [
    (QueueTake, {"pipeline": "weekly-retrain", "run_id": RUN_ID, "now": "2026-11-21T03:00:00.000000Z"}),
    (
        QueueFinish,
        {
            "pipeline": "weekly-retrain",
            "request_id": "a" * 32,
            "run_id": RUN_ID,
            "outcome": "Succeeded",
            "record": None,
            "now": "2026-11-21T04:00:00.000000Z",
        },
    ),
    (QueueInput, {"pipeline": "weekly-retrain", "fresh": False}),
    (DataCheck, {"data": "labeledexamples/labeledexamples.arff"}),
    (ModelCollection, {"job": JOB, "schema": {"features": ["a", "b"], "label": "class", "rejected": None}}),
    (
        ServingRecord,
        {
            "pipeline": "weekly-retrain",
            "run_id": RUN_ID,
            "model": MODEL,
            "targets": ["endpoint2"],
            "champion": True,
            "now": "2026-11-21T04:00:00.000000Z",
        },
    ),
    (RolloutInput, {"pipeline": "weekly-retrain", "run_id": RUN_ID, "target": TARGET, "model": MODEL}),
    (
        RolloutStepInput,
        {
            "pipeline": "weekly-retrain",
            "target": "endpoint2",
            "step": {"name": "roll_back", "mutates": True},
            "model": MODEL,
            "state": {"deployment": "green"},
            "deadline": "2026-11-21T04:00:00.000000Z",
        },
    ),
    (
        TakenRequest,
        {
            "request_id": "a" * 32,
            "request": {
                "pipeline": "weekly-retrain",
                "trigger": {"kind": "http", "key": "k", "at": "2026-11-21T03:00:00Z"},
            },
            "superseded": ["b" * 32],
        },
    ),
    (
        JobOutcome,
        {"status": "TimedOut", "details": "late", "polls": 9, "elapsed_s": 7200.0, "cancelled": True},
    ),
]


@pytest.mark.parametrize(("kind", "raw"), OLD_SHAPES, ids=[k.__name__ for k, _ in OLD_SHAPES])
def test_inputs_of_runs_in_flight_are_still_read_and_round_trip(kind: type[Payload], raw: dict[str, Any]) -> None:
    read = kind.from_dict(raw)
    assert kind.from_dict(read.to_dict()) == read


def test_a_wrong_field_is_named() -> None:
    with pytest.raises(ConfigError, match=r"rollout input\.target\.retry: expected int, got str"):
        RolloutInput.from_dict({"pipeline": "p", "target": TARGET | {"retry": "3"}, "model": MODEL})
    with pytest.raises(ConfigError, match=r"queue take: missing field 'now'"):
        QueueTake.from_dict({"pipeline": "p", "run_id": RUN_ID})
    with pytest.raises(ConfigError, match=r"job outcome\.status: 'Done' is not one of"):
        JobOutcome.from_dict({"status": "Done", "details": None, "polls": 1, "elapsed_s": 1.0})
    with pytest.raises(ConfigError, match=r"data check\.data: .* is not a safe blob path"):
        DataCheck.from_dict({"data": "labeledexamples/../secrets"})
    with pytest.raises(ConfigError, match=r"queue take: expected an object, got str"):
        QueueTake.from_dict("retrain-weekly")


def test_a_renamed_field_in_flight_is_refused_by_its_new_name() -> None:
    old = {"pipeline": "p", "run_id": RUN_ID, "when": "2026-11-21T03:00:00Z"}  # as if `now` had been `when`
    with pytest.raises(ConfigError, match="missing field 'now'"):
        QueueTake.from_dict(old)


def test_statuses_are_enums() -> None:
    outcome = JobOutcome.from_dict({"status": "Finished", "details": None, "polls": 1, "elapsed_s": 1})
    assert outcome.status is JobEnd.FINISHED and isinstance(outcome.elapsed_s, float)
    assert TargetState("rollback_failed") is TargetState.ROLLBACK_FAILED


def test_the_pipeline_plan_is_checked_not_splatted() -> None:
    plan = {
        "name": "weekly-retrain",
        "data": "labeledexamples/labeledexamples.arff",
        "data_retry_interval_s": 60.0,
        "data_retry_timeout_s": 600.0,
        "data_maximum_retry": 3,
        "timeout_s": 7200.0,
        "retry": 1,
        "retry_interval_s": 30.0,
        "poll_first_s": 5.0,
        "poll_max_s": 300.0,
        "poll_fraction": 0.05,
        "gate_enabled": True,
        "targets": [TARGET],
    }
    assert PipelinePlan.from_dict(plan).targets[0].timeout_s == 3600.0
    with pytest.raises(ConfigError, match=r"pipeline plan\.targets\[0\]: missing field 'kind'"):
        PipelinePlan.from_dict(plan | {"targets": [{k: v for k, v in TARGET.items() if k != "kind"}]})
    with pytest.raises(ConfigError, match=r"pipeline plan\.gate_enabled: expected bool, got str"):
        PipelinePlan.from_dict(plan | {"gate_enabled": "yes"})


@given(
    features=st.lists(st.text(max_size=12), max_size=5),
    label=st.one_of(st.none(), st.text(max_size=12)),
    rejected=st.one_of(st.none(), st.text(max_size=40)),
)
def test_inspected_data_round_trips(features: list[str], label: str | None, rejected: str | None) -> None:
    value = InspectedData(tuple(features), label, rejected)
    assert InspectedData.from_dict(value.to_dict()) == value


@given(st.one_of(st.integers(), st.text(), st.lists(st.integers()), st.none(), st.booleans()))
def test_anything_that_is_not_a_monitor_input_is_a_config_error(raw: Any) -> None:
    with pytest.raises(ConfigError):
        MonitorInput.from_dict(raw)


def test_every_input_class_is_a_frozen_payload() -> None:
    classes = [v for v in vars(inputs).values() if isinstance(v, type) and v.__module__ == inputs.__name__]
    payloads = [c for c in classes if issubclass(c, Payload) and not c.__name__.startswith("_")]
    assert len(payloads) >= 20
    for kind in payloads:
        assert kind.__dataclass_params__.frozen, kind.__name__  # type: ignore[attr-defined]


# ---- the rule: activities read only through the classes; orchestrators never build a dict input ----

ORCHESTRATION_CALLS = {"call", "call_activity", "call_sub_orchestrator", "continue_as_new", "start_new"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "payload":
            found.append(f"{path.name}:{node.lineno}: payload[...]")
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "get"
            and isinstance(node.value, ast.Name)
            and node.value.id == "payload"
        ):
            found.append(f"{path.name}:{node.lineno}: payload.get")
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ORCHESTRATION_CALLS and any(isinstance(a, ast.Dict | ast.DictComp) for a in node.args):
                found.append(f"{path.name}:{node.lineno}: a dict literal as the input of {name}")
    return found


def test_no_activity_reads_payload_keys_and_no_orchestrator_builds_a_dict_input() -> None:
    files = [
        *(ROOT / "activities").glob("*.py"),
        *(ROOT / "orchestrators").glob("*.py"),
        *(ROOT / "triggers").glob("*.py"),
    ]
    assert len(files) > 20
    assert [v for f in files for v in _violations(f)] == []


def test_the_rule_catches_what_it_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(payload, context):\n"
        "    x = payload['pipeline']\n"
        "    y = payload.get('run_id')\n"
        "    yield context.call_activity('a', {'pipeline': x})\n"
    )
    assert len(_violations(bad)) == 3


def test_a_cold_start_imports_no_heavy_library_it_does_not_need_yet() -> None:
    """`import function_app` (a cold start) loads neither requests nor the page's template engine nor numpy:
    each is imported where it is first used."""
    import subprocess
    import sys

    heavy = "{'requests', 'jinja2', 'numpy', 'pyarrow'}"
    code = f"import sys, function_app\nprint(sorted({{m.partition('.')[0] for m in sys.modules}} & {heavy}))\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
