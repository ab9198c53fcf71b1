"""The drift check of a run: stream its training data, compare it with the champion's, decide whether to train.

    {records}/{pipeline}/profiles/{run_id}.json     the profile of a run's training data (`retraining.drift`)

Every retrain run checks its data before submitting a job (`check`): it streams the blob once (4 MB
ranged reads, memory flat in its size), builds the data's profile, and, when the champion's run kept
a profile, compares the two (PSI, KS, the label's shift, growth in rows, schema). The pipeline's
`retrainWhen` then decides (`retraining.drift.decide`): a run trains when a condition holds, and is
skipped when none does. Without `retrainWhen` every run trains, and the scores are recorded for
information. A run that trains keeps its data's profile under its run id; the champion's is the
reference of the next check, so the reference follows the champion (a promotion or a rollback
included) with no bookkeeping of its own.

Schema differences: with `retrainWhen`, new data whose columns differ from the champion's (a kind
changed, a column missing or added: the data inspection names the latter first) fails the run with
the columns named, unless `gate.allowSchemaChange` accepts them (then the run trains). Without
`retrainWhen`, they are only recorded, as before this check existed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime

from .drift import (
    DriftReport,
    Profile,
    RetrainWhen,
    SchemaChangedError,
    SchemaDifferences,
    Source,
    build_profile,
    check,
    decide,
)
from .drift.policy import Decision
from .errors import ConfigError
from .models import BlobPath, DriftRecord, check_run_id, parse_moment
from .operations import Refusal, expected, lineage, pipeline
from .settings import Settings
from .storage import TrainingStorage

logger = logging.getLogger(__name__)

TOP_FEATURES = 5  # features kept in the record, most drifting first
INFORMATION_PSI = 0.25  # without retrainWhen, a PSI this large (the usual "large shift") sends drift_detected
PROFILE_LIMIT = 4 * 1024 * 1024  # a profile is a few KB a column


class Profiles:
    """The profiles of the runs' training data, kept beside their records."""

    def __init__(self, storage: TrainingStorage, container: str) -> None:
        self._storage = storage
        self._container = container

    def path(self, pipeline: str, run_id: str) -> BlobPath:
        check_run_id(run_id)
        return BlobPath(self._container, f"{pipeline}/profiles/{run_id}.json")

    def keep(self, pipeline: str, run_id: str, profile: Profile) -> str:
        """Keep a run's profile (a retry writes the same profile again: the sample is seeded)."""
        path = self.path(pipeline, run_id)
        self._storage.write_json(path, profile.to_dict())
        return str(path)

    def get(self, pipeline: str, run_id: str) -> Profile | None:
        """A run's profile; None when it kept none (a run older than the drift check) or it cannot be read."""
        raw = self._storage.read_json(self.path(pipeline, run_id), PROFILE_LIMIT)
        if raw is None:
            return None
        try:
            return Profile.from_dict(raw, "data profile")
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            logger.warning("pipeline %s: the profile of run %s cannot be read: %s", pipeline, run_id, exc)
            return None


def profiles(settings: Settings, storage: TrainingStorage) -> Profiles:
    return Profiles(storage, settings.run_records_container)


def check_drift(
    settings: Settings, storage: TrainingStorage, pipeline_name: str, run_id: str, data: BlobPath, now: datetime
) -> DriftRecord | Refusal:
    """The run's drift check: train or skip, with the scores; a Refusal names unreadable data or changed columns."""

    def go() -> DriftRecord:
        definition = pipeline(settings, pipeline_name)
        policy = definition.retrain_when
        kept = profiles(settings, storage)
        champion = lineage(settings, storage).serving(pipeline_name).champion
        reference = kept.get(pipeline_name, champion.run_id) if champion else None
        source = Source(storage.chunks(data), data.name, label=definition.label)
        report: DriftReport | None = None
        if reference is not None:
            report, profile = check(reference, source)
        else:
            profile = build_profile(source)
        age = now - parse_moment(champion.since, "serving.champion.since") if champion else None
        schema: tuple[str, ...] = ()
        try:
            decision = decide(policy, report, age)
        except SchemaChangedError:
            assert report is not None
            schema = report.schema.messages()
            if policy is not None and not definition.gate.allow_schema_change:
                raise
            decision = decide(policy, replace(report, schema=SchemaDifferences()), age)
            if policy is not None:
                decision = Decision(
                    True,
                    (f"the columns changed (gate.allowSchemaChange): {'; '.join(schema)}",),
                    decision.conditions,
                    decision.drifting,
                )
        detected, drifting = _detected(policy, report, decision)
        path = kept.keep(pipeline_name, run_id, profile) if decision.train else None
        record = DriftRecord(
            train=decision.train,
            reasons=decision.reasons,
            conditions=tuple(replace(c, score=_finite(c.score)) for c in decision.conditions),
            drifting=drifting,
            features=report.features[:TOP_FEATURES] if report else (),
            label_shift=_finite(report.label_shift) if report else None,
            growth=_finite(report.growth) if report else None,
            rows=profile.rows,
            reference_rows=reference.rows if reference else None,
            reference_run=champion.run_id if champion and reference else None,
            retrain_when=policy.to_definition() if policy else None,
            schema=schema,
            detected=detected,
            profile=path,
        )
        logger.info(
            "pipeline %s run %s: drift check: %s (%s)",
            pipeline_name,
            run_id,
            "train" if record.train else "skip",
            "; ".join(record.reasons),
        )
        return record

    return expected(go)  # unreadable data and changed columns (DataError) are refusals; storage hiccups are retried


def _detected(
    policy: RetrainWhen | None, report: DriftReport | None, decision: Decision
) -> tuple[bool, tuple[str, ...]]:
    """Whether a drift score reached its threshold (maxAge is no drift), and the drifting features.

    Without retrainWhen nothing has a threshold: a feature's PSI of INFORMATION_PSI or more is reported as drift,
    for information (the run trains anyway)."""
    if policy is None:
        drifting = tuple(f.name for f in report.features if f.psi >= INFORMATION_PSI) if report else ()
        return bool(drifting), drifting
    held = any(c.held and c.name != "maxAge" for c in decision.conditions)
    return held, decision.drifting


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None
