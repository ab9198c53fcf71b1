"""A batch endpoint (`aml-batch` target): a deployment of the new version, then the endpoint's default switched to it.

    deploy        remember the endpoint's default deployment; PUT deployment {model}-v{version} (or reuse one serving it)
    provisioned   follow the deployment's operation until Succeeded
    default       PUT the endpoint with `defaults.deploymentName` = the new deployment (PATCH cannot change it)
    cleanup       delete idle deployments beyond keepDeployments; the previous default is kept for rollback

A batch endpoint takes no live traffic, so there is nothing to canary: jobs invoked after the switch
score with the new model. A rollback puts the previous default back and deletes the new deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...definitions.azure_ml import AmlBatchTarget
from ...errors import ServiceError
from ...models import ModelArtifact
from ..base import RolloutStep, StepResult, StepStatus, config_of
from .endpoints import PIPELINE_TAG, TERMINAL, EndpointTarget, another_writers_change, reverted
from .workspace import Operation, properties


def _default(endpoint: Mapping[str, Any]) -> str | None:
    defaults = properties(endpoint, "batch endpoint").get("defaults")
    name = defaults.get("deploymentName") if isinstance(defaults, dict) else None
    return name if isinstance(name, str) and name else None


class BatchEndpointTarget(EndpointTarget):
    collection = "batchEndpoints"

    @property
    def batch(self) -> AmlBatchTarget:
        return config_of(self.target, AmlBatchTarget)

    def steps(self, model: ModelArtifact) -> tuple[RolloutStep, ...]:
        return (
            RolloutStep("deploy"),
            RolloutStep("provisioned", mutates=False),
            RolloutStep("default"),
            RolloutStep("cleanup", mutates=False, best_effort=True),
        )

    def serves(self, deployment: Mapping[str, Any], model_id: str) -> bool:
        props = deployment.get("properties") or {}
        model = props.get("model")
        asset = model.get("assetId", "") if isinstance(model, dict) else ""
        return str(asset).lower() == model_id.lower() and props.get("provisioningState") == "Succeeded"

    def deployment_body(self, model: ModelArtifact, location: str) -> dict[str, Any]:
        spec = self.batch.deployment
        props: dict[str, Any] = {
            "model": {"referenceType": "Id", "assetId": self.model_id(model)},
            "compute": spec.compute_id,
            "resources": {"instanceCount": spec.instance_count},
            "description": f"{self.batch.model_name} version {model.version}, rolled out by pipeline "
            f"{self.context.pipeline.name}",
        }
        if spec.environment_id:
            props["environmentId"] = spec.environment_id
        if spec.code_id and spec.scoring_script:
            props["codeConfiguration"] = {"codeId": spec.code_id, "scoringScript": spec.scoring_script}
        return {
            "location": location,
            "tags": {PIPELINE_TAG: self.context.pipeline.name, "retrain.model_version": model.version or ""},
            "properties": props,
        }

    def snapshot(self, endpoint: Mapping[str, Any]) -> dict[str, Any]:
        return {"default": _default(endpoint)}

    def run_step(self, step: RolloutStep, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        if step.name == "deploy":
            return self.deploy(model, state)
        if step.name == "provisioned":
            return self.provisioned(state)
        if step.name == "default":
            return self._default(state)
        if step.name == "cleanup":  # the default must still be the app's: else the deployment in use reads as unused
            own = str(state["deployment"])  # the default step switched to it
            change = self._foreign(self.endpoint(), own)
            if change is not None:
                return self._other_writer("cleanup", state, change, own)
            return self.cleanup(state, lambda endpoint: {d for d in (_default(endpoint),) if d})
        raise ValueError(f"unknown rollout step {step.name!r}")

    def roll_back(self, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        previous = (state.get("before") or {}).get("default")
        if state.get("changed_default") and not state.get("restored") and previous:
            result = self._switch("restore", state, str(previous))
            if result.status is not StepStatus.DONE:
                return result
            state = {**result.state, "restored": True}
        return self.remove_new(state)

    def _default(self, state: Mapping[str, Any]) -> StepResult:
        """Switch the default to the new deployment; another writer's default, before the switch or once it is
        over, is what `serving.otherWriters` says: left and reported (yield), or replaced by the app's (revert)."""
        own = str(state["deployment"])
        switching = {**state, "changed_default": True}
        if state.get("sent") != "default":  # before sending: the default must be the one the app found
            change = self._foreign(self.endpoint(), (state.get("before") or {}).get("default"))
            if change is not None and self.context.pipeline.serving.other_writers == "yield":
                return self._other_writer("default", state, change, own)
            result = self._switch("default", switching, own)
            # revert: the app's own default replaces the other writer's, and says so
            return result if change is None else reverted(result, change)
        result = self._switch("default", switching, own)
        if result.status is StepStatus.WAIT and result.state.get("op") is None:
            # the switch is over (or was answered at once), yet the default is not the app's: someone else wrote
            endpoint = self.endpoint()
            terminal = str(properties(endpoint, "batch endpoint").get("provisioningState")) in TERMINAL
            change = self._foreign(endpoint, own) if terminal else None
            if change is not None:
                if self.context.pipeline.serving.other_writers == "yield":
                    return self._other_writer("default", result.state, change, own)
                return reverted(self._switch("default", {**result.state, "sent": None}, own), change)
        return result

    def _other_writer(self, step: str, state: Mapping[str, Any], change: dict[str, Any], own: str) -> StepResult:
        """Yield: end as it is, reported; revert: put the app's default back, then the step runs again."""
        if self.context.pipeline.serving.other_writers == "yield":
            return StepResult.yielded(
                f"{step}: changed_by_another_writer: batch endpoint {self.batch.endpoint} defaults to "
                f"{change['seen']['default']!r}, where the app had left {change['app_set']['default']!r}; "
                "left as it is (serving.otherWriters: yield)",
                dict(state),
                changed_by_another_writer=change,
            )
        return reverted(self._switch(f"revert_{step}", dict(state), own), change, step_again=True)

    def _foreign(self, endpoint: Mapping[str, Any], expected: str | None) -> dict[str, Any] | None:
        """None if the endpoint's default deployment is `expected` (what the app found or set); else what changed,
        and when seen."""
        seen = _default(endpoint)
        if (seen or "").lower() == (expected or "").lower():
            return None
        return another_writers_change({"default": seen}, {"default": expected})

    def _switch(self, step: str, state: Mapping[str, Any], deployment: str) -> StepResult:
        def send() -> Operation | None:
            endpoint = self.endpoint()
            props = properties(endpoint, "batch endpoint")
            if str(props.get("provisioningState")) not in TERMINAL:
                raise ServiceError(
                    f"endpoint {self.batch.endpoint} is {props.get('provisioningState')}",
                    status=409,
                    code="Busy",
                    service="Azure ML",
                )
            identity = dict(endpoint.get("identity") or {"type": "SystemAssigned"})
            body = {
                "location": endpoint.get("location"),
                "tags": endpoint.get("tags") or {},
                "identity": {"type": identity.get("type", "SystemAssigned")},
                "properties": {
                    "authMode": props.get("authMode") or "AADToken",
                    "description": props.get("description"),
                    "defaults": {"deploymentName": deployment},
                },
            }
            _, _, operation = self.client.put((self.collection, self.batch.endpoint), body)
            return operation

        def settled() -> str | None:
            endpoint = self.endpoint()
            current = str(properties(endpoint, "batch endpoint").get("provisioningState"))
            if current == "Failed":
                return f"{step}: the endpoint update failed"
            return None if current in TERMINAL and (_default(endpoint) or "").lower() == deployment.lower() else "wait"

        return self.mutate(step, state, send, settled, default=deployment)
