"""The drift check wired in: `retrainWhen` in the definitions, the check's decision on a fake storage
(no policy, allowSchemaChange, maxAge without a profile, changed columns), the record and its summary, the page and
the CLI listing, with values that are not finite numbers."""

from __future__ import annotations

import copy
import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.adf_import import import_adf
from devhost.operate import runs_table
from retraining import drift_check
from retraining.definitions import NOTIFY_EVENTS, parse_definitions
from retraining.drift import RetrainWhen
from retraining.errors import ConfigError
from retraining.history import summary_of, why_text
from retraining.models import BlobPath, DriftRecord, RunRequest, RunResult, RunStatus, Trigger, TriggerKind
from retraining.operations import Refusal
from retraining.page.render import pipeline_page
from retraining.policy import plan_of
from retraining.settings import Settings
from retraining.storage import BlobInfo, ListedBlob

from .helpers import ROOT, SETTINGS, broken
from .test_page import run, view

RUN_ID = "20261122T030000Z-0a1b2c3d"
CHAMPION = "20261115T030000Z-00000001"
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "pipelines.json").read_text())
    return data


# ---- definitions ------------------------------------------------------------------------------------------------


def test_retrain_when_is_read_and_absent_means_every_run_trains(raw: dict[str, Any]) -> None:
    raw["pipelines"][0]["retrainWhen"] = {"drift": {"psi": 0.2, "ks": 0.1}, "labelShift": 0.1, "maxAge": "28.00:00:00"}
    definitions = parse_definitions(raw, SETTINGS, source="pipelines.json")
    plain = copy.deepcopy(raw["pipelines"][0]) | {"name": "plain"}
    del plain["retrainWhen"]
    raw["pipelines"] = [raw["pipelines"][0], plain]
    definitions = parse_definitions(raw, SETTINGS, source="pipelines.json")
    watched, plain = definitions.get("weekly-retrain"), definitions.get("plain")
    assert watched.retrain_when == RetrainWhen(0.2, 0.1, 0.1, None, 28 * 86400.0)
    assert plain.retrain_when is None
    assert plan_of(watched, None).retrain_when and not plan_of(plain, None).retrain_when


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"drift": {"psi": "0.2"}}, "pipelines.json: pipelines[0].retrainWhen.drift.psi: expected a number"),
        (
            {"drift": {"psi": 0.2}, "every": "week"},
            "pipelines.json: pipelines[0].retrainWhen: unknown field(s) ['every']",
        ),
        ({"maxAge": "soon"}, "pipelines.json: pipelines[0].retrainWhen.maxAge:"),
        ({}, "pipelines.json: pipelines[0].retrainWhen: give at least one of"),
        ("always", "pipelines.json: pipelines[0].retrainWhen: expected an object"),
    ],
)
def test_a_bad_retrain_when_is_named_with_its_path(raw: dict[str, Any], value: Any, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_definitions(broken(raw, "pipelines.0.retrainWhen", value), SETTINGS, source="pipelines.json")
    assert str(caught.value).startswith(named)


def test_drift_detected_is_an_event_a_webhook_may_ask_for(raw: dict[str, Any]) -> None:
    assert "drift_detected" in NOTIFY_EVENTS
    raw["pipelines"][0]["notifications"] = {
        "webhook": "https://hooks.example.com/retrain",
        "secretSetting": "HOOK_SECRET",
        "events": ["drift_detected"],
    }
    pipeline = parse_definitions(raw, SETTINGS).get("weekly-retrain")
    assert plan_of(pipeline, None).notify == ("drift_detected",)


def test_import_adf_output_keeps_retrain_when_absent() -> None:
    result = import_adf([ROOT / "tests" / "fixtures" / "adf" / "seed-classic"])
    assert all("retrainWhen" not in p for p in result.definition["pipelines"])


# ---- the check, on a fake storage ---------------------------------------------------------------------------------


class FakeStorage:
    """What the drift check uses of TrainingStorage, in memory."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, path: str, data: bytes | dict[str, Any]) -> None:
        self.blobs[path] = json.dumps(data).encode() if isinstance(data, dict) else data

    def info(self, path: BlobPath) -> BlobInfo | None:
        data = self.blobs.get(str(path))
        return None if data is None else BlobInfo(len(data), '"1"')

    def chunks(self, path: BlobPath) -> Any:
        stream = io.BytesIO(self.blobs[str(path)])
        while chunk := stream.read(7):  # tiny chunks: lines and cells split across them
            yield chunk

    def read_json(self, path: BlobPath, limit: int = 1 << 20) -> Any:
        data = self.blobs.get(str(path))
        return None if data is None else json.loads(data)

    def write_json(self, path: BlobPath, value: Any, **_: Any) -> str:
        self.put(str(path), value)
        return '"2"'

    def list(self, container: str, prefix: str) -> list[ListedBlob]:
        return [ListedBlob(k.split("/", 1)[1], "", {}) for k in self.blobs if k.startswith(f"{container}/{prefix}")]


def rows(shift: float = 0.0, n: int = 400) -> bytes:
    lines = ["age,size,class"] + [f"{20 + i % 50 + shift},{i % 7},{'yes' if i % 3 else 'no'}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def setup(
    tmp_path: Path, retrain_when: Any = None, *, allow_schema_change: bool = False
) -> tuple[Settings, FakeStorage]:
    raw = json.loads((ROOT / "pipelines.json").read_text())
    pipeline = copy.deepcopy(raw["pipelines"][0])
    pipeline["data"]["labelColumn"] = "class"
    if retrain_when is not None:
        pipeline["retrainWhen"] = retrain_when
    if allow_schema_change:
        pipeline["gate"]["allowSchemaChange"] = True
    file = tmp_path / "pipelines.json"
    file.write_text(json.dumps({"pipelines": [pipeline]}))
    settings = Settings.from_env(
        SETTINGS | {"TrainingStorage": "UseDevelopmentStorage=true", "RETRAIN_PIPELINES_FILE": str(file)}
    )
    return settings, FakeStorage()


def crown(storage: FakeStorage, data: bytes | None, since: datetime = NOW - timedelta(days=1)) -> None:
    """A champion trained a day ago, with the profile of `data` (None: it kept none)."""
    model = {"location": "out/m.ilearner", "size": 1, "sha256": "f" * 64}
    served = {"run_id": CHAMPION, "model": model, "since": since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    storage.put("runrecords/weekly-retrain/serving.json", {"champion": served, "targets": {}})
    if data is not None:
        storage.put("labeledexamples/old.csv", data)
        profile = drift_check.build_profile(drift_check.Source([data], "old.csv", label="class"))
        storage.put(f"runrecords/weekly-retrain/profiles/{CHAMPION}.json", profile.to_dict())


def checked(settings: Settings, storage: FakeStorage, data: bytes, name: str = "new.csv") -> DriftRecord | Refusal:
    storage.put(f"labeledexamples/{name}", data)
    return drift_check.check_drift(
        settings,
        storage,
        "weekly-retrain",
        RUN_ID,
        BlobPath("labeledexamples", name),
        NOW,  # type: ignore[arg-type]
    )


def test_without_retrain_when_the_scores_are_information_and_a_large_psi_is_detected(tmp_path: Path) -> None:
    settings, storage = setup(tmp_path)
    crown(storage, rows())
    found = checked(settings, storage, rows(shift=30))
    assert isinstance(found, DriftRecord) and found.train and found.retrain_when is None
    assert found.reasons == ("no retrainWhen: every run trains",)
    assert found.detected and found.drifting == ("age",) and found.features[0].name == "age"
    assert all(c.threshold is None for c in found.conditions) and found.reference_run == CHAMPION
    assert found.profile == f"runrecords/weekly-retrain/profiles/{RUN_ID}.json"  # kept: the run trains


def test_unchanged_data_is_skipped_and_keeps_no_profile(tmp_path: Path) -> None:
    settings, storage = setup(tmp_path, {"drift": {"psi": 0.2}, "newRows": 0.25})
    crown(storage, rows())
    found = checked(settings, storage, rows())
    assert isinstance(found, DriftRecord) and not found.train and not found.detected and found.profile is None
    assert f"runrecords/weekly-retrain/profiles/{RUN_ID}.json" not in storage.blobs


def test_max_age_alone_needs_no_profile(tmp_path: Path) -> None:
    settings, storage = setup(tmp_path, {"maxAge": "2.00:00:00"})
    crown(storage, None)
    young = checked(settings, storage, rows())
    assert isinstance(young, DriftRecord) and not young.train and young.reference_run is None
    crown(storage, None, since=NOW - timedelta(days=3))
    old = checked(settings, storage, rows())
    assert isinstance(old, DriftRecord) and old.train and not old.detected  # age is no drift
    assert old.reasons[0].startswith("champion's age in days 3 >= 2")


def test_a_changed_column_kind_is_refused_naming_it_unless_the_schema_may_change(tmp_path: Path) -> None:
    retyped = rows().replace(b"\n20.0,", b"\ntwenty,")
    assert retyped != rows()
    settings, storage = setup(tmp_path, {"drift": {"psi": 0.2}})
    crown(storage, rows())
    refused = checked(settings, storage, retyped)
    assert isinstance(refused, Refusal) and "column 'age' changed kind: numeric -> categorical" in refused.message

    settings, storage = setup(tmp_path, {"drift": {"psi": 0.2}}, allow_schema_change=True)
    crown(storage, rows())
    allowed = checked(settings, storage, retyped)
    assert isinstance(allowed, DriftRecord) and allowed.train
    assert allowed.reasons[0].startswith("the columns changed (gate.allowSchemaChange): column 'age' changed kind")
    assert allowed.schema == ("column 'age' changed kind: numeric -> categorical",)

    settings, storage = setup(tmp_path)  # no retrainWhen: recorded, as before the check existed
    crown(storage, rows())
    informed = checked(settings, storage, retyped)
    assert isinstance(informed, DriftRecord) and informed.train and informed.schema


def test_unreadable_data_is_a_refusal_naming_the_line(tmp_path: Path) -> None:
    settings, storage = setup(tmp_path, {"drift": {"psi": 0.2}})
    crown(storage, rows())
    refused = checked(settings, storage, b"age,size,class\n1,2,yes\n1,2\n")
    assert isinstance(refused, Refusal) and "new.csv: line 3" in refused.message


# ---- the record, its summary, the page and the CLI ------------------------------------------------------------


def drift(train: bool, psi: float, threshold: float | None = 0.2) -> dict[str, Any]:
    return {
        "train": train,
        "reasons": [f"PSI on 'age' {psi} {'>=' if train else '<'} 0.2"],
        "drifting": ["age"] if train else [],
        "features": [
            {"name": "age", "kind": "numeric", "psi": psi, "ks": 0.1, "tvd": 0.1},
            {"name": "size", "kind": "numeric", "psi": 0.01, "tvd": 0.0},
        ],
        "conditions": [
            {"name": "drift.psi", "score": psi, "threshold": threshold, "held": train, "detail": f"PSI on 'age' {psi}"}
        ],
        "label_shift": 0.0,
        "growth": 0.0,
        "reference_run": CHAMPION,
        "detected": train,
    }


def test_the_summary_says_why_and_the_record_reads_back() -> None:
    request = RunRequest("weekly-retrain", Trigger(TriggerKind.HTTP, "k", "2026-11-22T03:00:00Z"))
    record = DriftRecord.from_dict(drift(False, 0.01) | {"rows": 400, "reference_rows": 400}, "drift")
    result = RunResult(
        RUN_ID, "weekly-retrain", RunStatus.SKIPPED, request, "a", "b", "no condition held", drift=record
    )
    assert RunResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    summary = summary_of(result)
    assert summary["status"] == "Skipped" and summary["drift"]["conditions"][0]["threshold"] == 0.2
    assert why_text(summary) == "skipped: PSI on 'age' 0.01 < 0.2"
    assert why_text(summary_of(result.__class__(**{**result.__dict__, "drift": None}))) == ""


def test_the_page_plots_drift_with_its_threshold_and_says_why_whatever_the_values() -> None:
    runs = [
        run("20261122T030000Z-00000004", "Succeeded", 0.9, drift=drift(True, 0.41)),
        run("20261121T030000Z-00000003", "Skipped", 0.9, drift=drift(False, 0.02), model=None),
        run("20261120T030000Z-00000002", "Skipped", 0.9, drift=drift(False, math.nan), model=None),
        run("20261119T030000Z-00000001", "Succeeded", 0.9, drift=drift(True, math.inf, math.nan)),
        run("20261118T030000Z-00000005", "Succeeded", 0.9, drift=drift(True, 0.3) | {"features": [{"psi": 1}, "x"]}),
    ]
    runs[2]["finished_at"] = "not a moment"  # a damaged record: its point is left out, the page still renders
    shown = view([r for r in runs if r.get("model")]) | {"runs": runs, "run_count": len(runs)}
    shown["definition"]["retrain_when"] = {"drift": {"psi": 0.2}}
    html = pipeline_page(shown, "/api")
    assert 'data-metric="PSI age"' in html and "threshold 0.2" in html and 'data-metric="PSI size"' in html
    assert html.count('data-status="Skipped"') == 2 and "badge skipped" in html
    assert "skipped: PSI on &#39;age&#39; 0.02 &lt; 0.2" in html and "(drifting: age)" in html
    plots = html[html.index("Drift of the training data") : html.index("<h2>Champions")]
    assert plots.count('data-run="20261120T030000Z-00000002"') == 0  # NaN: left out
    assert plots.count('data-run="20261119T030000Z-00000001"') == 1  # inf PSI left out; its size PSI plotted
    assert "nan" not in plots.lower() and "inf" not in plots.lower()
    listing = runs_table({"in_progress": [], "runs": runs})
    assert "skipped: PSI on 'age' 0.02 < 0.2" in listing
