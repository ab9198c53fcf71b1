"""The infra check's checks on what runs the code: the settings and site properties the Functions host needs for what
the Bicep turns on (identity-based AzureWebJobsStorage, Key Vault references with the app's identity, App Insights
with Entra auth, the deployment storage's authentication, a Flex Consumption plan and Python runtime, the scheduler's
ipAllowlist, the status page's address, the task hub's name and the extension bundle), the Durable Task Scheduler
switch and its connection, and the Bicep's own consistency (bicep_structure, and typecheck against Azure's REST specs).
"""

from __future__ import annotations

import datetime
import json
import re

from retraining.settings import APP_ROOT

from .bicep_model import Setting, dotted
from .checks_base import CheckBase, _parameters_file
from .rules import EXTENSION_BUNDLE_FLOOR, KEY_VAULT_REFERENCE, TASK_HUB_NAME, Finding


class HostChecks(CheckBase):
    """The Functions host, the Durable Task Scheduler, the Bicep's own consistency."""

    # -- Durable Task Scheduler -------------------------------------------------------------------------

    def check_durable_task_scheduler(self) -> list[Finding]:
        findings = []
        host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
        provider = (host.get("extensions", {}).get("durableTask", {}).get("storageProvider") or {}).get(
            "type", "AzureStorage"
        )
        if provider != "AzureStorage":
            findings.append(
                Finding(
                    "durable task scheduler",
                    f"host.json storageProvider.type is {provider!r}: the default must stay Azure Storage",
                )
            )
        prefix = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__"
        kind = self.by_name.get(prefix + "type", [])
        name = self.by_name.get(prefix + "connectionStringName", [])
        if (
            not kind
            or self.infra.literal(kind[0].file, kind[0].value) != "azureManaged"
            or not all(s.conditional for s in kind)
        ):
            return [
                *findings,
                Finding(
                    "durable task scheduler", f"set {prefix}type to 'azureManaged' only when the scheduler switch is on"
                ),
            ]
        connection = self.infra.literal(name[0].file, name[0].value) if name else None
        value = self.by_name.get(connection or "", [])
        text = value[0].value if value and isinstance(value[0].value, str) else ""
        identity = self.app_identity()
        if (
            not connection
            or "Authentication=ManagedIdentity" not in text
            or not identity
            or f"ClientID=${{{identity[1]}.properties.clientId}}" not in text
        ):
            findings.append(
                Finding(
                    "durable task scheduler",
                    f"{prefix}connectionStringName must name a setting "
                    "'Endpoint=...;Authentication=ManagedIdentity;ClientID=${<app identity>.properties.clientId}'",
                )
            )
        hubs = self.infra.of_type("Microsoft.DurableTask/schedulers/taskHubs")
        hub_name = self.infra.origin(hubs[0].file, hubs[0].body.get("name")) if hubs else None
        setting = self.by_name.get("TASK_HUB_NAME", [])
        setting_name = self.infra.origin(setting[0].file, setting[0].value) if setting else None
        if (
            not hubs
            or hub_name is None
            or setting_name is None
            or (hub_name[0].name, hub_name[1]) != (setting_name[0].name, setting_name[1])
        ):
            findings.append(
                Finding(
                    "durable task scheduler",
                    "the scheduler's task hub must be named by the same value as TASK_HUB_NAME",
                )
            )
        return findings

    # -- the Bicep's own consistency ------------------------------------------------------------------------

    def check_bicep(self) -> list[Finding]:
        """Names, module parameters and outputs, parameter types, targetScope (bicep_structure), API versions
        that are real dates, and resource types, API versions, property names, value types and enums against the
        table of Azure's types made from the REST specs (typecheck, typetable/types.json)."""
        from .bicep_structure import check as structure
        from .typecheck import check as typecheck

        findings = [Finding("bicep", problem) for problem in structure(self.infra)]
        findings.extend(Finding("bicep types", problem) for problem in typecheck(self.infra))
        for file in self.infra.files.values():
            for symbol, resource in file.section("resources").items():
                version = str(resource.get("api_version", ""))
                match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(-preview|-beta|-alpha|-privatepreview)?", version)
                try:
                    when = datetime.date(*map(int, match.groups()[:3])) if match else None
                except ValueError:
                    when = None
                if when is None or when > datetime.date.today():
                    number = next((n for n, line in enumerate(file.text.splitlines(), 1) if f"@{version}'" in line), 0)
                    findings.append(
                        Finding(
                            "bicep",
                            f"infra/{file.name}:{number}: resource {symbol} has API version {version!r}, which is not "
                            "a published date",
                        )
                    )
        return findings

    # -- what the host needs for what the Bicep turns on ---------------------------------------------------

    def _value(self, name: str) -> tuple[Setting | None, str | None]:
        found = self.by_name.get(name, [])
        if not found:
            return None, None
        value = found[0].value
        return found[0], dotted(value) if not isinstance(value, str) or "${" not in value else value

    def check_host(self) -> list[Finding]:
        """The settings and site properties the Functions host needs for what the Bicep turns on: identity-based
        AzureWebJobsStorage, Key Vault references resolved with the app's identity, App Insights with Entra auth,
        the deployment package read with the identity, the status page's address from the site itself."""
        findings: list[Finding] = []
        app = self.infra.function_app()
        identity = self.app_identity()
        if app is None or identity is None:
            return [Finding("host", "no Function App with one user-assigned identity to check the host settings of")]
        ident = identity[1]
        properties = app.body.get("properties") or {}
        where = f"{app.symbol} in infra/{app.file.name}"

        def need(name: str, why: str, expected: str | None = None, pattern: str | None = None) -> None:
            setting, value = self._value(name)
            if setting is None:
                findings.append(
                    Finding("host", f"app setting {name} is required ({why}) but not set: add it to {where}")
                )
            elif setting.conditional:
                findings.append(Finding("host", f"app setting {name} is required ({why}) but only set conditionally"))
            elif expected is not None and value != expected:
                findings.append(Finding("host", f"app setting {name} must be {expected} ({why}), not {value}"))
            elif pattern is not None and not re.fullmatch(pattern, str(value)):
                findings.append(Finding("host", f"app setting {name} must match {pattern} ({why}), not {value}"))

        host = self._storage_symbol("AzureWebJobsStorage__blobServiceUri")
        account = host[1] if host else "<host storage>"
        for service, why in (
            ("blob", "host keys, timers and Durable's blobs with the identity"),
            ("queue", "Durable Functions, Azure Storage provider: control and work-item queues"),
            ("table", "Durable Functions, Azure Storage provider: History and Instances tables"),
        ):
            need(
                f"AzureWebJobsStorage__{service}ServiceUri",
                why,
                f"{account}.properties.primaryEndpoints.{service}",
            )
        need("AzureWebJobsStorage__credential", "AzureWebJobsStorage with a managed identity", "managedidentity")
        need("AzureWebJobsStorage__clientId", "which identity AzureWebJobsStorage uses", f"{ident}.properties.clientId")

        references = any(isinstance(s.value, str) and KEY_VAULT_REFERENCE.match(s.value) for s in self.settings)
        if references and dotted(properties.get("keyVaultReferenceIdentity")) != f"{ident}.id":
            findings.append(
                Finding(
                    "host",
                    f"{where}: properties.keyVaultReferenceIdentity must be {ident}.id: Key Vault references "
                    "resolve with the system identity otherwise, which this app does not have",
                )
            )
        if any(
            (c.body.get("properties") or {}).get("DisableLocalAuth") is True
            for c in self.infra.of_type("Microsoft.Insights/components")
        ):
            need("APPLICATIONINSIGHTS_CONNECTION_STRING", "where the host sends telemetry")
            need(
                "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
                "App Insights local auth is off: telemetry needs Entra auth",
                f"ClientId=${{{ident}.properties.clientId}};Authorization=AAD",
            )

        config = properties.get("functionAppConfig") or {}
        storage = ((config.get("deployment") or {}).get("storage")) or {}
        authentication = storage.get("authentication") or {}
        if (
            authentication.get("type") != "UserAssignedIdentity"
            or dotted(authentication.get("userAssignedIdentityResourceId")) != f"{ident}.id"
        ):
            findings.append(
                Finding(
                    "host",
                    f"{where}: functionAppConfig.deployment.storage.authentication must be {{ type: "
                    f"'UserAssignedIdentity', userAssignedIdentityResourceId: {ident}.id }} (shared keys are off)",
                )
            )
        if config:
            runtime = config.get("runtime") or {}
            if runtime.get("name") != "python" or str(runtime.get("version")) not in ("3.10", "3.11", "3.12"):
                findings.append(
                    Finding("host", f"{where}: functionAppConfig.runtime must be python 3.10, 3.11 or 3.12: {runtime}")
                )
            plan = dotted(properties.get("serverFarmId"))
            plans = [p for p in self.infra.of_type("Microsoft.Web/serverfarms") if f"{p.symbol}.id" == plan]
            sku = (plans[0].body.get("sku") or {}) if plans else {}
            if sku.get("name") != "FC1" or sku.get("tier") != "FlexConsumption":
                findings.append(
                    Finding(
                        "host",
                        f"{where}: functionAppConfig is Flex Consumption's: its plan ({plan}) must have sku "
                        f"{{ name: 'FC1', tier: 'FlexConsumption' }}, not {sku}",
                    )
                )

        for scheduler in self.infra.of_type("Microsoft.DurableTask/schedulers"):
            allow = (scheduler.body.get("properties") or {}).get("ipAllowlist")
            if not isinstance(allow, list) or not allow:
                findings.append(
                    Finding(
                        "host",
                        f"scheduler {scheduler.symbol} in infra/{scheduler.file.name}: ipAllowlist is required and an "
                        "empty list denies everyone (the app included)",
                    )
                )

        page, page_value = self._value("RETRAIN_PAGE_URL")
        if page is not None and page_value != f"https://${{{app.symbol}.properties.defaultHostName}}/api/status":
            findings.append(
                Finding(
                    "host",
                    f"RETRAIN_PAGE_URL must be 'https://${{{app.symbol}.properties.defaultHostName}}/api/status' (the "
                    f"site's own host name: other clouds and unique default host names differ), not {page_value}",
                )
            )
        for file in self.infra.files.values():
            for number, line in enumerate(file.text.splitlines(), 1):
                if "azurewebsites.net" in _code(line):
                    findings.append(
                        Finding(
                            "host",
                            f"infra/{file.name}:{number} names azurewebsites.net: use the site's defaultHostName",
                        )
                    )

        findings.extend(self._task_hub_names())
        return findings

    def _task_hub_names(self) -> list[Finding]:
        findings = []
        hub = self.by_name.get("TASK_HUB_NAME", [])
        values = []
        if hub:
            source_file, source = self.infra.origin(hub[0].file, hub[0].value)
            values.append((self.infra.literal(hub[0].file, hub[0].value), f"the default of {source}"))
            mapped = _parameters_file(self.infra.root).get(str(source))
            if mapped is not None:
                match = re.fullmatch(r"\$\{[A-Z0-9_]+(?:=([^}]*))?\}", mapped)
                values.append((match.group(1) if match else mapped, f"main.parameters.json {source}"))
        for value, where in values:
            if value is not None and not TASK_HUB_NAME.fullmatch(value):
                findings.append(
                    Finding(
                        "host",
                        f"TASK_HUB_NAME {value!r} ({where}) must be a letter then letters and digits, 3 to 45 characters",
                    )
                )
        host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
        version = str((host.get("extensionBundle") or {}).get("version", ""))
        floor = re.match(r"\[(\d+)\.(\d+|\*)(?:\.(\d+|\*))?", version)
        parts = tuple(int(p) if p and p.isdigit() else 0 for p in floor.groups()) if floor else (0, 0, 0)
        if parts < EXTENSION_BUNDLE_FLOOR:
            findings.append(
                Finding(
                    "host",
                    f"host.json extensionBundle.version {version!r} must start at "
                    f"{'.'.join(map(str, EXTENSION_BUNDLE_FLOOR))} (the Durable Task Scheduler's minimum), e.g. "
                    "'[4.32.0, 5.0.0)'",
                )
            )
        return findings


def _code(line: str) -> str:
    """A Bicep line without its // comment (a // inside a string, as in https://, is not one)."""
    quoted = False
    for index, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif not quoted and line.startswith("//", index):
            return line[:index]
    return line
