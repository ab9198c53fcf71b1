"""When to retrain: a pipeline's `retrainWhen`, read from its definition, and the pure decision on a drift report.

    "retrainWhen": {"drift": {"psi": 0.2, "ks": 0.1}, "labelShift": 0.1, "newRows": 0.25, "maxAge": "28.00:00:00"}

Each condition holds when its score reaches its threshold (`>=`): `drift.psi` by any feature's PSI,
`drift.ks` by any numeric feature's KS statistic, `labelShift` by the label's total variation
distance, `newRows` by the growth in rows (`rows / champion's rows - 1`), `maxAge` by the champion's
age. A run trains when any condition holds and is skipped when none does. No `retrainWhen` means
always train (today's behaviour); so does having no champion or no champion profile to compare with.
A schema difference never skips: `decide` raises `SchemaChangedError` naming the columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..datasets import DataError
from ..errors import ConfigError
from ..payloads import Payload
from ..text import excerpt
from ..timespans import format_timespan, parse_timespan
from .compare import DriftReport

# a threshold's name in the definitions -> (lowest, excluded; highest, included)
_LIMITS: dict[str, tuple[float, float]] = {
    "drift.psi": (0.0, 10.0),
    "drift.ks": (0.0, 1.0),
    "labelShift": (0.0, 1.0),
    "newRows": (0.0, 100.0),
}


class SchemaChangedError(DataError):
    """The new data's columns differ from the champion's: never a silent skip."""


@dataclass(frozen=True)
class RetrainWhen(Payload):
    """A pipeline's retraining conditions; None for a condition it does not set."""

    psi: float | None = None
    ks: float | None = None
    label_shift: float | None = None
    new_rows: float | None = None
    max_age_s: float | None = None

    @property
    def max_age(self) -> timedelta | None:
        return None if self.max_age_s is None else timedelta(seconds=self.max_age_s)

    def to_definition(self) -> dict[str, Any]:
        """The definitions' camelCase form (what `parse_retrain_when` reads)."""
        out: dict[str, Any] = {}
        drift = {k: v for k, v in (("psi", self.psi), ("ks", self.ks)) if v is not None}
        if drift:
            out["drift"] = drift
        if self.label_shift is not None:
            out["labelShift"] = self.label_shift
        if self.new_rows is not None:
            out["newRows"] = self.new_rows
        if self.max_age is not None:
            out["maxAge"] = format_timespan(self.max_age)
        return out


def parse_retrain_when(raw: Any, where: str = "retrainWhen") -> RetrainWhen | None:
    """`raw` (a definition's `retrainWhen`, None when absent) checked; ConfigError naming every wrong field."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f'{where}: expected an object like {{"drift": {{"psi": 0.2}}}}, got {_shown(raw)}')
    errors: list[str] = []
    values: dict[str, float | None] = {}
    unknown = sorted(str(k) for k in raw if k not in ("drift", "labelShift", "newRows", "maxAge"))
    if unknown:
        errors.append(f"{where}: unknown field(s) {unknown}; allowed: drift, labelShift, newRows, maxAge")
    drift = raw.get("drift")
    if drift is not None:
        if not isinstance(drift, Mapping):
            errors.append(f'{where}.drift: expected an object like {{"psi": 0.2, "ks": 0.1}}, got {_shown(drift)}')
        else:
            extra = sorted(str(k) for k in drift if k not in ("psi", "ks"))
            if extra:
                errors.append(f"{where}.drift: unknown field(s) {extra}; allowed: psi, ks")
            if "psi" not in drift and "ks" not in drift:
                errors.append(f"{where}.drift: give psi, ks or both")
            for key in ("psi", "ks"):
                values[key] = _threshold(drift.get(key), f"drift.{key}", where, errors)
    values["label_shift"] = _threshold(raw.get("labelShift"), "labelShift", where, errors)
    values["new_rows"] = _threshold(raw.get("newRows"), "newRows", where, errors)
    max_age_s = None
    if raw.get("maxAge") is not None:
        try:
            age = parse_timespan(raw["maxAge"])
        except ValueError as exc:
            errors.append(f"{where}.maxAge: {exc}")
        else:
            if age <= timedelta(0):
                errors.append(f"{where}.maxAge: must be longer than 00:00:00")
            max_age_s = age.total_seconds()
    if not errors and not any(v is not None for v in values.values()) and max_age_s is None:
        errors.append(f"{where}: give at least one of drift, labelShift, newRows, maxAge (or leave retrainWhen out)")
    if errors:
        raise ConfigError("; ".join(errors))
    return RetrainWhen(values.get("psi"), values.get("ks"), values["label_shift"], values["new_rows"], max_age_s)


def _threshold(value: Any, name: str, where: str, errors: list[str]) -> float | None:
    if value is None:
        return None
    low, high = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        errors.append(f"{where}.{name}: expected a number in ({low:g}, {high:g}], got {_shown(value)}")
        return None
    return float(value)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return excerpt(value)
    text = repr(value)
    return text if len(text) <= 20 else text[:20] + "..."


@dataclass(frozen=True)
class Condition(Payload):
    """One condition of the policy held against its score."""

    name: str  # drift.psi, drift.ks, labelShift, newRows, maxAge (as in the definitions)
    score: float | None  # None: not measurable (no numeric feature, no champion age)
    threshold: float | None  # None: reported only (no retrainWhen)
    held: bool
    detail: str  # e.g. "PSI 0.31 on 'age' >= 0.2"


@dataclass(frozen=True)
class Decision(Payload):
    train: bool
    reasons: tuple[str, ...]  # why it trains (the conditions that held, or why always), or why it skips
    conditions: tuple[Condition, ...]  # every score with the threshold it was held to
    drifting: tuple[str, ...] = ()  # features whose PSI or KS reached its threshold, most drifting first


def decide(policy: RetrainWhen | None, report: DriftReport | None, champion_age: timedelta | None) -> Decision:
    """Train or skip, with the reasons. `report` None: no champion profile to compare with; `champion_age` None:
    no champion. Raises SchemaChangedError when the report has schema differences, whatever the policy."""
    if report is not None and report.schema:
        raise SchemaChangedError(
            "the data's columns differ from those the champion learned from: " + "; ".join(report.schema.messages())
        )
    conditions = _conditions(policy or RetrainWhen(), report, champion_age)
    drifting = _drifting(policy, report)
    if policy is None:
        return Decision(True, ("no retrainWhen: every run trains",), conditions, drifting)
    if champion_age is None:
        return Decision(True, ("no champion yet: train",), conditions, drifting)
    held = [c for c in conditions if c.held]
    if held:
        return Decision(True, tuple(c.detail for c in held), conditions, drifting)
    measures_data = any(t is not None for t in (policy.psi, policy.ks, policy.label_shift, policy.new_rows))
    if report is None and measures_data:
        return Decision(True, ("no profile of the champion's data to compare with: train",), conditions, drifting)
    return Decision(False, ("no condition held: " + "; ".join(c.detail for c in conditions),), conditions, drifting)


def _conditions(policy: RetrainWhen, report: DriftReport | None, age: timedelta | None) -> tuple[Condition, ...]:
    out: list[Condition] = []

    def add(name: str, score: float | None, threshold: float | None, what: str) -> None:
        held = score is not None and threshold is not None and score >= threshold
        shown = "n/a" if score is None else f"{score:.4g}"
        limit = "" if threshold is None else f" {'>=' if held else '<'} {threshold:g}"
        out.append(Condition(name, score, threshold, held, f"{what} {shown}{limit}"))

    if report is not None:
        worst = max(report.features, key=lambda f: f.psi, default=None)
        add("drift.psi", worst.psi if worst else None, policy.psi, f"PSI{f' on {worst.name!r}' if worst else ''}")
        numeric = [f for f in report.features if f.ks is not None]
        worst_ks = max(numeric, key=lambda f: f.ks or 0.0, default=None)
        add(
            "drift.ks",
            worst_ks.ks if worst_ks else None,
            policy.ks,
            f"KS{f' on {worst_ks.name!r}' if worst_ks else ''}",
        )
        add("labelShift", report.label_shift, policy.label_shift, "label shift (TVD)")
        add("newRows", report.growth, policy.new_rows, "growth in rows")
    if policy.max_age is not None or age is not None:
        days = None if age is None else age.total_seconds() / 86400
        limit = None if policy.max_age is None else policy.max_age.total_seconds() / 86400
        add("maxAge", days, limit, "champion's age in days")
    return tuple(out)


def _drifting(policy: RetrainWhen | None, report: DriftReport | None) -> tuple[str, ...]:
    if report is None or policy is None:
        return ()
    return tuple(
        f.name
        for f in report.features
        if (policy.psi is not None and f.psi >= policy.psi)
        or (policy.ks is not None and f.ks is not None and f.ks >= policy.ks)
    )
