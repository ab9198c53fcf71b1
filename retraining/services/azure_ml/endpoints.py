"""What the online and batch endpoint targets share: deployments of a registered model version, one operation at a time.

Each call does one bounded thing and reports `done`, `wait` or `failed` (`services.base`):
- a mutation is sent once per step (the state remembers it), then followed through its
  long-running operation until Succeeded or Failed, never slept on;
- a 409 (the endpoint or deployment is busy with another operation) or a 429 is a `wait` of the
  service's Retry-After, counted in the progress as `conflicts`;
- the endpoint as it was before the rollout is kept in the state, so a rollback restores it.

A deployment is named after the model version it serves (`{model}-v{version}`); a deployment that
already serves that version (a kept one, on a rollback) is used as it is, and is not deleted by a
rollback since this rollout did not create it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ...definitions.azure_ml import AmlEndpointTarget
from ...errors import ConfigError, ServiceError, TransientServiceError
from ...models import ModelArtifact
from ..base import RolloutStep, ServiceContext, StepResult, StepStatus, service_client
from .workspace import Operation, WorkspaceClient, credential_of, next_look, properties, wait_hint

TERMINAL = ("Succeeded", "Failed", "Canceled")
PIPELINE_TAG = "retrain.pipeline"  # on every deployment a rollout creates: cleanup deletes only those
BUSY_STATUSES = (409, 429)


def deployment_name(model: str, version: str) -> str:
    """`{model}-v{version}` as a deployment name: letters, digits and dashes, beginning with a letter, at most 32 characters."""
    suffix = f"-v{re.sub(r'[^a-z0-9]+', '-', version.lower()).strip('-')}"
    stem = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "model"
    if not stem[0].isalpha():
        stem = "m" + stem
    return (stem[: 32 - len(suffix)].rstrip("-") + suffix)[:32]


def another_writers_change(seen: Mapping[str, Any], app_set: Mapping[str, Any]) -> dict[str, Any]:
    """What another writer changed: what the endpoint shows, when that was seen, and what the app had set."""
    return {
        "seen": dict(seen),
        "seen_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "app_set": dict(app_set),
    }


def reverted(result: StepResult, change: Mapping[str, Any], *, step_again: bool = False) -> StepResult:
    """`result` of putting back what the app set, reporting the change it undid (`serving.otherWriters: revert`).
    `step_again`: the revert came before the step, so once it is done the step itself runs on the next call."""
    shown = {**result.progress, "changed_by_another_writer": {**change, "reverted": True}}
    if step_again and result.status is StepStatus.DONE:
        return StepResult.wait(0.0, result.state, **shown)
    return replace(result, progress=shown)


class EndpointTarget:
    """A scoring target on an Azure ML endpoint (online or batch); subclasses add their own steps."""

    collection = ""  # onlineEndpoints | batchEndpoints

    def __init__(self, context: ServiceContext, target_name: str) -> None:
        self.context = context
        self.target = context.pipeline.target(target_name)
        if not isinstance(self.target, AmlEndpointTarget):
            raise ConfigError(f"target {target_name!r} is not an Azure ML endpoint")
        self.config: AmlEndpointTarget = self.target
        self.client = WorkspaceClient(
            self.config.workspace,
            credential_of(self.config.workspace, context.settings),
            service_client(context, f"Azure ML endpoint {self.config.endpoint}", max_retry_after_s=5.0),
        )

    # ---- helpers --------------------------------------------------------------------------------

    def model_id(self, model: ModelArtifact) -> str:
        if model.version is None:
            raise ConfigError("the model has no registry version: only registered models can be deployed to Azure ML")
        return self.config.workspace.asset_id("models", self.config.model_name, model.version)

    def endpoint(self) -> dict[str, Any]:
        found = self.client.get(self.collection, self.config.endpoint)
        if found is None:
            raise ConfigError(f"endpoint {self.config.endpoint!r} does not exist in the workspace")
        return found

    def deployments(self) -> list[dict[str, Any]]:
        body = self.client.get(self.collection, self.config.endpoint, "deployments") or {}
        return [d for d in body.get("value", []) if isinstance(d, dict)]

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.client.get(self.collection, self.config.endpoint, "deployments", name)

    def serves(self, deployment: Mapping[str, Any], model_id: str) -> bool:
        raise NotImplementedError

    def created_here(self, deployment: Mapping[str, Any]) -> bool:
        """Whether this pipeline's rollouts made `deployment` (`deployment_body` tags it)."""
        tags = deployment.get("tags") or (deployment.get("properties") or {}).get("tags") or {}
        return isinstance(tags, Mapping) and tags.get(PIPELINE_TAG) == self.context.pipeline.name

    def deployment_body(self, model: ModelArtifact, location: str) -> dict[str, Any]:
        raise NotImplementedError

    def snapshot(self, endpoint: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def busy(exc: ServiceError) -> bool:
        return exc.status in BUSY_STATUSES or (isinstance(exc, TransientServiceError) and exc.retry_after_s is not None)

    def _wait_busy(self, exc: ServiceError, state: Mapping[str, Any], **progress: Any) -> StepResult:
        conflicts = int(state.get("conflicts", 0)) + 1
        return StepResult.wait(wait_hint(exc), {**state, "conflicts": conflicts}, conflicts=conflicts, **progress)

    def mutate(
        self,
        step: str,
        state: Mapping[str, Any],
        send: Callable[[], Operation | None],
        settled: Callable[[], str | None],
        **progress: Any,
    ) -> StepResult:
        """Send a change once for `step`, follow its operation, then confirm with `settled()`.

        `settled()` answers None when the change shows (done), "wait" while it does not yet, or
        a reason it failed.
        """
        state = dict(state)
        if state.get("sent") != step:
            self.context.intend(state | {"sent": step})  # what undoes it, on record before it is sent
            try:
                operation = send()
            except ServiceError as exc:
                if self.busy(exc):
                    return self._wait_busy(exc, state, **progress)
                raise
            state |= {"sent": step, "op": operation.to_dict() if operation else None}
        operation = Operation.from_dict(state.get("op"))
        if operation is not None and operation.url:
            status, error = self.client.operation_status(operation)
            if status.lower() not in ("succeeded", "failed", "canceled"):
                wait, state = next_look(state, operation)
                return StepResult.wait(wait, state, **progress)
            if status.lower() != "succeeded":
                return StepResult.failed(
                    f"{step}: the operation ended {status}: {error or 'no details'}", state, **progress
                )
            state["op"] = None
        outcome = settled()
        if outcome == "wait":
            wait, state = next_look(state, operation)
            return StepResult.wait(wait, state, **progress)
        if outcome is not None:
            return StepResult.failed(outcome, state, **progress)
        state.pop("look_s", None)
        return StepResult.done({**state, "sent": None}, **progress)

    # ---- the steps both kinds share -----------------------------------------------------------------

    def deploy(self, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        """Remember the endpoint as it is; create the deployment of this version (or reuse one that serves it)."""
        state = dict(state)
        model_id = self.model_id(model)
        if "before" not in state:
            endpoint = self.endpoint()
            state |= {"before": self.snapshot(endpoint), "location": endpoint.get("location")}
            existing = next((d for d in self.deployments() if self.serves(d, model_id)), None)
            if existing is not None:
                name = str(existing.get("name"))
                return StepResult.done(state | {"deployment": name, "created": False}, deployment=name, reused=True)
            state |= {"deployment": deployment_name(self.config.model_name, model.version or ""), "created": True}
        name = str(state["deployment"])
        self.context.intend(state)  # the deployment to delete if this rollout never finishes

        def send() -> Operation:
            _, _, operation = self.client.put(
                (self.collection, self.config.endpoint, "deployments", name),
                self.deployment_body(model, str(state.get("location") or "")),
            )
            return operation

        try:
            operation = send()
        except ServiceError as exc:
            if self.busy(exc):
                return self._wait_busy(exc, state, deployment=name)
            raise
        return StepResult.done(state | {"op": operation.to_dict()}, deployment=name, reused=False)

    def provisioned(self, state: Mapping[str, Any]) -> StepResult:
        name = str(state["deployment"])
        if not state.get("created"):
            return StepResult.done(dict(state), deployment=name, provisioning="Succeeded")
        operation = Operation.from_dict(state.get("op"))
        error = None
        if operation is not None and operation.url:
            status, error = self.client.operation_status(operation)
            if status.lower() not in ("succeeded", "failed", "canceled"):
                wait, looked = next_look(state, operation)
                return StepResult.wait(wait, looked, deployment=name, provisioning=status)
        found = self.deployment(name)
        current = str(properties(found, f"deployment {name}").get("provisioningState")) if found else "Missing"
        done = {k: v for k, v in state.items() if k not in ("op", "look_s")}
        if current == "Succeeded":
            return StepResult.done(done, deployment=name, provisioning=current)
        if current in ("Failed", "Canceled", "Missing"):
            return StepResult.failed(
                f"deployment {name} failed to provision ({current}): {error or self.logs(name) or 'no details'}",
                done,
                deployment=name,
                provisioning=current,
            )
        wait, looked = next_look(state, operation)
        return StepResult.wait(wait, looked, deployment=name, provisioning=current)

    def logs(self, name: str) -> str | None:
        return None

    def cleanup(self, state: Mapping[str, Any], in_use: Callable[[Mapping[str, Any]], set[str]]) -> StepResult:
        """Delete this pipeline's deployments beyond `keep_deployments` that take no traffic (best effort: a failure
        is reported, not fatal). A deployment the app did not create (no `retrain.pipeline` tag naming this
        pipeline) is never deleted: it is someone else's."""
        keep = self.config.keep_deployments
        try:
            endpoint = self.endpoint()
            used = {n.lower() for n in in_use(endpoint)} | {str(state["deployment"]).lower()}
            idle = [d for d in self.deployments() if str(d.get("name")).lower() not in used and self.created_here(d)]
            idle.sort(key=lambda d: str((d.get("systemData") or {}).get("createdAt", "")), reverse=True)
            deleted = []
            for old in idle[keep:]:
                if (
                    self.client.delete(self.collection, self.config.endpoint, "deployments", str(old.get("name")))
                    is not None
                ):
                    deleted.append(str(old.get("name")))
        except ServiceError as exc:
            return StepResult.done(dict(state), cleanup_error=str(exc)[:300])
        return StepResult.done(dict(state), deleted=deleted, kept=[str(d.get("name")) for d in idle[:keep]])

    def remove_new(self, state: Mapping[str, Any]) -> StepResult:
        """Rollback's last part: delete the deployment this rollout created, and see it gone."""
        name = state.get("deployment")
        if not name or not state.get("created"):
            return StepResult.done({**state, "rolled_back": True}, traffic=state.get("before"))
        if state.get("rb") != "deleting":
            self.context.intend(state)
            try:
                self.client.delete(self.collection, self.config.endpoint, "deployments", str(name))
            except ServiceError as exc:
                if self.busy(exc):
                    return self._wait_busy(exc, state)
                raise
            state = {**state, "rb": "deleting"}
        if self.deployment(str(name)) is not None:
            wait, looked = next_look(state, None)
            return StepResult.wait(wait, looked, deleting=name)
        return StepResult.done({**state, "rolled_back": True}, deleted=[name])

    def steps(self, model: ModelArtifact) -> tuple[RolloutStep, ...]:
        raise NotImplementedError
