"""Sub-orchestration that rolls one model out to one scoring target and always returns its outcome.

The target's module plans the rollout as named steps (`retraining.services.base`); this runs them:

    plan the steps (retried; a plan that cannot be had changes nothing: `failed`)
    for each step: call it; `wait` -> durable timer, call again; `done` -> bake time, next step
    a best-effort step (cleanup) that fails is reported in the progress and skipped
    a step that raises (a transient failure) is retried with back-off (`retraining.retry`)
    the policy timeout bounds everything: a step that changes the target is never started after it,
        each call is raced against the deadline, and no request is sent once it has passed
    a failed step, or the deadline, rolls back what the steps changed (if the target can)

So the outcome is final when it is reported: `updated`, `failed` (nothing changed), `unconfirmed`
(an update was sent but not seen applied in time), `rolled_back`, `rollback_failed` (a step
failed and so did the rollback: the target may serve old and new), or `changed_by_another_writer`
(a step found a change the app did not make; under `serving.otherWriters: yield` it is left as it is). Nothing here raises to the
parent: an unexpected failure is reported as `failed` if nothing was sent yet, else `unknown`.
The parent is never held past a target's timeout, except by the rollback a failed canary needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities.rollout import plan_rollout, roll_back_target, run_rollout_step, settle_rollout
from retraining.inputs import RolloutEnd, RolloutInput, RolloutPlanInput, RolloutStepInput
from retraining.models import ModelArtifact, TargetOutcome, TargetPlan, TargetState
from retraining.retry import STORE_RETRY, Retry
from retraining.services.base import RolloutStep, StepResult, StepStatus

from ._common import ActivityFailed, call, failure_reason, input_of, iso, refused

ROLLOUT_ORCHESTRATOR = "roll_out_target"
ROLLBACK_ALLOWANCE = timedelta(minutes=30)  # how long a rollback may take after the deadline
STEP_GRACE = timedelta(seconds=2)  # a call in flight at the deadline may still report this long after it
ROLL_BACK = RolloutStep("roll_back", mutates=True)
UNSETTLED = (TargetState.ROLLBACK_FAILED, TargetState.UNKNOWN)  # the journal entry stays: the next rollout undoes it

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=ROLLOUT_ORCHESTRATOR)
def roll_out_target(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    given = RolloutInput.from_dict(input_of(context))
    rollout = _Rollout(context, given.pipeline, given.target, given.model, given.run_id)
    try:
        outcome = yield from rollout.execute()
    except Exception as exc:  # never raise to the parent: it waits for every target and reports each
        state = TargetState.UNKNOWN if rollout.changed else TargetState.FAILED
        outcome = rollout.outcome(state, f"the rollout failed unexpectedly: {failure_reason(exc)}")
    if (
        rollout.changed and outcome.state not in UNSETTLED
    ):  # else the journal keeps what undoes it, for the next rollout
        end = RolloutEnd(given.pipeline, given.target.name, given.run_id)
        with contextlib.suppress(ActivityFailed):  # else the next rollout finds the entry and undoes it again: harmless
            yield from call(context, settle_rollout, end, STORE_RETRY)
    return outcome.to_dict()


class _Rollout:
    def __init__(
        self,
        context: df.DurableOrchestrationContext,
        pipeline: str,
        target: TargetPlan,
        model: ModelArtifact,
        run_id: str,
    ) -> None:
        self.context = context
        self.run_id = run_id
        self.pipeline = pipeline
        self.target = target
        self.model = model
        self.started = context.current_utc_datetime
        self.deadline = self.started + timedelta(seconds=target.timeout_s)
        self.retry = Retry(attempts=target.retry + 1, first_s=target.retry_interval_s, deadline=self.deadline)
        self.state: dict[str, Any] = {}
        self.progress: dict[str, Any] = {}
        self.completed: list[str] = []
        self.changed = False  # a step that changes the target has been called
        self.yielded = False  # a step found a change the app did not make, and the policy is to yield

    def _show(self, step: str, **fields: Any) -> None:
        self.context.set_custom_status(
            {
                "target": self.target.name,
                "kind": self.target.kind,
                "step": step,
                "completed": list(self.completed),
                "progress": dict(self.progress),
                "elapsed_s": self._elapsed(),
                "deadline": iso(self.deadline),
                **fields,
            }
        )

    def _elapsed(self) -> float:
        return float(round((self.context.current_utc_datetime - self.started).total_seconds(), 3))

    def outcome(self, state: TargetState, error: str | None = None) -> TargetOutcome:
        return TargetOutcome(
            self.target.name,
            self.target.kind,
            state is TargetState.UPDATED,
            error,
            self._elapsed(),
            state,
            tuple(self.completed),
            dict(self.progress),
        )

    def execute(self) -> Generator[Any, Any, TargetOutcome]:
        context = self.context
        self._show("planning")
        try:
            planned = yield from call(
                context, plan_rollout, RolloutPlanInput(self.pipeline, self.target.name, self.model), self.retry
            )
        except ActivityFailed as unplanned:
            return self.outcome(TargetState.FAILED, f"the rollout could not be planned: {unplanned.reason}")
        if (why := refused(planned)) is not None:
            return self.outcome(TargetState.FAILED, why)
        for step in (RolloutStep.from_dict(s, f"step {i}") for i, s in enumerate(planned)):
            failure = yield from self._run(step, self.deadline, run_rollout_step)
            if self.yielded:  # another writer changed the target: left as it is, reported, never overwritten
                return self.outcome(TargetState.CHANGED_BY_ANOTHER_WRITER, failure)
            if failure is not None and step.best_effort:  # e.g. cleanup: reported, the rollout stands
                self.progress[f"{step.name}_error"] = failure
                continue
            if failure is not None:
                return (yield from self._fail(failure))
            self.completed.append(step.name)
            if step.bake_s:
                bake_until = context.current_utc_datetime + timedelta(seconds=step.bake_s)
                if bake_until > self.deadline:
                    why = f"the bake time after step {step.name!r} would end past the policy timeout"
                    return (yield from self._fail(why))
                self._show("baking", after=step.name, until=iso(bake_until))
                yield context.create_timer(bake_until)
        self._show("done")
        return self.outcome(TargetState.UPDATED)

    def _run(self, step: RolloutStep, deadline: datetime, activity: Any) -> Generator[Any, Any, str | None]:
        """Call one step until done; None, or why it failed."""
        context, name = self.context, step.name
        retry = self.retry.until(deadline)
        failures = 0
        while True:
            now = context.current_utc_datetime
            if now >= deadline:
                return f"the policy timeout of {self.target.timeout_s:.0f}s passed during step {name!r}"
            self._show(name)
            payload = RolloutStepInput(
                self.pipeline, self.target.name, step, self.model, iso(deadline), self.state, self.run_id
            )
            task = context.call_activity(activity, payload.to_dict())
            timer = context.create_timer(deadline + STEP_GRACE)
            winner = yield context.task_any([task, timer])  # a failed call wins too, with its exception as result
            if winner is timer:
                self.changed = self.changed or step.mutates  # it may have changed the target before the deadline
                return f"the policy timeout of {self.target.timeout_s:.0f}s passed while step {name!r} was running"
            timer.cancel()
            if isinstance(task.result, BaseException):  # a transient failure: retry within the deadline
                self.changed = self.changed or step.mutates  # unknown whether the request took effect
                failures += 1
                if retry.gives_up(failures, context.current_utc_datetime):
                    return f"step {name!r} failed: {failure_reason(task.result)}"
                yield context.create_timer(context.current_utc_datetime + timedelta(seconds=retry.delay_s(failures)))
                continue
            result = StepResult.from_dict(task.result, f"step {name!r} result")
            self.state = dict(result.state)
            self.progress.update(result.progress)
            if result.status is StepStatus.FAILED:  # refused: the step changed nothing
                return result.reason or f"step {name!r} failed"
            if result.status is StepStatus.YIELDED:
                self.yielded = True
                return result.reason or f"step {name!r}: the target was changed by another writer"
            self.changed = self.changed or step.mutates
            if result.status is StepStatus.DONE:
                return None
            wake = context.current_utc_datetime + timedelta(seconds=result.wait_s or 1.0)
            if wake >= deadline:
                return f"step {name!r} did not finish within the policy timeout of {self.target.timeout_s:.0f}s"
            self._show(name, waiting_until=iso(wake))
            yield context.create_timer(wake)

    def _fail(self, reason: str) -> Generator[Any, Any, TargetOutcome]:
        """End failed: roll back what changed, if the target can; say which state it is left in."""
        if not self.changed:
            return self.outcome(TargetState.FAILED, reason)
        self._show("rolling_back", reason=reason)
        rollback_deadline = max(self.deadline, self.context.current_utc_datetime) + ROLLBACK_ALLOWANCE
        failure = yield from self._run(ROLL_BACK, rollback_deadline, roll_back_target)
        if failure is not None:
            return self.outcome(TargetState.ROLLBACK_FAILED, f"{reason}; the rollback did not finish: {failure}")
        if self.state.get("rolled_back"):
            return self.outcome(TargetState.ROLLED_BACK, reason)
        return self.outcome(TargetState.UNCONFIRMED, reason)
