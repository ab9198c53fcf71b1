"""Rolling a model out to a scoring target, one bounded call at a time, journaled and reconciled first.

The orchestrator (`roll_out_target`) calls these through activities. Each call builds the target's
module with a context whose `intend` writes the journal (`retraining.journal`), so every change is
on record before it is sent. The first step of a rollout reconciles first: a rollout another run
left unfinished is undone (or, under `serving.interrupted: hold`, the rollout refuses), so a new
rollout never takes an orphan's traffic for its starting point.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .inputs import ReconcileCall, RolloutEnd, RolloutPlanInput, RolloutStepInput
from .journal import RolloutJournal
from .models import ModelArtifact
from .operations import Refusal, context, expected, lineage
from .services import scoring_target
from .services.base import ScoringTarget, ServiceContext, StepResult, StepStatus
from .settings import Settings
from .storage import TrainingStorage

logger = logging.getLogger(__name__)

RECONCILED = "reconciled"  # in the step state: this rollout has looked at (and undone) what an earlier one left


def steps(settings: Settings, storage: TrainingStorage, plan: RolloutPlanInput) -> list[dict[str, Any]] | Refusal:
    return expected(
        lambda: [
            s.to_dict()
            for s in scoring_target(context(settings, storage, plan.pipeline), plan.target).steps(plan.model)
        ]
    )


def _journal(settings: Settings, storage: TrainingStorage, pipeline: str, target: str) -> RolloutJournal:
    return RolloutJournal(storage, settings.run_records_container, pipeline, target)


def _target(
    base: ServiceContext, journal: RolloutJournal, name: str, run_id: str, model: ModelArtifact, step: str
) -> ScoringTarget:
    """The target's module; what it is about to send is journaled as `run_id`'s, at `step`."""

    def intend(state: Mapping[str, Any]) -> None:
        journal.write(run_id, model, step, state)

    return scoring_target(replace(base, intent=intend), name)


def run_step(settings: Settings, storage: TrainingStorage, call: RolloutStepInput) -> StepResult:
    """One call of one rollout step, sending nothing once the deadline has passed."""
    deadline = call.moment("deadline")
    if call.step.mutates and datetime.now(UTC) >= deadline:
        return StepResult.failed(
            f"the policy timeout passed before step {call.step.name!r} could start; nothing was sent", call.state
        )

    def go() -> StepResult:
        base = context(settings, storage, call.pipeline, deadline)
        journal = _journal(settings, storage, call.pipeline, call.target)
        if not call.state.get(RECONCILED):
            early = _reconcile(base, journal, call.pipeline, call.target, call.run_id, call.state)
            if early is not None:
                return early
        target = _target(base, journal, call.target, call.run_id, call.model, call.step.name)
        return target.run_step(call.step, call.model, {**call.state, RECONCILED: True})

    outcome = expected(go)
    return StepResult.failed(outcome.message, call.state) if isinstance(outcome, Refusal) else outcome


def roll_back(settings: Settings, storage: TrainingStorage, call: RolloutStepInput) -> StepResult:
    def go() -> StepResult:
        base = context(settings, storage, call.pipeline, call.moment("deadline"))
        journal = _journal(settings, storage, call.pipeline, call.target)
        target = _target(base, journal, call.target, call.run_id, call.model, "roll_back")
        return target.roll_back(call.model, call.state)

    outcome = expected(go)
    return StepResult.failed(outcome.message, call.state) if isinstance(outcome, Refusal) else outcome


def settle(settings: Settings, storage: TrainingStorage, end: RolloutEnd) -> bool:
    """The rollout of `end.run_id` ended with a known outcome: its journal entry goes."""
    return _journal(settings, storage, end.pipeline, end.target).settle(end.run_id)


def reconcile(settings: Settings, storage: TrainingStorage, call: ReconcileCall) -> StepResult:
    """One call of undoing what a rollout of another run left on `end.target` (the sweep's reconciliation):
    `done` when nothing is left (its progress says what was undone), `wait` while undoing."""

    def go() -> StepResult:
        base = context(settings, storage, call.pipeline)
        journal = _journal(settings, storage, call.pipeline, call.target)
        found = _reconcile(base, journal, call.pipeline, call.target, call.run_id, call.state)
        if found is None:
            return StepResult.done(call.state, reconciled="nothing left to undo")
        if found.status is StepStatus.WAIT and found.state.get(RECONCILED):
            return StepResult.done(found.state, **found.progress)
        return found

    outcome = expected(go)
    return StepResult.failed(outcome.message, call.state) if isinstance(outcome, Refusal) else outcome


def _reconcile(
    base: ServiceContext, journal: RolloutJournal, pipeline: str, target: str, run_id: str, given: Mapping[str, Any]
) -> StepResult | None:
    """None when nothing another run left needs undoing; else the step's answer while (or after) undoing it."""
    entry = journal.read()
    state = dict(given)
    if entry is None or entry.run_id == run_id:  # nothing left, or this rollout's own (a retried first step)
        return None
    served = lineage(base.settings, base.storage).serving(pipeline).targets.get(target)
    if served is not None and served.run_id == entry.run_id:  # that run finished and recorded it: settled
        journal.settle(entry.run_id)
        return None
    left = (
        f"the rollout of run {entry.run_id} (model version {entry.model.version or '-'}) ended without finishing, "
        f"after step {entry.step!r}"
    )
    if base.pipeline.serving.interrupted == "hold":
        return StepResult.failed(f"{left}; serving.interrupted is 'hold': nothing is sent until a person looks", state)
    undo = _target(base, journal, target, entry.run_id, entry.model, entry.step)
    result = undo.roll_back(entry.model, entry.state)
    if result.status is StepStatus.WAIT:
        journal.write(entry.run_id, entry.model, entry.step, result.state)
        return StepResult.wait(result.wait_s, state, reconciling=entry.run_id)
    if result.status is StepStatus.FAILED:
        return StepResult.failed(f"{left}, and could not be undone: {result.reason}", state)
    journal.settle(entry.run_id)
    logger.warning("pipeline %s target %s: undid %s", pipeline, target, left)
    return StepResult.wait(0.0, state | {RECONCILED: True}, reconciled=f"undid {left}")
