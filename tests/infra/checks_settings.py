"""The infra check's checks on what the Function App is given: its app settings against what the code reads (none
missing, none extra, none that must stay local, client ids the app identity's), the secrets as Key Vault references
to a vault in infra/ written from @secure() parameters, the containers the code uses created in the right storage
accounts, no key or keyed connection string anywhere (and shared keys and local auth off), and a Key Vault that
`azd up` can recover after `azd down`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from .bicep_model import BicepFile, Setting, dotted
from .checks_base import CheckBase, _parameters_file
from .rules import HOST_SETTINGS, KEY_PATTERNS, KEY_VAULT_REFERENCE, Finding


def _camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def _home(settings: list[Setting], names: Iterable[str], default: str) -> str:
    """Where settings of one kind live (file and variable), to say where a missing one goes."""
    homes = [s.home for s in settings if s.name in set(names)]
    return max(set(homes), key=homes.count) if homes else default


class SettingsChecks(CheckBase):
    """App settings, secrets, containers, no keys, Key Vault soft delete."""

    # -- app settings -----------------------------------------------------------------------------------

    def check_settings(self) -> list[Finding]:
        findings = [*self.setting_problems, *(Finding("settings", problem) for problem in self.code.problems)]
        required = self.code.required()
        code_home = _home(self.settings, self.code.app_settings, "var appSettings in infra/main.bicep")
        definitions_home = _home(
            self.settings, self.code.definition_settings, "var pipelineSettings in infra/main.bicep"
        )
        for name, where in sorted(required.items()):
            if name in self.by_name or name in self.code.secret_settings:
                continue
            home = definitions_home if name in self.code.definition_settings else code_home
            findings.append(
                Finding(
                    "settings",
                    f"app setting {name} is read by {where} but the infrastructure does not set it: "
                    f"add `{name}: {_camel(name)}` to {home} (and `param {_camel(name)} string` in that file)",
                )
            )
        for name, settings in sorted(self.by_name.items()):
            where = ", ".join(sorted({s.home for s in settings}))
            if len(settings) > 1 and not all(s.conditional for s in settings):
                findings.append(Finding("settings", f"app setting {name} is set more than once ({where}): keep one"))
            if name in self.code.forbidden:
                findings.append(
                    Finding(
                        "settings",
                        f"app setting {name} must not be set in Azure ({self.code.forbidden[name]}): remove it from {where}",
                    )
                )
            elif name not in required and name not in HOST_SETTINGS:
                findings.append(
                    Finding(
                        "settings",
                        f"app setting {name} is set by {where} but nothing reads it (not in retraining/settings.py "
                        f"APP_SETTINGS, {self.code.definitions_file}, the bindings, or HOST_SETTINGS in "
                        f"tests/infra/rules.py): remove it, or allow-list it there with the reason it is read",
                    )
                )
        identity = self.app_identity()
        for name, settings in sorted(self.by_name.items()):
            if (
                name.endswith("__clientId")
                and identity
                and any(dotted(s.value) != f"{identity[1]}.properties.clientId" for s in settings)
            ):
                findings.append(
                    Finding(
                        "settings",
                        f"app setting {name} must be the app identity's client id, {identity[1]}.properties.clientId",
                    )
                )
        credential = self.by_name.get("AzureWebJobsStorage__credential", [])
        if not credential or self.infra.literal(credential[0].file, credential[0].value) != "managedidentity":
            findings.append(
                Finding(
                    "settings",
                    "AzureWebJobsStorage__credential must be 'managedidentity' (identity-based host storage)",
                )
            )
        return findings

    # -- secrets ----------------------------------------------------------------------------------------

    def check_secrets(self) -> list[Finding]:
        findings = []
        secret_home = _home(self.settings, self.code.secret_settings, "var secrets in infra/main.bicep")
        vaults = {r.symbol for r in self.infra.of_type("Microsoft.KeyVault/vaults") if not r.existing}
        for name, where in sorted(self.code.secret_settings.items()):
            settings = self.by_name.get(name, [])
            if not settings:
                findings.append(
                    Finding(
                        "secrets",
                        f"secret {name} is named by {where} but no app setting provides it: add "
                        f"`{name}: {_camel(name)}` to {secret_home}, with `@secure() param {_camel(name)} string = ''`",
                    )
                )
                continue
            for setting in settings:
                reference = setting.value if isinstance(setting.value, str) else None
                match = KEY_VAULT_REFERENCE.match(reference or "")
                if not match or (match.group("vault") and match.group("vault") not in vaults):
                    findings.append(
                        Finding(
                            "secrets",
                            f"app setting {name} (secret named by {where}) must be a Key Vault reference "
                            f"@Microsoft.KeyVault(VaultName=${{<vault>.name}};SecretName=...) to a vault in infra/, "
                            f"not {json.dumps(setting.value)[:80]} (var {setting.origin} in infra/{setting.file.name})",
                        )
                    )
                    continue
                if setting.item and f"SecretName=${{toLower(replace({setting.item}.key, '_', '-'))}}" not in (
                    reference or ""
                ):
                    findings.append(
                        Finding(
                            "secrets",
                            f"app setting {name}: the reference's SecretName must be toLower(replace({setting.item}.key, '_', '-')), "
                            "the name the secrets are written under",
                        )
                    )
                findings.extend(self._secret_source(name, setting))
        findings.extend(self._secret_writer())
        return findings

    def _secret_source(self, name: str, setting: Setting) -> list[Finding]:
        """The secret's value comes from a @secure() parameter, and is written to the vault."""
        if setting.item is None:
            return []
        var = setting.file.section("variables").get(setting.origin, {}).get("value", {})
        source = self.infra.objects(setting.file, var.get("loop_type", {}).get("detail", {}).get("object_name"))
        if source is None:
            return [Finding("secrets", f"app setting {name}: cannot find the object of secrets it comes from")]
        file, origin, entries = source
        value = next((v for k, v in entries.items() if k.strip("'") == name), None)
        parameter = file.section("parameters").get(value) if isinstance(value, str) else None
        if parameter is None or not any(d.get("type") == "secure" for d in parameter.get("decorators", [])):
            return [
                Finding(
                    "secrets",
                    f"secret {name} (var {origin} in infra/{file.name}) must come from a @secure() param, not {value!r}",
                )
            ]
        return []

    def _secret_writer(self) -> list[Finding]:
        writers = [
            r
            for r in self.infra.of_type("Microsoft.KeyVault/vaults/secrets")
            if r.loop and r.loop.get("type") == "object"
        ]
        loops = {(r.file.name, r.loop["detail"]["object_name"]) for r in writers if r.loop}
        readers = {
            (s.file.name, s.file.section("variables")[s.origin]["value"]["loop_type"]["detail"]["object_name"])
            for s in self.settings
            if s.item is not None and s.name in self.code.secret_settings
        }
        missing = readers - loops
        return [
            Finding(
                "secrets",
                f"infra/{file} has no Microsoft.KeyVault/vaults/secrets for-expression over {obj}: the secrets "
                "the references point at are never written",
            )
            for file, obj in sorted(missing)
        ]

    # -- containers -------------------------------------------------------------------------------------

    def containers_in(self, account: tuple[BicepFile, str]) -> tuple[dict[str, str], list[Finding]]:
        """Container name -> where it is declared, for one storage account."""
        file, symbol = account
        names: dict[str, str] = {}
        problems = []
        for resource in self.infra.of_type("Microsoft.Storage/storageAccounts/blobServices/containers"):
            if resource.file is not file:
                continue
            parent = dotted(resource.body.get("parent")) or resource.symbol
            if parent.split("__")[0] != symbol:
                continue
            if resource.loop:
                found = self.infra.arrays(file, resource.loop["detail"].get("array_name"))
                if found is None:
                    problems.append(
                        Finding(
                            "containers",
                            f"infra/{file.name} {resource.symbol}: cannot find the list of container names it loops over",
                        )
                    )
                    continue
                source_file, origin, items = found
                for item in items:
                    literal = self.infra.literal(source_file, item)
                    if literal is None:
                        problems.append(
                            Finding(
                                "containers",
                                f"container {item!r} in var {origin} in infra/{source_file.name} has no value "
                                "before deployment: give it a literal or a param with a default",
                            )
                        )
                    else:
                        names[literal] = f"var {origin} in infra/{source_file.name}"
            else:
                literal = self.infra.literal(file, resource.body.get("name"))
                if literal:
                    names[literal] = f"{resource.symbol} in infra/{file.name}"
        return names, problems

    def check_containers(self) -> list[Finding]:
        account = self._storage_symbol("TrainingStorage__blobServiceUri")
        if account is None:
            return [
                Finding(
                    "containers",
                    "TrainingStorage__blobServiceUri must be <storage account>.properties.primaryEndpoints.blob",
                )
            ]
        names, findings = self.containers_in(account)
        for setting in self.code.container_settings:
            unknown = [s for s in self.by_name.get(setting, []) if self.infra.literal(s.file, s.value) is None]
            findings.extend(
                Finding(
                    "containers",
                    f"app setting {setting} (var {s.origin} in infra/{s.file.name}) names a container but has "
                    "no value before deployment: give it a literal or a param with a default",
                )
                for s in unknown
            )
        homes = sorted(set(names.values()), key=lambda home: (not home.startswith("var "), home))  # the list first
        home = homes[0] if homes else f"a containers resource under {account[1]} in infra/{account[0].name}"
        for container, where in sorted(self.code.containers.items()):
            if container not in names:
                findings.append(
                    Finding(
                        "containers",
                        f"container '{container}' ({where}) is not created in the training storage account "
                        f"{account[1]}: add '{container}' to {home}",
                    )
                )
        host = self._storage_symbol("AzureWebJobsStorage__blobServiceUri")
        app = self.infra.function_app()
        deployment = (
            (((app.body.get("properties") or {}).get("functionAppConfig") or {}).get("deployment") or {}).get("storage")
            if app
            else None
        )
        match = re.fullmatch(
            r"\$\{(\w+)\.properties\.primaryEndpoints\.blob\}\$\{(\w+)\}", str((deployment or {}).get("value", ""))
        )
        if host is None or match is None or match.group(1) != host[1]:
            findings.append(
                Finding(
                    "containers",
                    "functionAppConfig.deployment.storage.value must be "
                    "'${<host storage>.properties.primaryEndpoints.blob}${<container name>}'",
                )
            )
        else:
            deployment_container = self.infra.literal(host[0], match.group(2))
            if deployment_container not in self.containers_in(host)[0]:
                findings.append(
                    Finding(
                        "containers",
                        f"the deployment container '{deployment_container}' is not created in the host storage account {host[1]}",
                    )
                )
        return findings

    # -- no keys ----------------------------------------------------------------------------------------

    def check_no_keys(self) -> list[Finding]:
        findings = []
        for path in sorted(
            p
            for p in self.infra.root.rglob("*")
            if p.is_file() and p.suffix in (".bicep", ".json", ".sh", ".ps1", ".yaml")
        ):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("//", 1)[0] if path.suffix == ".bicep" else line
                for pattern in KEY_PATTERNS:
                    if pattern.search(code):
                        findings.append(
                            Finding(
                                "no keys",
                                f"{path.relative_to(self.infra.root.parent)}:{number} handles a key or keyed "
                                f"connection string ({pattern.pattern}): use the managed identity",
                            )
                        )
        for account in self.infra.of_type("Microsoft.Storage/storageAccounts"):
            if not account.existing and (account.body.get("properties") or {}).get("allowSharedKeyAccess") is not False:
                findings.append(
                    Finding(
                        "no keys",
                        f"storage account {account.symbol} in infra/{account.file.name} must set allowSharedKeyAccess: false",
                    )
                )
        for component in self.infra.of_type("Microsoft.Insights/components"):
            if (component.body.get("properties") or {}).get("DisableLocalAuth") is not True:
                findings.append(
                    Finding(
                        "no keys", f"{component.symbol} in infra/{component.file.name} must set DisableLocalAuth: true"
                    )
                )
        for vault in self.infra.of_type("Microsoft.KeyVault/vaults"):
            if not vault.existing and (vault.body.get("properties") or {}).get("enableRbacAuthorization") is not True:
                findings.append(
                    Finding(
                        "no keys", f"{vault.symbol} in infra/{vault.file.name} must set enableRbacAuthorization: true"
                    )
                )
        return findings

    # -- Key Vault soft delete ---------------------------------------------------------------------------

    def check_key_vault(self) -> list[Finding]:
        """`azd down` without --purge leaves the vault soft-deleted under its name; `azd up` must have a way back
        in: createMode from a parameter that allows 'recover', mapped in main.parameters.json."""
        findings = []
        mapped = _parameters_file(self.infra.root)
        for vault in self.infra.of_type("Microsoft.KeyVault/vaults"):
            if vault.existing:
                continue
            node = (vault.body.get("properties") or {}).get("createMode")
            source_file, source = self.infra.origin(vault.file, node)
            parameter = source_file.section("parameters").get(source) if isinstance(source, str) else None
            allowed = [
                value
                for decorator in (parameter or {}).get("decorators", [])
                if decorator.get("type") == "allowed"
                for value in decorator.get("argument", [])
            ]
            if parameter is None or "recover" not in allowed or source not in mapped:
                findings.append(
                    Finding(
                        "key vault",
                        f"{vault.symbol} in infra/{vault.file.name}: properties.createMode must come from a parameter "
                        "allowing 'default' and 'recover', set from main.parameters.json, so `azd up` after `azd down` "
                        "without --purge can take back the soft-deleted vault of the same name",
                    )
                )
        return findings
