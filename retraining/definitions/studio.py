"""Definitions of the seed's services, Azure ML Studio (classic): BES training, classic and ARM web service targets.

"training": {"kind": "studio-bes" (default), "mlEndpoint", "apiKeySetting", "input", "modelOutput",
             "evaluationOutput", "globalParameters"}
"targets": [{"kind": "classic", "updateResourceEndpoint", "apiKeySetting", "trainedModelName"},
            {"kind": "arm", "updateResourceEndpoint", "tenant", "servicePrincipalId",
             "servicePrincipalKeySetting", "authorityHost", "trainedModelName"}]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import Target, TrainingConfig
from .reader import Reader

STUDIO_TRAINING = "studio-bes"


@dataclass(frozen=True, kw_only=True)
class StudioBesTraining(TrainingConfig):
    kind: str = STUDIO_TRAINING
    ml_endpoint: str
    api_key_setting: str
    input_name: str = "input1"
    model_output: str = "output1"
    evaluation_output: str | None = "output2"
    global_parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def label_hint(self) -> str | None:
        return self.global_parameters.get("Label Column")


@dataclass(frozen=True, kw_only=True)
class ClassicTarget(Target):
    """A classic web service endpoint whose trained-model resource "Update Resource" replaces."""

    update_resource_endpoint: str
    trained_model_name: str
    api_key_setting: str


@dataclass(frozen=True, kw_only=True)
class ArmWebServiceTarget(Target):
    """A new-style (ARM) Studio web service, updated through Azure Resource Manager with a service principal."""

    update_resource_endpoint: str
    trained_model_name: str
    tenant: str
    service_principal_id: str
    service_principal_key_setting: str
    authority_host: str | None = None  # None: Azure public cloud


TRAINING_FIELDS = {"mlEndpoint", "apiKeySetting", "input", "modelOutput", "evaluationOutput", "globalParameters"}
CLASSIC_FIELDS = {"updateResourceEndpoint", "trainedModelName", "apiKeySetting"}
ARM_FIELDS = {
    "updateResourceEndpoint",
    "trainedModelName",
    "tenant",
    "servicePrincipalId",
    "servicePrincipalKeySetting",
    "authorityHost",
}


def training(reader: Reader, raw: dict[str, Any], path: str, pipeline: dict[str, Any]) -> StudioBesTraining:
    output = pipeline.get("output")
    if not isinstance(output, dict) or "container" not in output:
        raise reader.error(
            f"{path.rsplit('.', 1)[0]}.output.container", "is required: the container BES writes the model to"
        )
    parameters = reader.strings(raw.get("globalParameters"), f"{path}.globalParameters")
    evaluation = raw.get("evaluationOutput", "output2")
    return StudioBesTraining(
        ml_endpoint=reader.url(raw.get("mlEndpoint"), f"{path}.mlEndpoint"),
        api_key_setting=reader.setting_name(raw.get("apiKeySetting"), f"{path}.apiKeySetting"),
        input_name=reader.text(raw.get("input"), f"{path}.input", default="input1"),
        model_output=reader.text(raw.get("modelOutput"), f"{path}.modelOutput", default="output1"),
        evaluation_output=None if evaluation is None else reader.text(evaluation, f"{path}.evaluationOutput"),
        global_parameters=parameters,
    )


def classic_target(
    reader: Reader, raw: dict[str, Any], path: str, _pipeline: dict[str, Any], base: Target
) -> ClassicTarget:
    return ClassicTarget(
        name=base.name,
        kind=base.kind,
        policy=base.policy,
        update_resource_endpoint=reader.url(raw.get("updateResourceEndpoint"), f"{path}.updateResourceEndpoint"),
        trained_model_name=reader.text(raw.get("trainedModelName"), f"{path}.trainedModelName"),
        api_key_setting=reader.setting_name(raw.get("apiKeySetting"), f"{path}.apiKeySetting"),
    )


def arm_target(
    reader: Reader, raw: dict[str, Any], path: str, _pipeline: dict[str, Any], base: Target
) -> ArmWebServiceTarget:
    authority = raw.get("authorityHost")
    return ArmWebServiceTarget(
        name=base.name,
        kind=base.kind,
        policy=base.policy,
        update_resource_endpoint=reader.url(raw.get("updateResourceEndpoint"), f"{path}.updateResourceEndpoint"),
        trained_model_name=reader.text(raw.get("trainedModelName"), f"{path}.trainedModelName"),
        tenant=reader.text(raw.get("tenant"), f"{path}.tenant"),
        service_principal_id=reader.text(raw.get("servicePrincipalId"), f"{path}.servicePrincipalId"),
        service_principal_key_setting=reader.setting_name(
            raw.get("servicePrincipalKeySetting"), f"{path}.servicePrincipalKeySetting"
        ),
        authority_host=None if authority is None else reader.url(authority, f"{path}.authorityHost"),
    )
