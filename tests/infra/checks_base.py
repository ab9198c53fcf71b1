"""What every check of the infra check shares: CheckBase parses one infra/ directory, collects the Function App's
settings (by name) and derives what the code reads from the values they give; and it has the lookups more than one
check makes: the storage account a setting points at, the app's user-assigned identity, the role assignments with the
role GUIDs they grant, and an Event Grid subscription's topic and target function. Each concern's checks are a
subclass of it (checks_settings, checks_identity, checks_event_grid, checks_host), combined into
infra_check.Check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .bicep_model import BicepFile, Infra, Resource, Setting, dotted
from .code_reads import derive_code_reads
from .rules import (
    AML_EVENT_PREFIX,
    AML_TOPIC,
    FUNCTION_APP_TYPE,
    GUID,
    INFRA,
    ROLE_ASSIGNMENT_TYPE,
    ROLE_DEFINITION_TYPE,
    SYSTEM_TOPIC_TYPE,
)

# ---- The checks -------------------------------------------------------------------------------------------


class CheckBase:
    """The state the checks share, and the lookups more than one of them makes."""

    def __init__(self, root: Path = INFRA, **derive: Any) -> None:
        self.infra = Infra(root)
        self.settings, self.setting_problems = self.infra.settings()
        self.by_name: dict[str, list[Setting]] = {}
        for setting in self.settings:
            self.by_name.setdefault(setting.name, []).append(setting)
        values = {s.name: self.infra.literal(s.file, s.value) for s in self.settings}
        self.code = derive_code_reads(values, **derive)

    # -- what several checks look up -------------------------------------------------------------------

    def _storage_symbol(self, setting: str) -> tuple[BicepFile, str] | None:
        settings = self.by_name.get(setting, [])
        path = dotted(settings[0].value) if settings else None
        if not path or not path.endswith(".properties.primaryEndpoints.blob"):
            return None
        return settings[0].file, path.split(".")[0]

    def app_identity(self) -> tuple[BicepFile, str] | None:
        app = self.infra.function_app()
        identities = (app.body.get("identity") or {}).get("userAssignedIdentities") if app else None
        keys = list(identities or {})
        match = re.fullmatch(r"'?\$\{(\w+)\.id\}'?", keys[0]) if len(keys) == 1 else None
        return (app.file, match.group(1)) if app and match else None

    def assignments(self) -> list[tuple[Resource, set[str], tuple[BicepFile, Any], tuple[BicepFile, Any]]]:
        """(assignment, role GUIDs, scope, principal), each followed to where it is defined."""
        found = []
        for resource in self.infra.of_type(ROLE_ASSIGNMENT_TYPE):
            properties = resource.body.get("properties") or {}
            guids = set(self._guids(resource.file, properties.get("roleDefinitionId")))
            principal = self.infra.origin(resource.file, dotted(properties.get("principalId")))
            found.append((resource, guids, (resource.file, dotted(resource.body.get("scope"))), principal))
        return found

    def _guids(self, file: BicepFile, node: Any) -> Iterator[str]:
        """Role definition GUIDs in an expression, through variables (`roles.x`) as well as literals."""
        chain = dotted(node)
        if chain is not None:
            head, _, rest = chain.partition(".")
            definition = file.section("resources").get(head)
            if rest == "id" and definition and definition.get("type") == ROLE_DEFINITION_TYPE:
                yield f"custom:{head}"
                return
            source_file, source = self.infra.origin(file, head)
            if rest and isinstance(source, dict):
                source = source.get(rest)
            yield from GUID.findall(str(source if isinstance(source, str) else chain))
        elif isinstance(node, dict):
            for value in node.values():
                yield from self._guids(file, value)
        elif isinstance(node, list):
            for value in node:
                yield from self._guids(file, value)

    # -- Event Grid subscriptions ---------------------------------------------------------------------

    def _function_target(self, subscription: Resource) -> str | None:
        """The function of the app a subscription delivers to: endpointType AzureFunction, resourceId
        '${<Function App>.id}/functions/<name>' (the app's id may come through module parameters)."""
        destination = (subscription.body.get("properties") or {}).get("destination") or {}
        target = (destination.get("properties") or {}).get("resourceId")
        match = re.fullmatch(r"\$\{([\w.]+)\}/functions/(\w+)", target) if isinstance(target, str) else None
        if destination.get("endpointType") != "AzureFunction" or match is None:
            return None
        file, app = self.infra.origin(subscription.file, match.group(1))
        app_path = dotted(app)
        head, _, rest = (app_path or "").partition(".")
        site = file.section("resources").get(head)
        return (
            match.group(2)
            if rest == "id" and site and str(site.get("type", "")).lower() == FUNCTION_APP_TYPE.lower()
            else None
        )

    def _topic(self, subscription: Resource) -> Resource | None:
        parent = dotted(subscription.body.get("parent")) or (
            subscription.symbol.split("__")[0] if "__" in subscription.symbol else None
        )
        return next(
            (t for t in self.infra.of_type(SYSTEM_TOPIC_TYPE) if t.file is subscription.file and t.symbol == parent),
            None,
        )

    def _is_azure_ml(self, subscription: Resource) -> bool:
        """A subscription to Azure ML events: on a workspace's system topic, or (its topic declared elsewhere)
        including only Azure ML event types. The others are storage subscriptions."""
        topic = self._topic(subscription)
        if topic is not None and not topic.existing:
            return (topic.body.get("properties") or {}).get("topicType") == AML_TOPIC
        types = ((subscription.body.get("properties") or {}).get("filter") or {}).get("includedEventTypes")
        return isinstance(types, list) and bool(types) and all(str(t).startswith(AML_EVENT_PREFIX) for t in types)


def _parameters_file_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else "{}"


def _parameters_file(root: Path) -> dict[str, str]:
    """main.bicep parameter -> the value main.parameters.json gives it (`${ENV=default}`)."""
    parameters = json.loads(_parameters_file_text(root / "main.parameters.json")).get("parameters", {})
    return {name: str(entry.get("value")) for name, entry in parameters.items() if isinstance(entry, dict)}
