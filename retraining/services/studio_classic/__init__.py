"""Azure ML Studio (classic): the seed's training web service (BES) and its two kinds of scoring target.

- `BesTraining`: submit a job whose input and outputs are blobs in our account, each reached
  through a SAS scoped to that one blob; start it; poll it; DELETE it to cancel; collect the
  `.ilearner` and the Evaluate Model table. Results must be the very blobs we asked for.
- `ClassicEndpointTarget`: "Update Resource" (PATCH) on a non-default endpoint, then look until the
  endpoint shows the new model (the swap took about 30 s on the real service).
- `ArmWebServiceTarget`: the same through Azure Resource Manager with a service principal, then
  follow `provisioningState` to Succeeded.

Studio (classic) was retired in August 2024; these stay for the seed's pipeline and its emulator.
A failed update leaves the previous model serving. Before an update is sent, the target's current model
(a blob of the training storage account) goes on record with the intent (`ServiceContext.intend`); a
rollback points the target back at it, but only where the new model did land (a rollout cut off after
its update, or one whose confirmation came too late), and confirms it serves again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from ...definitions.studio import ArmWebServiceTarget as ArmTargetConfig
from ...definitions.studio import ClassicTarget as ClassicTargetConfig
from ...definitions.studio import StudioBesTraining
from ...errors import ConfigError, ForeignLocationError, ResponseFormatError
from ...identity import service_principal
from ...models import BlobPath, JobState, JobStatusView, ModelArtifact, SubmittedJob
from ...policy import check_result_location, parse_metrics
from ..base import Provenance, RolloutStep, ServiceContext, StepResult, config_of, service_client
from .bes import BatchExecutionClient
from .endpoints import ArmWebServiceClient, ClassicEndpointClient

logger = logging.getLogger(__name__)

CONFIRM_FIRST_S, CONFIRM_MAX_S = 0.25, 10.0


def _next_look(state: Mapping[str, Any]) -> float:
    """Look often at first (a swap can take milliseconds), then back off towards CONFIRM_MAX_S."""
    return min(CONFIRM_MAX_S, float(state.get("look_s", CONFIRM_FIRST_S / 1.5)) * 1.5)


class BesTraining:
    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.training = config_of(context.pipeline.training, StudioBesTraining)

    def _client(self) -> BatchExecutionClient:
        settings = self.context.settings
        return BatchExecutionClient(
            self.training.ml_endpoint,
            settings.secret(self.training.api_key_setting),
            service_client(self.context, "BES"),
        )

    def _outputs(self, run_id: str) -> dict[str, BlobPath]:
        """Each run writes to a folder of its own, so no earlier model is ever overwritten."""
        folder = f"{self.context.pipeline.name}/{run_id}"
        container = self.context.pipeline.output_container or ""
        outputs = {"model": BlobPath(container, f"{folder}/model.ilearner")}
        if self.training.evaluation_output:
            outputs["metrics"] = BlobPath(container, f"{folder}/evaluation.csv")
        return outputs

    def submit(self, run_id: str, data: BlobPath) -> SubmittedJob:
        storage, settings = self.context.storage, self.context.settings
        lifetime = self.context.pipeline.policy.timeout + timedelta(minutes=settings.sas_margin_minutes)
        outputs = self._outputs(run_id)
        storage.ensure_container(self.context.pipeline.output_container or "")

        def ref(path: BlobPath, *, write: bool) -> dict[str, Any]:
            return {
                "ConnectionString": None,
                "BaseLocation": storage.account_url,
                "RelativeLocation": str(path),
                "SasBlobToken": storage.sas(path, read=not write, write=write, lifetime=lifetime),
            }

        ports = {self.training.model_output: ref(outputs["model"], write=True)}
        if "metrics" in outputs and self.training.evaluation_output:
            ports[self.training.evaluation_output] = ref(outputs["metrics"], write=True)
        body = {
            "Inputs": {self.training.input_name: ref(data, write=False)},
            "Outputs": ports,
            "GlobalParameters": dict(self.training.global_parameters),
        }
        job_id = self._client().submit(body)
        return SubmittedJob(self.context.pipeline.name, run_id, job_id, {k: str(v) for k, v in outputs.items()})

    def start(self, job: SubmittedJob) -> None:
        self._client().start(job.job_id)

    def status(self, job: SubmittedJob) -> JobStatusView:
        status = self._client().get_status(job.job_id)
        if status.state is not JobState.FINISHED:
            return JobStatusView(status.state, status.details)
        expected = {self.training.model_output: BlobPath.parse(job.outputs["model"])}
        if self.training.evaluation_output and "metrics" in job.outputs:
            expected[self.training.evaluation_output] = BlobPath.parse(job.outputs["metrics"])
        try:
            for name, path in expected.items():
                result = status.results.get(name)
                if result is None:
                    raise ResponseFormatError(f"job {job.job_id} finished without output {name!r}")
                check_result_location(
                    result.get("BaseLocation"),
                    result.get("RelativeLocation"),
                    account_url=self.context.storage.account_url,
                    expected=path,
                )
        except (ForeignLocationError, ResponseFormatError) as exc:
            # Retrying cannot change a finished job's results: the run ends here, and nothing is promoted.
            logger.error(
                "pipeline %s run %s: refused the results of job %s: %s", job.pipeline, job.run_id, job.job_id, exc
            )
            return JobStatusView(JobState.FAILED, f"refused the job's results: {exc}")
        return JobStatusView(JobState.FINISHED, status.details)

    def cancel(self, job: SubmittedJob) -> None:
        self._client().delete(job.job_id)

    def collect(self, job: SubmittedJob) -> ModelArtifact:
        storage = self.context.storage
        model = BlobPath.parse(job.outputs["model"])
        size, sha256 = storage.digest(model)
        if size == 0:
            raise ResponseFormatError(f"the trained model {model} is empty")
        metrics_at = job.outputs.get("metrics")
        metrics = parse_metrics(storage.read_small(BlobPath.parse(metrics_at), 64 * 1024)) if metrics_at else {}
        return ModelArtifact(str(model), size, sha256, metrics)

    def register(self, model: ModelArtifact, provenance: Provenance) -> ModelArtifact:
        return model  # Studio (classic) has no model registry: the run records are the lineage

    def crown(self, model: ModelArtifact) -> None:
        return None


class _StudioTarget:
    """What the two Studio targets share: the model's read SAS, the confirm loop, no self-rollback."""

    def __init__(self, context: ServiceContext, target_name: str) -> None:
        self.context = context
        self.target = context.pipeline.target(target_name)
        if not isinstance(self.target, (ClassicTargetConfig, ArmTargetConfig)):
            raise ConfigError(f"target {target_name!r} is not a Studio (classic) web service")
        self.config = self.target

    def steps(self, model: ModelArtifact) -> tuple[RolloutStep, ...]:
        return (RolloutStep("apply"), RolloutStep("confirm", mutates=False))

    def _sas(self, model: BlobPath) -> str:
        lifetime = self.target.policy.timeout + timedelta(minutes=self.context.settings.sas_margin_minutes)
        return self.context.storage.sas(model, read=True, lifetime=lifetime)

    def run_step(self, step: RolloutStep, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        if step.name == "apply":
            if "before" not in state:  # what the target serves now: what a rollback points it back at
                state = {**state, "before": self._current()}
            self.context.intend({**state, "sent": True})  # on record before it is sent
            self.apply(model.blob)
            return StepResult.done({**state, "sent": True}, serving="updating")
        if self.serves(model.blob):
            return StepResult.done(dict(state), serving=model.sha256[:12])
        look = _next_look(state)
        return StepResult.wait(look, {**state, "look_s": look}, serving="updating")

    def roll_back(self, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        """Point the target back at the model it served before the update, if the update landed; then confirm."""
        before = state.get("before")
        if not state.get("restoring"):
            if not state.get("sent") or not self.serves(model.blob):
                return StepResult.done(
                    dict(state),
                    note="nothing to undo: the target does not serve the new model (it keeps the previous one)",
                )
            if not isinstance(before, str):
                return StepResult.failed(
                    "the update landed and cannot be undone: before it, the target served no model of the training "
                    "storage account",
                    dict(state),
                )
            self.apply(BlobPath.parse(before))
            state = {**state, "restoring": True}
        if isinstance(before, str) and self.serves(BlobPath.parse(before)):
            return StepResult.done({**state, "rolled_back": True}, restored=before)
        look = _next_look(state)
        return StepResult.wait(look, {**state, "look_s": look}, restoring=before)

    def _current(self) -> str | None:
        """The blob (container/name, in the training storage account) the target serves now; None if it shows
        none, or one elsewhere (which the app could not point it back at)."""
        raise NotImplementedError

    def apply(self, model: BlobPath) -> None:
        raise NotImplementedError

    def serves(self, model: BlobPath) -> bool:
        raise NotImplementedError


class ClassicEndpointTarget(_StudioTarget):
    def _client(self) -> ClassicEndpointClient:
        config = config_of(self.target, ClassicTargetConfig)
        secret = self.context.settings.secret(config.api_key_setting)
        return ClassicEndpointClient(
            config.update_resource_endpoint, secret, service_client(self.context, f"endpoint {self.target.name}")
        )

    def apply(self, model: BlobPath) -> None:
        self._client().update_resource(
            self.config.trained_model_name,
            base_location=self.context.storage.account_url,
            relative_location=str(model),
            sas_token=self._sas(model),
        )

    def serves(self, model: BlobPath) -> bool:
        return self._client().resource_location(self.config.trained_model_name) == str(model)

    def _current(self) -> str | None:
        found = self._client().resource(self.config.trained_model_name)
        if found is None or found[0].rstrip("/") != self.context.storage.account_url.rstrip("/"):
            return None
        return found[1]


class ArmWebServiceTarget(_StudioTarget):
    def _client(self) -> ArmWebServiceClient:
        settings, target = self.context.settings, config_of(self.target, ArmTargetConfig)
        credential = service_principal(
            target.tenant,
            target.service_principal_id,
            settings.secret(target.service_principal_key_setting),
            authority=target.authority_host,
            ca_bundle=settings.ca_bundle,
        )
        return ArmWebServiceClient(
            target.update_resource_endpoint, credential, service_client(self.context, f"web service {target.name}")
        )

    def apply(self, model: BlobPath) -> None:
        self._client().update_trained_model(
            self.config.trained_model_name, uri=self.context.storage.url_of(model), credentials=self._sas(model)
        )

    def serves(self, model: BlobPath) -> bool:
        return self._client().provisioning(self.context.storage.url_of(model)) == "Succeeded"

    def _current(self) -> str | None:
        uri = self._client().asset_uri(self.config.trained_model_name)
        account = self.context.storage.account_url
        if uri is None or not uri.startswith(account):
            return None
        return unquote(urlsplit(uri).path[len(urlsplit(account).path) :])

    def run_step(self, step: RolloutStep, model: ModelArtifact, state: Mapping[str, Any]) -> StepResult:
        if step.name != "confirm":
            return super().run_step(step, model, state)
        provisioning = self._client().provisioning(self.context.storage.url_of(model.blob))
        if provisioning == "Succeeded":
            return StepResult.done(dict(state), serving=model.sha256[:12], provisioning=provisioning)
        if provisioning == "Failed":
            return StepResult.failed(
                "provisioning the updated web service failed", dict(state), provisioning=provisioning
            )
        look = _next_look(state)
        return StepResult.wait(look, {**state, "look_s": look}, provisioning=provisioning)
