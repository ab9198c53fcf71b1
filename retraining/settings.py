"""App settings, read when an activity or starter runs (never at import, never in orchestrators).

| setting                        | meaning                                                               |
|--------------------------------|-----------------------------------------------------------------------|
| RETRAIN_PIPELINES_FILE         | pipeline definitions JSON, relative to the app root (pipelines.json)   |
| TrainingStorage                | connection string of the storage account holding data and models       |
| TrainingStorage__blobServiceUri| or: the account's blob URL, used with a managed identity               |
| TrainingStorage__clientId      | optional user-assigned identity for the above                          |
| RETRAIN_RUN_RECORDS_CONTAINER  | where run records go (default: runrecords)                             |
| RETRAIN_SAS_MINUTES_MARGIN     | extra SAS lifetime beyond the job timeout (default 15)                 |
| RETRAIN_HTTP_TIMEOUT_SECONDS   | per-request timeout towards the ML services (default 30)               |
| RETRAIN_UPDATE_WAIT_SECONDS    | how long an update activity waits for the swap to show (default 300)   |
| RETRAIN_HISTORY_RETENTION_DAYS | finished orchestration history kept in the task hub, days (default 30) |
| RETRAIN_PAGE_URL               | the status page's address, for links in notifications (optional)       |
| RETRAIN_EASY_AUTH              | true only with App Service authentication in front (default false)     |
| ML_CA_BUNDLE                   | CA file for the ML services' TLS (local emulator only; unset in Azure) |

Secrets (API keys, service-principal keys) are named by the pipeline definitions and read with
`Settings.secret(name)` at the moment they are needed.

`APP_SETTINGS` lists every setting the app itself reads; `Settings.from_env` reads nothing else, so
the list is what infrastructure as code must provide (the infra check compares the two).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

APP_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AppSetting:
    """One app setting the code reads: its name, whether a deployment must set it, and what it means."""

    name: str
    meaning: str
    required: bool = False  # must be set in Azure (a default or an alternative exists otherwise)
    local_only: bool = False  # only meaningful on a developer machine; never set in Azure


APP_SETTINGS: tuple[AppSetting, ...] = (
    # Read by the Functions host through binding expressions (host.json, the timer's schedule).
    AppSetting(
        "TASK_HUB_NAME",
        "Durable task hub name (host.json hubName); unique per app sharing a storage account",
        required=True,
    ),
    AppSetting("RETRAIN_SCHEDULE", "NCRONTAB schedule of the retrain timer, six fields, seconds first", required=True),
    # Read by the app through Settings.from_env.
    AppSetting(
        "RETRAIN_PIPELINES_FILE", "pipeline definitions JSON, relative to the app root (default pipelines.json)"
    ),
    AppSetting(
        "TrainingStorage", "connection string of the training storage account (local; Azure uses the identity form)"
    ),
    AppSetting(
        "TrainingStorage__blobServiceUri", "blob endpoint of the training storage account, used with a managed identity"
    ),
    AppSetting("TrainingStorage__clientId", "client id of a user-assigned identity for the training storage account"),
    AppSetting("RETRAIN_RUN_RECORDS_CONTAINER", "container for run records (default runrecords)"),
    AppSetting("RETRAIN_SAS_MINUTES_MARGIN", "extra SAS lifetime beyond the job timeout, minutes (default 15)"),
    AppSetting("RETRAIN_HTTP_TIMEOUT_SECONDS", "per-request timeout towards the ML services (default 30)"),
    AppSetting("RETRAIN_UPDATE_WAIT_SECONDS", "how long an update waits to see the new model served (default 300)"),
    AppSetting(
        "RETRAIN_HISTORY_RETENTION_DAYS",
        "finished orchestration history kept in the task hub, days (default 30); run records stay",
    ),
    AppSetting(
        "RETRAIN_EASY_AUTH",
        "true when App Service authentication is in front: only then is x-ms-client-principal-name who decided",
        required=True,
    ),
    AppSetting("RETRAIN_PAGE_URL", "the status page's address (https://APP/api/status), for links in notifications"),
    AppSetting("ML_CA_BUNDLE", "CA file for the local emulator's TLS", local_only=True),
)
_KNOWN = frozenset(s.name for s in APP_SETTINGS)


def _read(env: Mapping[str, str], name: str) -> str | None:
    """An app setting's value; only settings listed in APP_SETTINGS may be read."""
    if name not in _KNOWN:
        raise AssertionError(f"app setting {name} is read but not listed in APP_SETTINGS")
    return env.get(name) or None


@dataclass(frozen=True)
class Settings:
    pipelines_file: Path
    storage_connection_string: str | None
    storage_account_url: str | None
    storage_client_id: str | None
    run_records_container: str
    sas_margin_minutes: int
    http_timeout_s: float
    update_wait_s: float
    ca_bundle: str | None
    retention_days: float = 30.0
    page_url: str | None = None
    schedule: str | None = None  # the timer's NCRONTAB (its binding reads it; the page shows the next fire)
    # App Service authentication (Easy Auth) is in front: only then is x-ms-client-principal-name the platform's
    # (it replaces whatever a caller sent); without it, anyone holding a key could write any name there
    easy_auth: bool = False
    environ: Mapping[str, str] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        connection = _read(env, "TrainingStorage")
        account_url = _read(env, "TrainingStorage__blobServiceUri")
        if not connection and not account_url:
            raise ConfigError(
                "app setting TrainingStorage (a connection string) or TrainingStorage__blobServiceUri is required"
            )
        pipelines = Path(_read(env, "RETRAIN_PIPELINES_FILE") or "pipelines.json")
        return cls(
            pipelines_file=pipelines if pipelines.is_absolute() else APP_ROOT / pipelines,
            storage_connection_string=connection,
            storage_account_url=account_url,
            storage_client_id=_read(env, "TrainingStorage__clientId"),
            run_records_container=_read(env, "RETRAIN_RUN_RECORDS_CONTAINER") or "runrecords",
            sas_margin_minutes=int(_number(env, "RETRAIN_SAS_MINUTES_MARGIN", 15)),
            http_timeout_s=_number(env, "RETRAIN_HTTP_TIMEOUT_SECONDS", 30.0),
            update_wait_s=_number(env, "RETRAIN_UPDATE_WAIT_SECONDS", 300.0),
            ca_bundle=_read(env, "ML_CA_BUNDLE"),
            retention_days=_number(env, "RETRAIN_HISTORY_RETENTION_DAYS", 30.0),
            page_url=(_read(env, "RETRAIN_PAGE_URL") or "").rstrip("/") or None,
            schedule=_read(env, "RETRAIN_SCHEDULE"),
            easy_auth=_flag(env, "RETRAIN_EASY_AUTH"),
            environ=env,
        )

    def secret(self, name: str) -> str:
        """The value of the app setting `name`; raise ConfigError naming it when missing."""
        value = self.environ.get(name)
        if not value:
            raise ConfigError(f"app setting {name!r} (a secret named by the pipeline definitions) is not set")
        if value.startswith(KEY_VAULT_REFERENCE):
            raise ConfigError(
                f"app setting {name!r} is a Key Vault reference App Service could not resolve (is the secret in the vault?)"
            )
        return value

    def optional_secret(self, name: str) -> str | None:
        """A secret that may be absent: None when unset or still an unresolved Key Vault reference."""
        value = self.environ.get(name)
        return None if not value or value.startswith(KEY_VAULT_REFERENCE) else value

    @property
    def verify(self) -> str | bool:
        """What `requests` and azure-core should verify TLS against."""
        return self.ca_bundle or True


KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("  # App Service passes a reference it cannot resolve on as text


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _read(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        # The value is not shown: it may be a secret set under the wrong name.
        raise ConfigError(f"app setting {name} must be a number (its value is not one)") from None
    if not math.isfinite(value):  # float() reads "nan", "inf", "Infinity", "1e999": no limit or period means them
        raise ConfigError(f"app setting {name} must be a finite number (its value is not one)")
    if value <= 0:
        raise ConfigError(f"app setting {name} must be positive, got {value:g}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    """A true/false app setting (absent: false); anything else is refused by name."""
    value = (_read(env, name) or "false").strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"app setting {name} must be true or false")
    return value == "true"
