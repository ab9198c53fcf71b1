"""Emulator configuration: which services, endpoints, ARM web services, principals and workspaces exist.

With no config file the emulator serves the seed's example (`default_config()`). A JSON config file
has the same shape as `EmulatorConfig.to_dict()`; unknown or mistyped fields raise `ConfigError`.
`with_fresh_secrets` swaps every key and client secret for a random one (`--fresh-secrets`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import typed
from .azure_ml.config import AzureMlConfig, default_azure_ml


class ConfigError(ValueError):
    """The emulator config file is invalid; the message names the field."""


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    service_id: str  # the 32-hex id in .../services/{service_id}/jobs
    primary_key: str
    secondary_key: str


@dataclass(frozen=True)
class WebServiceConfig:
    id: str
    name: str
    kind: str  # "training" or "scoring"
    endpoints: tuple[EndpointConfig, ...]
    input_names: tuple[str, ...] = ("input1",)
    # output name -> required extension
    outputs: dict[str, str] = field(default_factory=dict)
    required_global_parameters: tuple[str, ...] = ()
    label_column: str | None = None  # None: the last column
    resource_name: str = ""  # the updatable "[trained model]" resource of a scoring service
    job_seconds: float = 0.5  # minimum time a job spends Running


@dataclass(frozen=True)
class ArmWebServiceConfig:
    subscription_id: str
    resource_group: str
    name: str
    asset_name: str
    primary_key: str
    secondary_key: str


@dataclass(frozen=True)
class ServicePrincipalConfig:
    tenant: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class EmulatorConfig:
    workspace_id: str
    web_services: tuple[WebServiceConfig, ...]
    arm_web_services: tuple[ArmWebServiceConfig, ...]
    service_principals: tuple[ServicePrincipalConfig, ...]
    max_running_jobs_per_endpoint: int = 40
    max_queued_jobs_per_endpoint: int = 200
    update_delay_seconds: float = 0.2  # the real service took ~30 s to swap a model in
    max_body_bytes: int = 1024 * 1024
    azure_ml: AzureMlConfig = field(default_factory=AzureMlConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> EmulatorConfig:
        return _build(cls, raw, "config")

    @classmethod
    def from_file(cls, path: Path) -> EmulatorConfig:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        try:
            return cls.from_dict(raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def _build(cls: type, raw: Any, where: str) -> Any:
    try:
        return typed.build(cls, raw, where)
    except typed.ShapeError as exc:
        raise ConfigError(str(exc)) from None


def default_config() -> EmulatorConfig:
    """The seed's example: a training service, a scoring service with `default` and `endpoint2`,
    the ARM web service `myWebService`, one service principal in `mycompany.com`, and the Azure ML
    workspace `retrain-ws` (see `azure_ml.config.default_azure_ml`)."""
    return EmulatorConfig(
        workspace_id="0000000000000000000000000000000000000",
        web_services=(
            WebServiceConfig(
                id="7d1a3c5e9b2f4a6c8e0d1f3a5b7c9e01",
                name="Training Exp for ADF ML",
                kind="training",
                endpoints=(EndpointConfig("default", "a1b2c3d4e5f60718293a4b5c6d7e8f90", "myKey", "myKey2"),),
                input_names=("input1",),
                outputs={"output1": ".ilearner", "output2": ".csv"},
            ),
            WebServiceConfig(
                id="26734a5889e02fbb1f65cefd00000000",
                name="Scoring Exp for ADF ML",
                kind="scoring",
                endpoints=(
                    EndpointConfig(
                        "default", "00000000026734a5889e02fbb1f65cefd", "scoringDefaultKey", "scoringDefaultKey2"
                    ),
                    EndpointConfig("endpoint2", "b3c4d5e6f708192a3b4c5d6e7f809102", "endpoint2Key", "endpoint2Key2"),
                ),
                input_names=("input1",),
                outputs={"output1": ".csv"},
                resource_name="Training Exp for ADF ML [trained model]",
            ),
        ),
        arm_web_services=(
            ArmWebServiceConfig(
                subscription_id="00000000-0000-0000-0000-000000000000",
                resource_group="Default-MachineLearning-SouthCentralUS",
                name="myWebService",
                asset_name="Training Exp for ADF ML [trained model]",
                primary_key="armPrimaryKey",
                secondary_key="armSecondaryKey",
            ),
        ),
        service_principals=(
            ServicePrincipalConfig(
                tenant="mycompany.com",
                client_id="fe200044-c008-4008-a005-94000000731",
                client_secret="zWa0000000000Tp6FjtZOspK/WMA2tQ08c8U+gZRBlw=",
            ),
        ),
        azure_ml=default_azure_ml(),
    )


def with_fresh_secrets(config: EmulatorConfig) -> EmulatorConfig:
    """The same services with every key and client secret replaced by a random one.

    A secrets canary needs values no source file holds: hypothesis, for one, draws strings from the
    literals of local modules, so a fuzzed input could otherwise carry `endpoint2Key` into a log.
    """

    def fresh() -> str:
        return secrets.token_urlsafe(24)

    return replace(
        config,
        web_services=tuple(
            replace(
                service,
                endpoints=tuple(replace(e, primary_key=fresh(), secondary_key=fresh()) for e in service.endpoints),
            )
            for service in config.web_services
        ),
        arm_web_services=tuple(replace(a, primary_key=fresh(), secondary_key=fresh()) for a in config.arm_web_services),
        service_principals=tuple(replace(p, client_secret=fresh()) for p in config.service_principals),
        azure_ml=replace(
            config.azure_ml, workspaces=tuple(replace(w, client_secret=fresh()) for w in config.azure_ml.workspaces)
        ),
    )
