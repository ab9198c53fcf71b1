"""A run of the run queue that rolls out an earlier run's verified model: promote it, or roll back to it.

check the source run: its model must have passed its gate, unless the request forces it (recorded)
roll the model out to the chosen targets (all by default), in parallel, as a retrain would
record what serves; a model on every target becomes the champion the next gate compares with
write the run record (action "promote", with the source run)
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from activities.models import load_promotion
from activities.training import resolve_pipeline
from retraining.inputs import Promotion, PromotionLookup
from retraining.models import PipelinePlan, RunInput, RunResult, RunStatus

from ._common import call, input_of, refused
from ._run import RunProgress, recorded

PROMOTE_ORCHESTRATOR = "promote_model"

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=PROMOTE_ORCHESTRATOR)
def promote_model(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    return (yield from recorded(RunProgress(context, RunInput.from_dict(input_of(context))), _promote))


def _promote(run: RunProgress) -> Generator[Any, Any, RunResult]:
    context, request = run.context, run.run.request
    run.status("resolving", source_run=request.source_run)
    resolved = yield from call(context, resolve_pipeline, request)
    if (why := refused(resolved)) is not None:
        return run.finish(RunStatus.FAILED, f"the pipeline cannot run: {why}")
    plan = PipelinePlan.from_dict(resolved)
    run.notify_events = plan.notify
    if request.source_run is None:
        return run.finish(RunStatus.REJECTED, "a promotion names the run whose model to roll out (sourceRun)")
    found = yield from call(context, load_promotion, PromotionLookup(plan.name, request.source_run, request.force))
    if (why := refused(found)) is not None:
        return run.finish(RunStatus.REJECTED, why)
    chosen = Promotion.from_dict(found)
    model = chosen.model
    if not chosen.gate_passed:
        run.notes.append(
            f"forced: run {request.source_run}'s model had not passed its gate"
            + (f" (requested by {request.requested_by})" if request.requested_by else "")
        )
    wanted = set(request.targets)
    unknown = sorted(wanted - {t.name for t in plan.targets})
    if unknown:
        return run.finish(RunStatus.REJECTED, f"pipeline {plan.name!r} has no target(s) {unknown}", model=model)
    targets = tuple(t for t in plan.targets if not wanted or t.name in wanted)
    outcomes = yield from run.roll_out(plan, targets, model)
    status, reason = yield from run.conclude(plan, model, outcomes, champion_when_all=len(targets) == len(plan.targets))
    return run.finish(status, reason, model=model, targets=tuple(outcomes))
