"""`gate.approval` and `notifications` in the definitions, the webhook's signed body, and run summaries."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest

from retraining.definitions import NOTIFY_EVENTS, parse_definitions
from retraining.errors import ConfigError
from retraining.history import summary_of
from retraining.models import Approval, Decision, DecisionAction, RunRequest, RunResult, RunStatus, Trigger, TriggerKind
from retraining.notify import body_of, links, signature, verify
from retraining.policy import plan_of

from .helpers import ROOT, SETTINGS, broken


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "pipelines.json").read_text())
    return data


def parsed(definitions: dict[str, Any], settings: dict[str, str] | None = None) -> Any:
    return parse_definitions(definitions, SETTINGS | (settings or {}), source="pipelines.json").get("weekly-retrain")


def test_approval_and_notifications_reach_the_plan(raw: dict[str, Any]) -> None:
    raw["pipelines"][0]["gate"]["approval"] = {"required": True, "timeout": "1.12:00:00"}
    raw["pipelines"][0]["notifications"] = {
        "webhook": "%HOOK%",
        "secretSetting": "HOOK_SECRET",
        "events": ["awaiting_approval"],
    }
    pipeline = parsed(raw, {"HOOK": "https://hooks.example.com/retrain"})
    assert pipeline.gate.approval.timeout == timedelta(days=1, hours=12)
    assert pipeline.notifications.webhook == "https://hooks.example.com/retrain"
    plan = plan_of(pipeline, None)
    assert plan.approval_s == 36 * 3600 and plan.notify == ("awaiting_approval",)
    assert "hooks.example.com" not in json.dumps(plan.to_dict())  # the webhook never travels in orchestration inputs


def test_without_them_nothing_waits_and_nothing_is_sent(raw: dict[str, Any]) -> None:
    plan = plan_of(parsed(raw), None)
    assert plan.approval_s == 0 and plan.notify == ()
    raw["pipelines"][0]["notifications"] = {"webhook": "https://h.example.com/x", "secretSetting": "S"}
    assert plan_of(parsed(raw), None).notify == NOTIFY_EVENTS  # every event unless some are chosen


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            "pipelines.0.gate.approval",
            {"required": "yes"},
            "pipelines[0].gate.approval.required: expected true or false",
        ),
        (
            "pipelines.0.gate.approval",
            {"timeout": "8.00:00:00"},
            "pipelines[0].gate.approval.timeout: must be at most 7.00:00:00",
        ),
        (
            "pipelines.0.gate.approval",
            {"timeout": "soon"},
            "pipelines[0].gate.approval.timeout: 'soon' is not a timespan",
        ),
        ("pipelines.0.gate.approval", {"who": "me"}, "pipelines[0].gate.approval: unknown field(s) ['who']"),
        (
            "pipelines.0.notifications",
            {"webhook": "ftp://x", "secretSetting": "S"},
            "pipelines[0].notifications.webhook: expected an http(s) URL",
        ),
        (
            "pipelines.0.notifications",
            {"webhook": "https://x.example.com", "secretSetting": "a b"},
            "pipelines[0].notifications.secretSetting: expected the name of an app setting",
        ),
        (
            "pipelines.0.notifications",
            {"webhook": "https://x.example.com", "secretSetting": "S", "events": ["always"]},
            "pipelines[0].notifications.events[0]: expected one of",
        ),
    ],
)
def test_invalid_fields_are_named(raw: dict[str, Any], path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_definitions(broken(raw, path, value), SETTINGS, source="pipelines.json")
    assert str(caught.value).startswith("pipelines.json: ") and message in str(caught.value)


def test_a_receiver_can_verify_the_signature_of_the_exact_body() -> None:
    payload = {
        "event": "run_not_succeeded",
        "pipeline": "weekly-retrain",
        "run_id": "20261122T030000Z-1a2b3c4d",
        "status": "Failed",
        "reason": "training job Failed",
        "at": "2026-11-22T03:10:00.000000Z",
        "trigger": "schedule",
        "targets": [],
        "secret_stuff": "never sent",
    }
    body = body_of(payload, "https://app.example.net/api/status")
    header = signature("s3cret", body)
    assert header == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert (
        verify("s3cret", body, header)
        and not verify("other", body, header)
        and not verify("s3cret", body + b" ", header)
    )
    message = json.loads(body)
    assert (
        "secret_stuff" not in message
        and message["links"]["page"]
        == "https://app.example.net/api/status/weekly-retrain#run-20261122T030000Z-1a2b3c4d"
    )
    assert links(None, "p", "r", "awaiting_approval") == {}
    assert (
        links("https://a/api/status", "p", "r", "awaiting_approval")["approve"]
        == "https://a/api/pipelines/p/runs/r/approve"
    )


def test_summaries_stay_small_whatever_the_record_holds() -> None:
    request = RunRequest("weekly-retrain", Trigger(TriggerKind.HTTP, "k", "2026-11-22T03:00:00Z", "x" * 1200))
    decision = Decision(DecisionAction.REJECT, "ana", "2026-11-22T04:00:00Z", "worse")
    result = RunResult(
        "20261122T030000Z-1a2b3c4d",
        "weekly-retrain",
        RunStatus.REJECTED,
        request,
        "2026-11-22T03:00:00Z",
        "2026-11-22T04:00:00Z",
        reason="r" * 5000,
        notes=tuple("n" * 900 for _ in range(100)),
        approval=Approval("2026-11-22T03:30:00Z", "2026-11-24T03:30:00Z", decision),
    )
    summary = summary_of(result)
    assert len(json.dumps(summary)) < 5000
    assert summary["approval"]["decision"]["by"] == "ana" and summary["status"] == "Rejected"
    assert RunResult.from_dict(result.to_dict()) == result  # the record round-trips with its decisions
