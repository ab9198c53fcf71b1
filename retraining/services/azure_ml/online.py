"""A managed online endpoint (`aml-online` target): blue/green with canary traffic steps and automatic rollback.

    deploy          remember the endpoint's traffic; PUT deployment {model}-v{version} at 0% (or reuse one serving it)
    provisioned     follow the deployment's operation until Succeeded (Failed: rollback)
    smoke           score sample rows from the training data on it, through the azureml-model-deployment header
    mirror          (optional) mirror a share of live traffic to it; bake; check_mirror probes it
    traffic_{p}     move p% of live traffic to it, the rest shared as before; bake; check_{p} probes it:
                    error rate and p95 latency against the target's health thresholds
    cleanup         delete idle deployments beyond keepDeployments (best effort)

Every traffic change is GET, edit, PUT of the whole endpoint (PATCH cannot carry traffic), keeping
the mirror settings, once the endpoint is idle; then its operation is followed and the new
weights confirmed by GET. A failed step rolls back: traffic and mirror as they were, then the new
deployment deleted; the champion stays where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...datasets import DataError
from ...definitions.azure_ml import AmlOnlineTarget
from ...errors import ServiceError
from ...models import ModelArtifact
from ..base import RolloutStep, StepResult, StepStatus, config_of, service_client
from .endpoints import PIPELINE_TAG, TERMINAL, EndpointTarget, another_writers_change, reverted
from .probe import Scorer, sample
from .workspace import Operation, properties


def split(before: Mapping[str, int], new: str, percent: int) -> dict[str, int]:
    """Live traffic with `percent` on `new` and the rest shared among the others in their earlier proportions."""
    others = {k: int(v) for k, v in before.items() if int(v) > 0 and k.lower() != new.lower()}
    total = sum(others.values())
    if total == 0:
        return {new: 100}
    rest = 100 - percent
    shares = {k: rest * v // total for k, v in others.items()}
    for k in sorted(others, key=lambda name: (-others[name], name))[: rest - sum(shares.values())]:
        shares[k] += 1
    return {k: v for k, v in shares.items() if v > 0} | ({new: percent} if percent > 0 else {})


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return {k.lower(): int(v) for k, v in a.items() if int(v)} == {k.lower(): int(v) for k, v in b.items() if int(v)}


def endpoint_body(endpoint: Mapping[str, Any], traffic: Mapping[str, int], mirror: Mapping[str, int]) -> dict[str, Any]:
    """The whole endpoint for a PUT, as it is but for its traffic (a PUT replaces everything it does not repeat)."""
    props = properties(endpoint, f"endpoint {endpoint.get('name')}")
    identity = dict(endpoint.get("identity") or {"type": "SystemAssigned"})
    body_identity: dict[str, Any] = {"type": identity.get("type", "SystemAssigned")}
    if isinstance(identity.get("userAssignedIdentities"), dict):
        body_identity["userAssignedIdentities"] = {k: {} for k in identity["userAssignedIdentities"]}
    return {
        "location": endpoint.get("location"),
        "tags": endpoint.get("tags") or {},
        "identity": body_identity,
        "properties": {
            "authMode": props.get("authMode"),
            "description": props.get("description"),
            "publicNetworkAccess": props.get("publicNetworkAccess") or "Enabled",
            "traffic": dict(traffic),
            "mirrorTraffic": dict(mirror),
        },
    }


class OnlineEndpointTarget(EndpointTarget):
    collection = "onlineEndpoints"

    @property
    def online(self) -> AmlOnlineTarget:
        return config_of(self.target, AmlOnlineTarget)

    def steps(self, model: ModelArtifact) -> tuple[RolloutStep, ...]:
        config = self.online
        steps = [RolloutStep("deploy"), RolloutStep("provisioned", mutates=False), RolloutStep("smoke", mutates=False)]
        if config.mirror_percent:
            steps += [
                RolloutStep("mirror", bake_s=config.mirror_bake.total_seconds()),
                RolloutStep("check_mirror", mutates=False),
            ]
        for percent in config.traffic_steps:
            steps += [
                RolloutStep(f"traffic_{percent}", bake_s=config.bake.total_seconds()),
                RolloutStep(f"check_{percent}", mutates=False),
            ]
        return (*steps, RolloutStep("cleanup", mutates=False, best_effort=True))

    # ---- seam ------------------------------------------------------------------------------------------

    def serves(self, deployment: Mapping[str, Any], model_id: str) -> bool:
        props = deployment.get("properties") or {}
        return str(props.get("model", "")).lower() == model_id.lower() and props.get("provisioningState") == "Succeeded"

    def deployment_body(self, model: ModelArtifact, location: str) -> dict[str, Any]:
        spec = self.online.deployment
        props: dict[str, Any] = {
            "endpointComputeType": "Managed",
            "model": self.model_id(model),
            "instanceType": spec.instance_type,
            "description": f"{self.online.model_name} version {model.version}, rolled out by pipeline "
            f"{self.context.pipeline.name}",
        }
        if spec.environment_id:
            props["environmentId"] = spec.environment_id
        if spec.code_id and spec.scoring_script:
            props["codeConfiguration"] = {"codeId": spec.code_id, "scoringScript": spec.scoring_script}
        return {
            "location": location,
            "sku": {"name": "Default", "capacity": spec.instance_count},
            "tags": {PIPELINE_TAG: self.context.pipeline.name, "retrain.model_version": model.version or ""},
            "properties": props,
        }

    def snapshot(self, endpoint: Mapping[str, Any]) -> dict[str, Any]:
        props = properties(endpoint, f"endpoint {self.online.endpoint}")
        return {"traffic": dict(props.get("traffic") or {}), "mirror": dict(props.get("mirrorTraffic") or {})}

    def logs(self, name: str) -> str | None:
        try:
            body = self.client.post(
                self.collection,
                self.online.endpoint,
                "deployments",
                name,
                "getLogs",
                body={"containerType": "StorageInitializer", "tail": 20},
            ).json()
        except (ServiceError, ValueError):
            return None
        content = body.get("content") if isinstance(body, dict) else None
        return content.strip().splitlines()[-1][:300] if isinstance(content, str) and content.strip() else None

    def run_step(self, step: RolloutStep, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        if step.name == "deploy":
            return self.deploy(model, state)
        if step.name == "provisioned":
            return self.provisioned(state)
        if step.name == "smoke":
            return self._smoke(model, state)
        if step.name == "mirror":
            return self._shift(step.name, state, mirror_percent=self.online.mirror_percent)
        if step.name.startswith("traffic_"):
            return self._shift(step.name, state, percent=int(step.name.split("_", 1)[1]))
        if step.name.startswith("check_"):
            return self._check(step.name, model, state)
        if step.name == "cleanup":  # the split must still be the app's: else a deployment in use reads as unused
            foreign = self._foreign(step.name, state, self.endpoint())
            return foreign or self.cleanup(state, lambda endpoint: self._in_use(endpoint))
        raise ValueError(f"unknown rollout step {step.name!r}")

    def roll_back(self, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        """Traffic and mirror back as they were (if this rollout changed them), then the new deployment deleted."""
        if state.get("changed_traffic") and not state.get("restored"):
            before = state.get("before") or {}
            result = self._put("restore", state, dict(before.get("traffic") or {}), dict(before.get("mirror") or {}))
            if result.status is not StepStatus.DONE:
                return result
            state = {**result.state, "restored": True}
        return self.remove_new(state)

    # ---- steps -----------------------------------------------------------------------------------------

    def _in_use(self, endpoint: Mapping[str, Any]) -> set[str]:
        props = properties(endpoint, "endpoint")
        weights = {**(props.get("traffic") or {}), **(props.get("mirrorTraffic") or {})}
        return {k for k, v in weights.items() if int(v) > 0}

    def _smoke(self, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        name = str(state["deployment"])
        try:
            rows = sample(self.context, model.columns, self.online.health.sample_rows)
        except DataError as exc:
            return StepResult.failed(f"smoke test: {exc}", dict(state), deployment=name)
        why = self._scorer().smoke(name, model.columns, rows)
        if why is not None:
            return StepResult.failed(
                f"smoke test of deployment {name} failed: {why}", dict(state), deployment=name, smoke="failed"
            )
        return StepResult.done(dict(state), deployment=name, smoke=f"{len(rows)} rows scored")

    def _check(self, step: str, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        foreign = self._foreign(step, state, self.endpoint())
        if foreign is not None:  # probing a split the app did not set would judge the wrong thing
            return foreign
        name, health = str(state["deployment"]), self.online.health
        try:
            rows = sample(self.context, model.columns, health.sample_rows)
        except DataError as exc:
            return StepResult.failed(f"{step}: {exc}", dict(state))
        result = self._scorer().probe(name, model.columns, rows, health.probes)
        shown = result.to_dict() | {"step": step}
        if result.error_rate > health.max_error_rate:
            return StepResult.failed(
                f"{step}: deployment {name} failed {result.errors} of {result.probes} probes "
                f"({result.error_rate:.0%} > {health.max_error_rate:.0%}; last: {result.last_error})",
                dict(state),
                health=shown,
            )
        if result.p95_ms > health.max_latency_ms:
            return StepResult.failed(
                f"{step}: deployment {name} answered in {result.p95_ms:.0f} ms at the 95th percentile "
                f"(> {health.max_latency_ms:.0f} ms)",
                dict(state),
                health=shown,
            )
        return StepResult.done(dict(state), health=shown)

    def _scorer(self) -> Scorer:
        return Scorer(self.client, self.endpoint(), service_client(self.context, f"scoring {self.online.endpoint}"))

    def _shift(
        self, step: str, state: Mapping[str, Any], *, percent: int | None = None, mirror_percent: int | None = None
    ) -> StepResult:
        if state.get("sent") != step:  # before sending: the endpoint must be as the app left it
            foreign = self._foreign(step, state, self.endpoint())
            if foreign is not None:
                return foreign
        before = state.get("before") or {}
        new = str(state["deployment"])
        if percent is not None:
            traffic = split(before.get("traffic") or {}, new, percent)
            mirror = {
                k: int(v)
                for k, v in (before.get("mirror") or {}).items()
                if k.lower() != new.lower() and int(v) and k not in traffic
            }
        else:
            traffic = dict(before.get("traffic") or {})
            mirror = {new: int(mirror_percent or 0)}
        return self._put(step, {**state, "changed_traffic": True}, traffic, mirror)

    def _put(self, step: str, state: Mapping[str, Any], traffic: dict[str, int], mirror: dict[str, int]) -> StepResult:
        existing = {str(d.get("name")).lower() for d in self.deployments()} if step == "restore" else None
        if existing is not None:  # a deployment gone since the snapshot cannot take traffic back
            kept = {k: v for k, v in traffic.items() if k.lower() in existing}
            traffic = split(kept, "", 0) if kept and sum(kept.values()) != 100 else kept
            mirror = {k: v for k, v in mirror.items() if k.lower() in existing}

        def send() -> Operation | None:
            endpoint = self.endpoint()
            current = str(properties(endpoint, "endpoint").get("provisioningState"))
            if current not in TERMINAL:
                raise ServiceError(
                    f"endpoint {self.online.endpoint} is {current}", status=409, code="Busy", service="Azure ML"
                )
            _, _, operation = self.client.put(
                (self.collection, self.online.endpoint), endpoint_body(endpoint, traffic, mirror)
            )
            return operation

        def settled() -> str | None:
            props = properties(self.endpoint(), "endpoint")
            current = str(props.get("provisioningState"))
            if current == "Failed":
                return f"{step}: the endpoint update failed"
            if current not in TERMINAL or not _same(props.get("traffic") or {}, traffic):
                return "wait"
            return None

        result = self.mutate(step, state, send, settled, traffic=traffic, mirror=mirror)
        if result.status is StepStatus.DONE:  # what the app set, to tell another writer's change from its own
            return replace(result, state={**result.state, "set": {"traffic": traffic, "mirror": mirror}})
        if result.status is StepStatus.WAIT and step != "restore" and state.get("sent") == step:
            # the operation is over but the split is not ours: someone else wrote after it
            endpoint = self.endpoint()
            props = properties(endpoint, "endpoint")
            if str(props.get("provisioningState")) in TERMINAL and not _same(props.get("traffic") or {}, traffic):
                mine = {"set": {"traffic": traffic, "mirror": mirror}}
                # while the app's operation is followed, the split before it may still show; once it has
                # succeeded (or the PUT answered at once), any other split is another writer's
                on_its_way = result.state.get("op") is not None
                own = (state.get("set") or state.get("before")) if on_its_way else None
                foreign = self._foreign(step, {**state, **mine}, endpoint, own=own)
                if foreign is not None:
                    return foreign
        return result

    def _foreign(
        self,
        step: str,
        state: Mapping[str, Any],
        endpoint: Mapping[str, Any],
        own: Mapping[str, Any] | None = None,
    ) -> StepResult | None:
        """None if the endpoint's split is what the app last set (or, while a change is on its way, `own`: the one
        before it); else what the pipeline's `serving.otherWriters` says: yield (end as it is, reported) or revert
        (put back what the app set, then the step runs again)."""
        expected = state.get("set") or state.get("before") or {}
        props = properties(endpoint, "endpoint")
        seen = {"traffic": dict(props.get("traffic") or {}), "mirror": dict(props.get("mirrorTraffic") or {})}
        for candidate in (expected, own):
            if (
                candidate is not None
                and _same(seen["traffic"], candidate.get("traffic") or {})
                and _same(seen["mirror"], candidate.get("mirror") or {})
            ):
                return None
        change = another_writers_change(seen, expected)
        reason = (
            f"{step}: changed_by_another_writer: endpoint {self.online.endpoint} has traffic {seen['traffic']} "
            f"and mirror {seen['mirror']}, where the app had set {dict(expected.get('traffic') or {})}"
        )
        if self.context.pipeline.serving.other_writers == "yield":
            return StepResult.yielded(
                f"{reason}; left as it is (serving.otherWriters: yield)",
                dict(state),
                **{"changed_by_another_writer": change},
            )
        result = self._put(
            f"revert_{step}", dict(state), dict(expected.get("traffic") or {}), dict(expected.get("mirror") or {})
        )
        return reverted(result, change, step_again=True)
