"""Pipeline definitions: the shipped file loads; every bad field is named with file and path."""

from __future__ import annotations

import copy
import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retraining.definitions import load_definitions, parse_definitions
from retraining.errors import ConfigError
from retraining.polling import PollPlanner
from retraining.settings import Settings
from retraining.timespans import format_timespan, occurrence, parse_timespan

from .helpers import ROOT, SETTINGS, broken


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "pipelines.json").read_text())
    return data


def test_shipped_definitions_load(raw: dict[str, Any]) -> None:
    definitions = load_definitions(ROOT / "pipelines.json", SETTINGS)
    pipeline = definitions.get("weekly-retrain")
    assert pipeline.policy.timeout == timedelta(hours=2)
    assert pipeline.external_data.retry_interval == timedelta(minutes=1)
    assert [t.kind for t in pipeline.targets] == ["classic", "arm"]
    assert pipeline.targets[0].policy.retry == 3 and pipeline.targets[0].policy.timeout == timedelta(hours=1)
    assert pipeline.training.ml_endpoint == SETTINGS["TRAINING_ML_ENDPOINT"]
    assert pipeline.targets[1].service_principal_key_setting == "ARM_SERVICE_PRINCIPAL_KEY"


def test_definitions_hold_no_secret_values(raw: dict[str, Any]) -> None:
    text = (ROOT / "pipelines.json").read_text().lower()
    for word in ('apikey"', "accountkey", "sig=", 'servicePrincipalKey"'.lower()):
        assert word not in text


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("pipelines.0.policy.timeout", "25:00:00", "pipelines[0].policy.timeout: '25:00:00' is out of range"),
        ("pipelines.0.policy.timeout", "2 hours", "pipelines[0].policy.timeout: '2 hours' is not a timespan"),
        ("pipelines.0.policy.concurrency", 2, "pipelines[0].policy.concurrency: only 1 is supported"),
        (
            "pipelines.0.training.apiKeySetting",
            "sk-live key!",
            "pipelines[0].training.apiKeySetting: expected the name of an app setting",
        ),
        ("pipelines.0.training.mlEndpoint", "ftp://x", "pipelines[0].training.mlEndpoint: expected an http(s) URL"),
        ("pipelines.0.targets.0.kind", "lambda", "pipelines[0].targets[0].kind: expected one of"),
        ("pipelines.0.serving", {"consistency": "some"}, "pipelines[0].serving.consistency: expected one of ['all'"),
        ("pipelines.0.serving", {"interrupted": 1}, "pipelines[0].serving.interrupted: expected one of ['restore'"),
        ("pipelines.0.serving", {"otherWriters": "fight"}, "pipelines[0].serving.otherWriters: expected one of"),
        ("pipelines.0.serving", {"consistent": "all"}, "pipelines[0].serving: unknown field(s) ['consistent']"),
        ("pipelines.0.targets.1.name", "endpoint2", "pipelines[0].targets[1].name: duplicate target name"),
        (
            "pipelines.0.data.container",
            "Bad_Container",
            "pipelines[0].data.container: 'Bad_Container' is not a valid blob container name",
        ),
        (
            "pipelines.0.data.blob",
            "../../etc/passwd",
            "pipelines[0].data.blob: '../../etc/passwd' is not a safe blob name",
        ),
        ("pipelines.0.gate.minimums", {"AUC": "high"}, "pipelines[0].gate.minimums.AUC: expected a number"),
        ("pipelines.0.surprise", True, "pipelines[0]: unknown field(s) ['surprise']"),
        ("pipelines.0.training", KeyError, "pipelines[0].training: expected an object"),
        ("pipelines.0.schedule.start", "2016-02-13", "pipelines[0].schedule.start: '2016-02-13' needs a time zone"),
        ("pipelines.0.polling.fraction", 2, "pipelines[0].polling.fraction: expected a number from 0.01 to 1, got 2"),
        ("pipelines.0.polling.fraction", "5%", "pipelines[0].polling.fraction: expected a number from 0.01 to 1"),
        (
            "pipelines.0.polling.fraction",
            0.005,
            "pipelines[0].polling.fraction: expected a number from 0.01 to 1, got 0.005",
        ),
        (
            "pipelines.0.polling.firstInterval",
            "00:10:00",
            "pipelines[0].polling.maxInterval: must be at least firstInterval (600 s), got 300 s",
        ),
        (
            "pipelines.0.polling.completionEvents",
            "yes",
            "pipelines[0].polling.completionEvents: expected true or false",
        ),
        (
            "pipelines.0.polling.completionEvents",
            True,
            "pipelines[0].polling.completionEvents: training kind 'studio-bes' does not announce",
        ),
    ],
)
def test_invalid_fields_are_named(raw: dict[str, Any], path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_definitions(broken(raw, path, value), SETTINGS, source="pipelines.json")
    assert str(caught.value).startswith("pipelines.json: ")
    assert message in str(caught.value)


def test_a_pipeline_whose_setting_is_unset_is_unavailable_and_stops_no_other(raw: dict[str, Any]) -> None:
    second = copy.deepcopy(raw["pipelines"][0]) | {"name": "other"}
    second["training"]["mlEndpoint"] = "%NOT_SET%"
    raw["pipelines"].append(second)
    definitions = parse_definitions(raw, SETTINGS, source="pipelines.json")
    assert list(definitions.pipelines) == ["weekly-retrain"]
    with pytest.raises(ConfigError) as caught:
        definitions.get("other")
    index = len(raw["pipelines"]) - 1
    assert (
        f"pipeline 'other' cannot run: pipelines.json: pipelines[{index}].training.mlEndpoint: refers to app setting 'NOT_SET'"
        in str(caught.value)
    )


def test_a_secret_pasted_instead_of_a_setting_name_is_not_echoed(raw: dict[str, Any]) -> None:
    pasted = "sooooooooooh3WvG1hBfKS2BNNcfwSO7hhY6dY98noLf/Q=="
    with pytest.raises(ConfigError) as caught:
        parse_definitions(broken(raw, "pipelines.0.training.apiKeySetting", pasted), SETTINGS, source="pipelines.json")
    assert "training.apiKeySetting" in str(caught.value) and pasted not in str(caught.value)


SECRET = "Sk\\3y..Secret/Value=="  # fails every check below: no URL, container, blob, id or name


@pytest.mark.parametrize(
    "path",
    [
        "pipelines.0.training.mlEndpoint",
        "pipelines.0.targets.0.updateResourceEndpoint",
        "pipelines.0.data.container",
        "pipelines.0.data.blob",
        "pipelines.0.output.container",
        "pipelines.1.workspace.resourceId",
        "pipelines.1.workspace.managementEndpoint",
        "pipelines.1.training.environment",
        "pipelines.1.training.modelName",
        "pipelines.1.targets.0.endpoint",
        "pipelines.1.training.dataInput",
    ],
)
def test_a_setting_referred_to_in_the_wrong_field_is_named_not_echoed(raw: dict[str, Any], path: str) -> None:
    """`%SCORING_API_KEY%` where a URL belongs: the error names the setting and never shows its value (it may be a secret)."""
    settings = SETTINGS | {
        "AML_WORKSPACE_ID": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/retrain-ws",
        "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.azure.com",
        "AML_TENANT": "t",
        "AML_CLIENT_ID": "c",
        "SCORING_API_KEY": SECRET,
    }
    assert raw["pipelines"][1]["name"] == "aml-retrain"
    with pytest.raises(ConfigError) as caught:
        parse_definitions(broken(raw, path, "%SCORING_API_KEY%"), settings, source="pipelines.json").get(
            raw["pipelines"][int(path.split(".")[1])]["name"]
        )
    message = str(caught.value)
    assert "app setting 'SCORING_API_KEY'" in message and SECRET not in message and "Secret/Value" not in message, (
        message
    )


def test_a_numeric_app_setting_that_holds_no_number_is_named_not_echoed() -> None:
    storage = {"TrainingStorage": "UseDevelopmentStorage=true"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(storage | {"RETRAIN_HTTP_TIMEOUT_SECONDS": SECRET})
    assert "RETRAIN_HTTP_TIMEOUT_SECONDS must be a number" in str(caught.value) and "Secret/Value" not in str(
        caught.value
    )
    with pytest.raises(ConfigError, match="RETRAIN_HTTP_TIMEOUT_SECONDS must be positive, got -5"):
        Settings.from_env(storage | {"RETRAIN_HTTP_TIMEOUT_SECONDS": "-5"})


def test_duplicate_pipeline_names_are_refused(raw: dict[str, Any]) -> None:
    raw["pipelines"].append(copy.deepcopy(raw["pipelines"][0]))
    with pytest.raises(
        ConfigError, match=rf"pipelines\[{len(raw['pipelines']) - 1}\].name: duplicate pipeline name 'weekly-retrain'"
    ):
        parse_definitions(raw, SETTINGS, source="f.json")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "defs.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"defs.json: not valid JSON"):
        load_definitions(bad, {})
    with pytest.raises(ConfigError, match=r"missing.json: cannot read"):
        load_definitions(tmp_path / "missing.json", {})


def test_active_period_and_blob_watch(raw: dict[str, Any]) -> None:
    raw["pipelines"][0]["schedule"] = {"start": "2026-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}
    pipeline = parse_definitions(raw, SETTINGS).get("weekly-retrain")
    assert not pipeline.is_active(datetime(2025, 12, 31, tzinfo=UTC))
    assert pipeline.is_active(datetime(2026, 3, 1, tzinfo=UTC))
    assert not pipeline.is_active(datetime(2026, 6, 1, tzinfo=UTC))
    assert pipeline.watches("labeledexamples", "week-47.arff")
    assert not pipeline.watches("labeledexamples", "week-47.csv")
    assert not pipeline.watches("trainingoutput", "x.arff")


@pytest.mark.parametrize(
    "text, seconds", [("02:00:00", 7200), ("1.00:00:00", 86400), ("00:00:00.25", 0.25), ("23:59:59", 86399)]
)
def test_timespans(text: str, seconds: float) -> None:
    assert parse_timespan(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["25:00:00", "00:60:00", "00:00:60", "-01:00:00", "1:2:3", "", None, 3600])
def test_bad_timespans(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


def test_timespan_round_trip() -> None:
    assert format_timespan(parse_timespan("1.02:03:04")) == "1.02:03:04"


MONDAY_SIX = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "now, status, expected",
    [
        (MONDAY_SIX.replace(second=59), {"Next": "2026-12-07T06:00:00+00:00"}, MONDAY_SIX),  # on time
        (MONDAY_SIX.replace(minute=1, second=2), {"Next": "2026-12-07T06:00:00+00:00"}, MONDAY_SIX),  # a minute late
        (MONDAY_SIX.replace(hour=9), {"Next": "2026-12-07T06:00:00Z"}, MONDAY_SIX),  # past due, hours later
        (MONDAY_SIX.replace(hour=9), {"Next": "2026-12-07T06:00:00"}, MONDAY_SIX),  # the host's local time is UTC
        (MONDAY_SIX.replace(hour=9), {"Next": "2026-12-07T07:00:00+01:00"}, MONDAY_SIX),
        (MONDAY_SIX - timedelta(seconds=0.5), {"Next": "2026-12-07T06:00:00Z"}, MONDAY_SIX),  # clock skew
        (MONDAY_SIX.replace(minute=7, second=30), None, MONDAY_SIX.replace(minute=7)),  # no monitor
        (MONDAY_SIX.replace(minute=7), {"Next": "2026-12-14T06:00:00Z"}, MONDAY_SIX.replace(minute=7)),  # manual
        (MONDAY_SIX.replace(minute=7), {"Next": "next monday"}, MONDAY_SIX.replace(minute=7)),
        (MONDAY_SIX.replace(minute=7), {"Next": 1765087200}, MONDAY_SIX.replace(minute=7)),
    ],
)
def test_a_timer_fire_stands_for_the_occurrence_the_host_was_running(
    now: datetime, status: dict[str, Any] | None, expected: datetime
) -> None:
    assert occurrence(now, status) == expected


def test_a_rejected_url_is_not_echoed(raw: dict[str, Any]) -> None:
    from retraining.definitions import parse_definitions

    raw["pipelines"][0]["training"]["mlEndpoint"] = "ftp://user:hunter2@host/path?sig=abc"
    with pytest.raises(ConfigError) as error:
        parse_definitions(raw, SETTINGS)
    assert "scheme 'ftp'" in str(error.value)
    assert not {"user", "hunter2", "sig", "abc", "path"} & set(re.findall(r"\w+", str(error.value)))


def test_serving_policy_defaults_to_consistent_targets_restored_and_yielding(raw: dict[str, Any]) -> None:
    from retraining.definitions import ServingPolicy, parse_definitions

    assert parse_definitions(raw, SETTINGS).pipelines["weekly-retrain"].serving == ServingPolicy(
        "all", "restore", "yield"
    )
    raw["pipelines"][0]["serving"] = {"consistency": "independent", "interrupted": "hold", "otherWriters": "revert"}
    assert parse_definitions(raw, SETTINGS).pipelines["weekly-retrain"].serving == ServingPolicy(
        "independent", "hold", "revert"
    )


def test_loaded_definitions_follow_a_changed_setting(tmp_path: Path) -> None:
    from retraining.operations import definitions
    from retraining.settings import Settings

    shipped = tmp_path / "pipelines.json"
    shipped.write_text((ROOT / "pipelines.json").read_text())
    base = SETTINGS | {"TrainingStorage": "UseDevelopmentStorage=true", "RETRAIN_PIPELINES_FILE": str(shipped)}
    first = definitions(Settings.from_env(base)).get("weekly-retrain").training.ml_endpoint
    moved = base | {"TRAINING_ML_ENDPOINT": "http://127.0.0.1:9/workspaces/w/services/s/jobs"}
    assert first == SETTINGS["TRAINING_ML_ENDPOINT"]
    assert (
        definitions(Settings.from_env(moved)).get("weekly-retrain").training.ml_endpoint
        == moved["TRAINING_ML_ENDPOINT"]
    )


# ---- polling: the loader and the monitor's planner agree ----------------------------------------------------


def _timespan(milliseconds: int) -> str:
    days, rest = divmod(milliseconds, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _with_polling(raw: dict[str, Any], polling: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(raw)
    copied["pipelines"] = [copied["pipelines"][0] | {"polling": polling}]
    return copied


@pytest.mark.parametrize(
    "polling, field",
    [
        ({"fraction": 0.005}, "fraction"),
        ({"firstInterval": "00:10:00", "maxInterval": "00:05:00"}, "maxInterval"),
    ],
)
def test_polling_the_monitor_would_refuse_is_refused_when_loading(
    raw: dict[str, Any], polling: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_definitions(_with_polling(raw, polling), SETTINGS, source="pipelines.json")
    assert str(caught.value).startswith(f"pipelines.json: pipelines[0].polling.{field}: ")


_MS = st.integers(min_value=1, max_value=3 * 86_400_000)


@settings(max_examples=300, deadline=None)
@given(first=_MS, longest=_MS, fraction=st.floats(min_value=0.0, max_value=1.5, allow_nan=False))
def test_what_the_loader_accepts_the_monitor_accepts_and_only_that(first: int, longest: int, fraction: float) -> None:
    raw: dict[str, Any] = json.loads((ROOT / "pipelines.json").read_text())
    polling = {"firstInterval": _timespan(first), "maxInterval": _timespan(longest), "fraction": fraction}
    try:
        loaded = parse_definitions(_with_polling(raw, polling), SETTINGS, source="pipelines.json")
    except ConfigError as refused:
        assert "pipelines[0].polling." in str(refused)
        with pytest.raises(ConfigError):  # what the loader refuses, the monitor refuses too
            PollPlanner((), first_s=first / 1000, max_s=longest / 1000, fraction=fraction)
        return
    policy = loaded.get("weekly-retrain").polling
    # What the monitor is given (retraining.policy: the plan's poll_first_s, poll_max_s, poll_fraction).
    first_s, max_s = policy.first_interval.total_seconds(), policy.max_interval.total_seconds()
    for history in ((), (60.0,), (600.0, 660.0, 540.0), (10.0, 1e5)):
        planner = PollPlanner(history, first_s=first_s, max_s=max_s, fraction=policy.fraction)
        for elapsed in (0.0, first_s, 30.0, 3600.0, 86400.0 * 5):
            for failing in (0, 1, 5):
                delay = planner.next_delay_s(elapsed, failing_in_a_row=failing)
                assert math.isfinite(delay) and delay > 0  # before the window one wait may pass max_s
