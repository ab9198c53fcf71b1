"""The infra check's checks on the app's identity and Azure ML: every role in ROLES assigned to the app's user-assigned
identity at its scope (found from what the settings point at) and commented with the call that needs it; with an
Azure ML pipeline, the client id its credential signs in with, the workspace's Event Grid system topic and a
subscription whose filter lets every job end the code acts on through to the app, and the least-privilege custom
role on the workspace holding exactly AML_ACTIONS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from retraining.services.azure_ml.events import RUN_COMPLETED, RUN_STATUS_CHANGED, TERMINAL

from .bicep_model import BicepFile, Resource, dotted, unwrap
from .checks_base import CheckBase
from .rules import (
    AML_ACTIONS,
    AML_DATA_ACTIONS,
    AML_EVENT_DATA,
    AML_REFUSED,
    AML_TOPIC,
    KEY_VAULT_REFERENCE,
    POST_DEPLOY,
    ROLE_ASSIGNMENT_TYPE,
    ROLE_DEFINITION_TYPE,
    ROLES,
    SUBSCRIPTION_TYPE,
    SYSTEM_TOPIC_TYPE,
    WORKSPACE_TYPE,
    Finding,
)


class IdentityChecks(CheckBase):
    """The app identity's roles; Azure ML's client ids, job events and least-privilege role."""

    # -- roles ------------------------------------------------------------------------------------------

    def scopes(self) -> dict[str, tuple[BicepFile, str] | None]:
        """Each role scope of ROLES -> the resource that is it, found from what the settings point at. Roles are
        provisioned: resources only the post-deploy template declares (events.bicep reads the workspace too) are not scopes."""

        def by_type(type_: str) -> tuple[BicepFile, str] | None:
            found = [r for r in self.infra.of_type(type_) if self.infra.provisioned(r.file)]
            return (found[0].file, found[0].symbol) if len(found) == 1 else None

        secrets = [s for s in self.settings if s.name in self.code.secret_settings and isinstance(s.value, str)]
        vault = KEY_VAULT_REFERENCE.match(secrets[0].value) if secrets else None
        insights = self.by_name.get("APPLICATIONINSIGHTS_CONNECTION_STRING", [])
        insights_path = dotted(insights[0].value) if insights else None
        workspace = by_type(WORKSPACE_TYPE)
        return {
            "host storage": self._storage_symbol("AzureWebJobsStorage__blobServiceUri"),
            "training storage": self._storage_symbol("TrainingStorage__blobServiceUri"),
            "key vault": (secrets[0].file, vault.group("vault")) if vault and vault.group("vault") else None,
            "application insights": (insights[0].file, insights_path.split(".")[0]) if insights_path else None,
            "azure ml workspace": workspace,
            "azure ml workspace storage": self._workspace_storage(workspace) if workspace else None,
            "durable task scheduler": by_type("Microsoft.DurableTask/schedulers/taskHubs")
            or by_type("Microsoft.DurableTask/schedulers"),
        }

    def _workspace_storage(self, workspace: tuple[BicepFile, str]) -> tuple[BicepFile, str] | None:
        """The existing storage account named from the workspace's properties.storageAccount. That id is a runtime
        value and a role's scope must be known when the deployment starts, so it reaches the account through a
        module parameter: the account's name uses a parameter the workspace's file passes that property to."""
        file, symbol = workspace
        expected = (file.name, f"{symbol}.properties.storageAccount")
        for account in self.infra.of_type("Microsoft.Storage/storageAccounts"):
            if not account.existing or not self.infra.provisioned(account.file):
                continue
            used = set(_strings(account.body.get("name"))) & set(account.file.section("parameters"))
            if not any(self._from(account.file, name) == expected for name in used):
                continue
            # Hub-based and bring-your-own-storage workspaces keep the account in another resource group: the
            # module deploying the assignment must be scoped from the same id, not left in the workspace's group.
            for caller in self.infra.files.values():
                for module in caller.section("modules").values():
                    if (caller.path.parent / module["detail"]["path"]).resolve() != account.file.path.resolve():
                        continue
                    _, _, body = unwrap(module.get("config"))
                    names = set(_strings(self._expand(caller, body.get("scope")))) & set(caller.section("parameters"))
                    if any(self._from(caller, name) == expected for name in names):
                        return account.file, account.symbol
        return None

    def _from(self, file: BicepFile, name: str) -> tuple[str, str | None]:
        """(file, dotted expression) a parameter's value comes from, through the modules that pass it."""
        source_file, source = self.infra.origin(file, name)
        return source_file.name, dotted(source)

    def _expand(self, file: BicepFile, node: Any, depth: int = 0) -> Any:
        """An expression with the variables it names replaced by their values."""
        if isinstance(node, str) and node in file.section("variables") and depth < 10:
            return self._expand(file, file.section("variables")[node]["value"], depth + 1)
        if isinstance(node, dict):
            return {key: self._expand(file, value, depth) for key, value in node.items()}
        if isinstance(node, list):
            return [self._expand(file, value, depth) for value in node]
        return node

    def check_roles(self) -> list[Finding]:
        findings = []
        identity = self.app_identity()
        if identity is None:
            return [
                Finding(
                    "roles", "the Function App must have exactly one user-assigned identity, '${<identity>.id}': {}"
                )
            ]
        principal = (identity[0].name, f"{identity[1]}.properties.principalId")
        scopes = self.scopes()
        assignments = self.assignments()
        for role in ROLES:
            scope = scopes.get(role.scope)
            if scope is None:
                findings.append(
                    Finding(
                        "roles", f"cannot find the {role.scope} that {role.name} must be assigned on ({role.needed_by})"
                    )
                )
                continue
            ok = [
                a
                for a, guids, (file, at), (pfile, who) in assignments
                if (role.guid in guids or (role.custom and any(g.startswith("custom:") for g in guids)))
                and (file, at) == scope
                and (pfile.name, who) == principal
            ]
            if not ok:
                findings.append(
                    Finding(
                        "roles",
                        f"role {role.name} ({role.guid}) on the {role.scope} ({scope[1]} in infra/{scope[0].name}) "
                        f"is not assigned to the app's identity {identity[1]}; needed by {role.needed_by}: add a "
                        f"{ROLE_ASSIGNMENT_TYPE} with scope {scope[1]}, principalId {principal[1]}, commented with that call",
                    )
                )
        for resource, _, _, (pfile, who) in assignments:
            comment = _comment_above(resource.file.text, f"resource {resource.symbol.split('__')[-1]} ")
            if (pfile.name, who) == principal and not comment:
                findings.append(
                    Finding(
                        "roles",
                        f"role assignment {resource.symbol} in infra/{resource.file.name} has no comment naming the call that needs it",
                    )
                )
        return findings

    # -- Azure ML ---------------------------------------------------------------------------------------

    def check_azure_ml(self) -> list[Finding]:
        """With an Azure ML pipeline: the workspace's system topic, a subscription that delivers the job events the
        code acts on to an Event Grid function of the app, and the client id its credential signs in with."""
        pipelines = self.code.aml_pipelines
        if not pipelines:
            return []
        who = ", ".join(f"{p.name} ({p.where})" for p in pipelines)
        findings = self._aml_client_ids()
        topics = [
            t
            for t in self.infra.of_type(SYSTEM_TOPIC_TYPE)
            if not t.existing and (t.body.get("properties") or {}).get("topicType") == AML_TOPIC
        ]
        for topic in topics:
            findings.extend(self._aml_topic(topic))
        if not topics:
            findings.append(
                Finding(
                    "azure ml",
                    f"no Event Grid system topic (topicType {AML_TOPIC}) on the Azure ML workspace of pipeline {who}: "
                    f"add one, source <workspace>.id, in infra/aml-events.bicep",
                )
            )
        subscriptions = [s for s in self.infra.of_type(SUBSCRIPTION_TYPE) if self._is_azure_ml(s)]
        for subscription in subscriptions:
            findings.extend(self._aml_subscription(subscription, topics))
        if not subscriptions:
            functions = ", ".join(self.code.event_grid_functions) or "none has an eventGridTrigger binding"
            findings.append(
                Finding(
                    "azure ml",
                    f"no Event Grid subscription delivering {RUN_STATUS_CHANGED} and {RUN_COMPLETED} from the "
                    f"workspace's system topic to an Event Grid function of the app ({functions}), for pipeline {who}: "
                    "add one to infra/aml-events.bicep, deployed by infra/events.bicep",
                )
            )
        return findings

    def _aml_client_ids(self) -> list[Finding]:
        """retraining/services/azure_ml/workspace.py credential_of: without a secret, the managed identity with the
        credential's client id signs in; the app has one user-assigned identity, so that must be the default."""
        identity = self.app_identity()
        if identity is None:
            return []  # check_roles says so
        expected = f"{identity[1]}.properties.clientId"
        findings = []
        for pipeline in self.code.aml_pipelines:
            if pipeline.client_id_setting is None:
                findings.append(
                    Finding(
                        "azure ml",
                        f"pipeline {pipeline.name}: {pipeline.client_id_where} must be a %SETTING% the infrastructure "
                        f"sets to the app identity's client id ({expected})",
                    )
                )
                continue
            for setting in self.by_name.get(pipeline.client_id_setting, []):
                if not _defaults_to(setting.value, expected):
                    findings.append(
                        Finding(
                            "azure ml",
                            f"app setting {setting.name} ({pipeline.client_id_where}) must default to the app identity's "
                            f"client id, {expected}: without a secret the pipeline signs in as the user-assigned "
                            f"identity with that client id (retraining/services/azure_ml/workspace.py credential_of); "
                            f"{setting.home}",
                        )
                    )
        return findings

    def _aml_topic(self, topic: Resource) -> list[Finding]:
        where = f"system topic {topic.symbol} in infra/{topic.file.name}"
        findings = []
        source = dotted((topic.body.get("properties") or {}).get("source")) or ""
        head, _, rest = source.partition(".")
        workspace = topic.file.section("resources").get(head)
        if rest != "id" or not workspace or str(workspace.get("type", "")).lower() != WORKSPACE_TYPE.lower():
            findings.append(Finding("azure ml", f"{where}: source must be <workspace>.id, a {WORKSPACE_TYPE} resource"))
        file, location = self.infra.origin(topic.file, topic.body.get("location"))
        declared = {dotted(branch) for branch in _branches(location)}
        workspaces = {
            f"{symbol}.location"
            for symbol, resource in file.section("resources").items()
            if str(resource.get("type", "")).lower() == WORKSPACE_TYPE.lower()
        }
        if not declared & workspaces:
            findings.append(
                Finding(
                    "azure ml",
                    f"{where}: location must be the workspace's (<workspace>.location, passed in as a module "
                    "parameter): a system topic lives in its source's region",
                )
            )
        return findings

    def _aml_subscription(self, subscription: Resource, topics: list[Resource]) -> list[Finding]:
        where = f"Azure ML subscription {subscription.symbol} in infra/{subscription.file.name}"
        properties = subscription.body.get("properties") or {}
        destination = (properties.get("destination") or {}).get("properties") or {}
        filter_ = properties.get("filter") or {}
        problems = []
        if self._topic(subscription) not in topics:
            problems.append(f"must be on the workspace's system topic (topicType {AML_TOPIC}), its parent")
        roots = self.infra.roots(subscription.file)
        if roots != {POST_DEPLOY}:
            problems.append(
                f"must be deployed by infra/{POST_DEPLOY} alone, after the code (deployed from {', '.join(sorted(roots))})"
            )
        function = self._function_target(subscription)
        if function not in self.code.event_grid_functions:
            problems.append(
                f"must deliver to an Event Grid function of the app ({', '.join(self.code.event_grid_functions)}): endpointType "
                "'AzureFunction', resourceId '${<Function App>.id}/functions/<function>'"
            )
        types = filter_.get("includedEventTypes")
        missing = [t for t in (RUN_STATUS_CHANGED, RUN_COMPLETED) if not isinstance(types, list) or t not in types]
        if missing:
            problems.append(
                f"includedEventTypes lacks {', '.join(missing)} (retraining/services/azure_ml/events.py acts on both)"
            )
        if properties.get("eventDeliverySchema") != "EventGridSchema":
            problems.append("eventDeliverySchema must be 'EventGridSchema' (the trigger takes a func.EventGridEvent)")
        if destination.get("maxEventsPerBatch") != 1:
            problems.append("maxEventsPerBatch must be 1 (the trigger takes one event)")
        if not properties.get("retryPolicy"):
            problems.append("set a retryPolicy")
        for event_type, data in _aml_job_ends():
            outcome = _filter_passes(filter_, event_type, data)
            if outcome is None:
                problems.append(
                    f"cannot evaluate its filter (a subject filter, an advanced filter on a key other than eventType and "
                    f"data.{', data.'.join(AML_EVENT_DATA)}, or an operator other than StringIn, StringNotIn, IsNotNull and "
                    f"IsNullOrUndefined), so cannot tell it lets every job end through: {json.dumps(filter_)[:200]}"
                )
                break
            if outcome is False and isinstance(types, list) and event_type in types:
                problems.append(
                    f"its filter drops {event_type} {json.dumps(data)}, a job's end the code acts on (a key an event lacks "
                    "fails StringIn and passes StringNotIn)"
                )
        return [Finding("azure ml", f"{where}: {problem}") for problem in problems]

    # -- Azure ML least privilege ------------------------------------------------------------------------

    def check_aml_role(self) -> list[Finding]:
        """The app's role on the workspace holds exactly the actions its calls need (AML_ACTIONS), each commented
        in place, and none that hands out a secret; the built-in role is only an opt-in."""
        workspaces = [w for w in self.infra.of_type(WORKSPACE_TYPE) if self.infra.provisioned(w.file)]
        if not workspaces or not self.code.aml_pipelines:
            return []
        file = workspaces[0].file
        definitions = [r for r in self.infra.of_type(ROLE_DEFINITION_TYPE) if r.file is file]
        if len(definitions) != 1:
            return [
                Finding(
                    "azure ml",
                    f"infra/{file.name} must define one least-privilege custom role ({ROLE_DEFINITION_TYPE}) for the "
                    "app on the workspace: AzureML Data Scientist includes datastores/listsecrets/action",
                )
            ]
        role = definitions[0]
        findings = []
        permissions = (role.body.get("properties") or {}).get("permissions") or [{}]
        for field_name, expected in (("actions", AML_ACTIONS), ("dataActions", AML_DATA_ACTIONS)):
            held = [a for p in permissions for a in (p.get(field_name) or []) if isinstance(a, str)]
            for action in held:
                refused = [
                    r for r in AML_REFUSED if r in action and not action.endswith("onlineEndpoints/listKeys/action")
                ]
                if refused or action not in expected:
                    findings.append(
                        Finding(
                            "azure ml",
                            f"role {role.symbol} in infra/{file.name}: {field_name} {action} is not needed by any call "
                            f"the app makes{' and hands out more than the app needs' if refused else ''}",
                        )
                    )
                elif not _commented(file.text, action):
                    findings.append(
                        Finding(
                            "azure ml",
                            f"role {role.symbol} in infra/{file.name}: {action} has no comment naming the call that "
                            f"needs it ({expected[action]})",
                        )
                    )
            for action, call in expected.items():
                if action not in held:
                    findings.append(
                        Finding(
                            "azure ml",
                            f"role {role.symbol} in infra/{file.name}: {field_name} lacks {action}, needed by {call}",
                        )
                    )
        uses = [
            a
            for a, guids, _, _ in self.assignments()
            if a.file is file
            and f"custom:{role.symbol}" in guids
            and any(
                dotted(b) == f"{role.symbol}.id"
                for b in _branches((a.body.get("properties") or {}).get("roleDefinitionId"))
            )
        ]
        if not uses:
            findings.append(
                Finding("azure ml", f"no role assignment in infra/{file.name} assigns the custom role {role.symbol}")
            )
        return findings


def _commented(text: str, action: str) -> bool:
    """An action string in a list has a // comment above it, directly or above the actions grouped with it."""
    lines = text.splitlines()
    index = next((i for i, line in enumerate(lines) if line.strip() == f"'{action}'"), None)
    while index is not None and index > 0:
        index -= 1
        above = lines[index].strip()
        if above.startswith("//"):
            return True
        if not (above.startswith("'") and above.endswith("'")):
            return False
    return False


def _strings(node: Any) -> Iterator[str]:
    """Every string in a parsed expression."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _branches(node: Any) -> list[Any]:
    """A value, or the two values of a conditional (`cond ? a : b`)."""
    operator = node.get("operator", {}) if isinstance(node, dict) else {}
    if operator.get("type") == "conditional":
        return [operator["operands"].get("true_value"), operator["operands"].get("false_value")]
    return [node]


def _defaults_to(node: Any, expected: str) -> bool:
    """The value is `expected`, or a conditional one of whose branches is (an override, defaulting to it)."""
    return any(dotted(branch) == expected for branch in _branches(node))


def _aml_job_ends() -> list[tuple[str, dict[str, str]]]:
    """The events retraining/services/azure_ml/events.py treats as a job's end, as Azure ML sends them:
    RunStatusChanged with each terminal runStatus (capitalised, as the service writes it), and RunCompleted,
    whose data has no runStatus."""
    return [*((RUN_STATUS_CHANGED, {"runStatus": status.capitalize()}) for status in TERMINAL), (RUN_COMPLETED, {})]


def _filter_passes(filter_: dict[str, Any], event_type: str, data: dict[str, str]) -> bool | None:
    """Whether Event Grid delivers an event through a subscription's filter; None when it cannot be evaluated here.
    Advanced filters are ANDed, their values ORed, strings compared without case; a missing key fails every
    operator but StringNotIn, NumberNotIn and IsNullOrUndefined (learn.microsoft.com/azure/event-grid/event-filtering)."""
    if filter_.get("subjectBeginsWith") or filter_.get("subjectEndsWith"):
        return None
    types = filter_.get("includedEventTypes")
    if isinstance(types, list) and types and event_type not in types:
        return False
    for advanced in filter_.get("advancedFilters") or []:
        key, operator = advanced.get("key"), advanced.get("operatorType")
        if key == "eventType":
            value: str | None = event_type
        elif isinstance(key, str) and key.startswith("data.") and key.removeprefix("data.") in AML_EVENT_DATA:
            value = data.get(key.removeprefix("data."))
        else:
            return None  # a key the sample events do not model
        listed = advanced.get("values") or []
        if not isinstance(listed, list):
            return None  # a variable: not followed here
        values = [str(v).lower() for v in listed]
        if operator == "StringIn":
            passes = value is not None and value.lower() in values
        elif operator == "StringNotIn":
            passes = value is None or value.lower() not in values
        elif operator == "IsNotNull":
            passes = value is not None
        elif operator == "IsNullOrUndefined":
            passes = value is None
        else:
            return None
        if not passes:
            return False
    return True


def _comment_above(text: str, declaration: str) -> str:
    """The // comment lines directly above a declaration."""
    lines = text.splitlines()
    index = next((i for i, line in enumerate(lines) if line.startswith(declaration)), None)
    comments: list[str] = []
    while index is not None and index > 0 and lines[index - 1].lstrip().startswith("//"):
        index -= 1
        comments.insert(0, lines[index].lstrip("/ "))
    return " ".join(comments)
