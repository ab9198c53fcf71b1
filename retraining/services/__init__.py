"""One module per ML service behind the seam in `base`; this registry is the only place that knows them.

Adding a service is a new module and one line here: the orchestrators, activities and
definitions' generic parts stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .azure_ml import AmlCommandJobs, BatchEndpointTarget, OnlineEndpointTarget
from .base import ScoringTarget, ServiceContext, TrainingService
from .studio_classic import ArmWebServiceTarget, BesTraining, ClassicEndpointTarget

TRAINING_SERVICES: dict[str, Callable[[ServiceContext], TrainingService]] = {
    "studio-bes": BesTraining,
    "aml-command": AmlCommandJobs,
}
SCORING_TARGETS: dict[str, Callable[[ServiceContext, str], ScoringTarget]] = {
    "classic": ClassicEndpointTarget,
    "arm": ArmWebServiceTarget,
    "aml-online": OnlineEndpointTarget,
    "aml-batch": BatchEndpointTarget,
}


def training_service(context: ServiceContext) -> TrainingService:
    kind = context.pipeline.training.kind
    try:
        return TRAINING_SERVICES[kind](context)
    except KeyError:
        raise ConfigError(f"pipeline {context.pipeline.name!r}: no training service of kind {kind!r}") from None


def scoring_target(context: ServiceContext, target: str) -> ScoringTarget:
    kind = context.pipeline.target(target).kind
    try:
        return SCORING_TARGETS[kind](context, target)
    except KeyError:
        raise ConfigError(f"pipeline {context.pipeline.name!r}: no scoring target of kind {kind!r}") from None
