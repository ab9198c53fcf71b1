"""Pipeline definitions: one JSON file, several pipelines, validated at load.

A pipeline names its training service, its data, where outputs go, its policies, an optional
evaluation gate and the scoring targets to update. Secrets never appear in the file: keys are
named by app setting (`apiKeySetting`, `servicePrincipalKeySetting`, `clientSecretSetting`), which
Key Vault references can back. Any other string may be `%SETTING%`, resolved from app settings when
the definition is loaded, so the same file points at Azure or at the local emulator.

Every validation error names the file and the JSON path, e.g.
`pipelines.json: pipelines[0].policy.timeout: '25:00:00' is out of range`.

    base       what every pipeline has (policies, gate, data, targets by kind)
    reader     typed fields, `%SETTING%` references, errors with paths
    studio     Azure ML Studio (classic): BES training, classic and ARM web service targets
    azure_ml   Azure Machine Learning (v2): workspace, command jobs, online and batch endpoints
    loader     the file, the generic parse and the table of kinds
"""

from .base import (
    MAX_APPROVAL,
    MAX_TIMEOUT,
    NOTIFY_EVENTS,
    ActivityPolicy,
    Approval,
    Definitions,
    ExternalDataPolicy,
    Gate,
    Notifications,
    Pipeline,
    PollingPolicy,
    ServingPolicy,
    Target,
    TrainingConfig,
)
from .loader import TARGET_KINDS, TRAINING_KINDS, load_definitions, parse_definitions
from .reader import _SETTING_REF, UnsetSettingError

__all__ = [
    "MAX_APPROVAL",
    "MAX_TIMEOUT",
    "NOTIFY_EVENTS",
    "TARGET_KINDS",
    "TRAINING_KINDS",
    "_SETTING_REF",
    "ActivityPolicy",
    "Approval",
    "Definitions",
    "ExternalDataPolicy",
    "Gate",
    "Notifications",
    "Pipeline",
    "PollingPolicy",
    "ServingPolicy",
    "Target",
    "TrainingConfig",
    "UnsetSettingError",
    "load_definitions",
    "parse_definitions",
]
