"""What the run orchestrations share: progress in custom status, the roll-out to every target, operators'
decisions, notifications, the record.

Custom status stays small (the Durable limit is 16 KB): phase, ids, times, and at most a few metrics.

Operators decide through the store (`retraining.decisions`) and wake the run with one event,
`RUN_SIGNAL`, that carries nothing: the run reads the store through an activity whenever it looks.
Notifications are delivered by their own orchestrations (`notify_webhook`): the run never waits on a webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from typing import Any

import azure.durable_functions as df

from activities.decisions import read_run_signals
from activities.models import load_champion, record_serving_model
from activities.notifications import send_notification
from activities.records import write_run_record
from retraining.decisions import RunSignals
from retraining.errors import ConfigError
from retraining.inputs import Notification, NotifiedTarget, RolloutInput, RunRef, ServingRecord
from retraining.instances import rollout_instance_id
from retraining.models import (
    Approval,
    Decision,
    ModelArtifact,
    PipelinePlan,
    RunInput,
    RunResult,
    RunStatus,
    TargetOutcome,
    TargetPlan,
    TargetState,
)
from retraining.retry import RECORD_RETRY, SIGNALS_RETRY, STORE_RETRY

from ._common import ActivityFailed, call, failure_reason, iso
from .roll_out_target import ROLLOUT_ORCHESTRATOR

STATUS_METRICS = 8  # metrics shown in custom status
RUN_SIGNAL = "run_signal"  # raised after a decision or cancel request is stored; carries nothing
OLD_MODEL = (TargetState.FAILED, TargetState.UNCONFIRMED, TargetState.ROLLED_BACK)
# a person must look at what the target serves: the app cannot say, or someone else changed it
NOT_KNOWN = (TargetState.ROLLBACK_FAILED, TargetState.UNKNOWN, TargetState.CHANGED_BY_ANOTHER_WRITER)


def metrics_summary(metrics: Mapping[str, float], wanted: tuple[str, ...] = ()) -> dict[str, float]:
    """A few metrics for custom status: the ones the gate looks at first, then the rest, up to STATUS_METRICS."""
    names = [m for m in wanted if m in metrics] + sorted(m for m in metrics if m not in wanted)
    return {name: metrics[name] for name in names[:STATUS_METRICS]}


class RunProgress:
    """State of one run; every method is replay-safe."""

    def __init__(self, context: df.DurableOrchestrationContext, run: RunInput) -> None:
        self.context = context
        self.run = run
        self.started = context.current_utc_datetime
        self.phases: dict[str, float] = {}
        self.notes: list[str] = []
        self._phase_started = self.started
        self.approval: Approval | None = None
        self.cancel: Decision | None = None
        self.notify_events: tuple[str, ...] = ()  # what the pipeline's webhook wants, once the plan is known
        self._status: dict[str, Any] = {
            "run_id": run.run_id,
            "request_id": run.request_id,
            "pipeline": run.request.pipeline,
            "action": run.request.action.value,
            "trigger": run.request.trigger.kind.value,
            "started_at": iso(self.started),
        }

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def status(self, phase: str, **fields: Any) -> None:
        now = self.context.current_utc_datetime
        previous = self._status.get("phase")
        if previous:
            self.phases[previous] = round(
                self.phases.get(previous, 0.0) + (now - self._phase_started).total_seconds(), 3
            )
        self._phase_started = now
        self._status.update(fields, phase=phase, elapsed_s=round((now - self.started).total_seconds(), 3))
        self.context.set_custom_status(dict(self._status))

    def finish(self, status: RunStatus, reason: str | None = None, **fields: Any) -> RunResult:
        self.status("recording", outcome=status.value)
        return RunResult(
            run_id=self.run_id,
            pipeline=self.run.request.pipeline,
            status=status,
            request=self.run.request,
            started_at=iso(self.started),
            finished_at=iso(self.context.current_utc_datetime),
            reason=reason,
            phases=dict(self.phases),
            request_id=self.run.request_id,
            superseded=self.run.superseded,
            notes=tuple(self.notes),
            approval=self.approval,
            cancel=self.cancel,
            **fields,
        )

    def signals(self) -> Generator[Any, Any, RunSignals]:
        """What operators decided about this run; nothing, if the store cannot be read now (the run looks again later)."""
        try:
            found = yield from call(
                self.context, read_run_signals, RunRef(self.run.request.pipeline, self.run_id), SIGNALS_RETRY
            )
        except ActivityFailed:
            return RunSignals()
        return RunSignals.from_dict(found)

    def cancelled(self) -> Generator[Any, Any, Decision | None]:
        """A phase boundary: the cancel request, if someone asked to cancel the run (kept for the record)."""
        self.cancel = (yield from self.signals()).cancel
        return self.cancel

    def notify(
        self, event: str, status: str, reason: str | None, targets: tuple[TargetOutcome, ...] = ()
    ) -> Generator[Any, Any, None]:
        """Tell the pipeline's webhook, if it wants `event`: its delivery runs on its own (`notify_webhook`) and
        writes its outcome beside the record; the run does not wait for it."""
        if event not in self.notify_events:
            return
        note = Notification(
            event,
            self.run.request.pipeline,
            self.run_id,
            status,
            reason,
            iso(self.context.current_utc_datetime),
            self.run.request.trigger.kind.value,
            tuple(NotifiedTarget(t.target, t.state.value if t.state else None, t.error) for t in targets),
        )
        try:  # starts the delivery's own orchestration: a slow or failing receiver never holds the run
            yield from call(self.context, send_notification, note, STORE_RETRY)
        except ActivityFailed as failure:
            self.notes.append(f"the {event} notification could not be sent: {failure.reason}")

    def roll_out(
        self, plan: PipelinePlan, targets: tuple[TargetPlan, ...], model: ModelArtifact
    ) -> Generator[Any, Any, list[TargetOutcome]]:
        """Roll the model out to the targets, wave by wave (each wave in parallel), and wait for every rollout to end.

        With consistent targets (`plan.consistent`), a wave starts only once every target of the one
        before is updated (the canaries go first); if a target fails, the targets that had moved are
        rolled back to the champion, and those not started are not started.
        """
        self.status("updating", targets=[t.name for t in targets])
        outcomes: dict[str, TargetOutcome] = {}
        for wave in sorted({t.wave for t in targets}):
            if plan.consistent and any(not o.updated for o in outcomes.values()):
                break
            ended = yield from self._rollouts(plan.name, [t for t in targets if t.wave == wave], model)
            outcomes |= {o.target: o for o in ended}
        failed = [o.target for o in outcomes.values() if not o.updated]
        for t in targets:
            if t.name not in outcomes:
                why = f"not rolled out: target(s) {', '.join(failed)} failed first (serving.consistency: all)"
                outcomes[t.name] = TargetOutcome(t.name, t.kind, False, why, state=TargetState.FAILED)
        moved = [t for t in targets if outcomes[t.name].updated]
        if plan.consistent and failed and moved:
            outcomes |= yield from self._back_to_champion(plan, moved, model, failed, outcomes)
        return [outcomes[t.name] for t in targets]

    def _back_to_champion(
        self,
        plan: PipelinePlan,
        moved: list[TargetPlan],
        model: ModelArtifact,
        failed: list[str],
        outcomes: Mapping[str, TargetOutcome],
    ) -> Generator[Any, Any, dict[str, TargetOutcome]]:
        """Roll the champion back out to the targets that moved; each keeps the outcome of what it now serves."""
        try:
            found = yield from call(self.context, load_champion, RunRef(plan.name, self.run_id), RECORD_RETRY)
        except ActivityFailed as failure:
            self.notes.append(f"targets were not sent back to the champion: it could not be read ({failure.reason})")
            return {}
        if found is None:
            self.notes.append("targets were not sent back: there is no champion yet")
            return {}
        champion = ModelArtifact.from_dict(found)
        if champion.sha256 == model.sha256:
            return {}
        self.status("restoring", targets=[t.name for t in moved])
        why = f"target(s) {', '.join(failed)} failed, so every target goes back to the champion (serving.consistency: all)"
        restored = yield from self._rollouts(plan.name, moved, champion, attempt="restore")
        changed: dict[str, TargetOutcome] = {}
        for back in restored:
            if back.updated:  # serves the champion again
                changed[back.target] = replace(
                    outcomes[back.target], updated=False, state=TargetState.ROLLED_BACK, error=why
                )
            elif back.state in NOT_KNOWN:
                changed[back.target] = back
            else:  # the champion could not be put back: it still serves the new model
                note = f"{why}; putting the champion back failed: {back.error}"
                changed[back.target] = replace(outcomes[back.target], error=note)
        return changed

    def _rollouts(
        self, pipeline: str, targets: list[TargetPlan], model: ModelArtifact, attempt: str = ""
    ) -> Generator[Any, Any, list[TargetOutcome]]:
        """Roll `model` out to `targets` in parallel, and wait for every rollout to end.

        Each rollout reports its own outcome and never fails; if its orchestration fails all the same
        (a bug, a non-determinism error after a redeploy, a termination), that target's outcome is
        `unknown`. A failed child never ends the wait early (SDK 1.x's `task_all` would), so the run
        never ends while one of its rollouts still changes a target.
        """
        context = self.context
        tasks = [
            context.call_sub_orchestrator(
                ROLLOUT_ORCHESTRATOR,
                RolloutInput(pipeline, t, model, self.run_id).to_dict(),
                rollout_instance_id(context.instance_id, t.name, attempt),
            )
            for t in targets
        ]
        outcomes: dict[int, TargetOutcome] = {}
        pending = list(range(len(tasks)))
        while pending:
            winner = yield context.task_any([tasks[i] for i in pending])
            index = next(i for i in pending if tasks[i] is winner)
            pending.remove(index)
            outcomes[index] = _rollout_outcome(targets[index], winner.result)
        return [outcomes[i] for i in range(len(tasks))]

    def conclude(
        self, plan: PipelinePlan, model: ModelArtifact, outcomes: list[TargetOutcome], *, champion_when_all: bool = True
    ) -> Generator[Any, Any, tuple[RunStatus, str | None]]:
        """The run's status from its targets' outcomes; record what now serves (and the champion)."""
        updated = [t.target for t in outcomes if t.updated]
        if not outcomes or len(updated) == len(outcomes):
            status, reason = RunStatus.SUCCEEDED, None
        elif updated:
            status, reason = (
                RunStatus.PARTIALLY_UPDATED,
                f"{len(outcomes) - len(updated)} of {len(outcomes)} targets were not updated",
            )
        elif plan.consistent and any(t.state is TargetState.ROLLED_BACK for t in outcomes):
            failed = [t.target for t in outcomes if t.state is not TargetState.ROLLED_BACK]
            status, reason = (
                RunStatus.ROLLED_BACK,
                (
                    f"target(s) {', '.join(failed) or '-'} failed; every target is back on the champion or was not changed"
                ),
            )
        else:
            status, reason = RunStatus.FAILED, "no target could be updated"
        unsettled = tuple(
            NotifiedTarget(t.target, t.state.value if t.state else None, t.error)
            for t in outcomes
            if t.state in NOT_KNOWN
        )
        if updated or unsettled or not outcomes:
            serving = ServingRecord(
                plan.name,
                self.run_id,
                model,
                tuple(updated),
                champion_when_all and status is RunStatus.SUCCEEDED,
                iso(self.context.current_utc_datetime),
                unsettled,
            )
            try:
                note = yield from call(self.context, record_serving_model, serving, RECORD_RETRY)
                if note:
                    self.notes.append(note)
            except ActivityFailed as failure:  # the targets were updated all the same: keep their outcomes
                self.notes.append(f"could not record the served model for the next gate: {failure.reason}")
        return status, reason

    def record(self, result: RunResult) -> Generator[Any, Any, RunResult]:
        """Notify what needs a person, then write the run record; the run's output is the result with the record's path."""
        if result.status not in (RunStatus.SUCCEEDED, RunStatus.DRY_RUN, RunStatus.SKIPPED):  # skipped: no failure
            yield from self.notify("run_not_succeeded", result.status.value, result.reason, result.targets)
        if any(t.state is TargetState.ROLLED_BACK for t in result.targets):
            yield from self.notify("rolled_back", result.status.value, result.reason, result.targets)
        if any(t.state in OLD_MODEL for t in result.targets):
            yield from self.notify("target_on_old_model", result.status.value, result.reason, result.targets)
        if any(t.state in NOT_KNOWN for t in result.targets):
            yield from self.notify("target_state_unknown", result.status.value, result.reason, result.targets)
        if any(t.state is TargetState.CHANGED_BY_ANOTHER_WRITER for t in result.targets):
            yield from self.notify("changed_by_another_writer", result.status.value, result.reason, result.targets)
        result = replace(result, notes=tuple(self.notes))
        try:
            path = yield from call(self.context, write_run_record, result, RECORD_RETRY)
        except ActivityFailed as failure:
            result = replace(result, notes=(*result.notes, f"the run record could not be written: {failure.reason}"))
            path = None
        final = replace(result, record=path)
        self.status("done", outcome=final.status.value, record=path)
        return final


def recorded(
    run: RunProgress, body: Callable[[RunProgress], Generator[Any, Any, RunResult]]
) -> Generator[Any, Any, dict[str, Any]]:
    """Run `body`; whatever fails, the run still ends with a record. The run's output: its result."""
    try:
        result = yield from body(run)
    except Exception as exc:
        result = run.finish(RunStatus.FAILED, f"unexpected failure: {failure_reason(exc)}")
    final = yield from run.record(result)
    return final.to_dict()


def _rollout_outcome(target: TargetPlan, result: Any) -> TargetOutcome:
    """A finished rollout's outcome; `unknown` when its orchestration failed instead of reporting one."""
    if isinstance(result, BaseException):
        return TargetOutcome(
            target.name,
            target.kind,
            False,
            f"the rollout ended without an outcome ({failure_reason(result)}); what the target serves is not known",
            state=TargetState.UNKNOWN,
        )
    try:
        return TargetOutcome.from_dict(result)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        return TargetOutcome(
            target.name,
            target.kind,
            False,
            f"the rollout reported no readable outcome ({exc})",
            state=TargetState.UNKNOWN,
        )
