"""The infra check's checks on the storage events that start the pipelines: the training storage account's Event Grid
system topic, a BlobCreated subscription to the app's Event Grid function for each pipeline's watched container and
glob (as subject filters, with the advanced filter that skips empty files), and a dead-letter destination for each,
written by the system topic's own identity with a role on the training account.
"""

from __future__ import annotations

import re
from typing import Any

from .bicep_model import Resource, dotted
from .checks_base import CheckBase
from .rules import STORAGE_TOPIC, SUBSCRIPTION_TYPE, SYSTEM_TOPIC_TYPE, Finding


class EventGridChecks(CheckBase):
    """Blob events: the system topic, a subscription per watch, dead-lettering."""

    # -- Event Grid -------------------------------------------------------------------------------------

    def check_event_grid(self) -> list[Finding]:
        """Storage: the training account's system topic, and a BlobCreated subscription for each pipeline's watch."""
        findings = []
        training = self._storage_symbol("TrainingStorage__blobServiceUri")
        topics = [t.body.get("properties") or {} for t in self.infra.of_type(SYSTEM_TOPIC_TYPE) if not t.existing]
        if training is None or not any(
            t.get("topicType") == STORAGE_TOPIC and dotted(t.get("source")) == f"{training[1]}.id" for t in topics
        ):
            findings.append(
                Finding(
                    "event grid",
                    f"no Event Grid system topic (topicType {STORAGE_TOPIC}) on the training storage account",
                )
            )
        every = self.infra.of_type(SUBSCRIPTION_TYPE)
        subscriptions = [s for s in every if not self._is_azure_ml(s)]
        # The functions new data goes to: the Event Grid functions, less those Azure ML subscriptions deliver to.
        aml_functions = {self._function_target(s) for s in every if self._is_azure_ml(s)}
        functions = [f for f in self.code.event_grid_functions if f not in aml_functions] or list(
            self.code.event_grid_functions
        )
        delivered: dict[tuple[str, str, str], str] = {}
        for function in functions:
            for subscription in subscriptions:
                properties = subscription.body.get("properties") or {}
                destination = properties.get("destination") or {}
                target = str((destination.get("properties") or {}).get("resourceId", ""))
                if destination.get("endpointType") != "AzureFunction" or not target.endswith(f"/functions/{function}"):
                    continue
                found, problems = self._subscription_filters(subscription, properties.get("filter") or {})
                findings.extend(problems)
                findings.extend(self._dead_letter(subscription, properties))
                delivered.update({key: f"{subscription.symbol} in infra/{subscription.file.name}" for key in found})
        if not self.code.event_grid_functions:
            findings.append(
                Finding("event grid", "no function has an eventGridTrigger binding, yet pipelines watch for new blobs")
            )
        for watch in self.code.watches:
            prefix, suffix = watch.filters()
            if (watch.container, prefix, suffix) not in delivered:
                near = [k for k in delivered if k[0] == watch.container]
                findings.append(
                    Finding(
                        "event grid",
                        f"no BlobCreated subscription to {', '.join(functions)} for pipeline "
                        f"{watch.pipeline} ({watch.where} '{watch.glob}' in container '{watch.container}'): "
                        f"add {{ pipeline: '{watch.pipeline}', container: '{watch.container}', blobPrefix: '{prefix}', "
                        f"blobSuffix: '{suffix}' }} to var watches in infra/events.bicep"
                        + (f" (found filters {near})" if near else ""),
                    )
                )
        return findings

    def _subscription_filters(
        self, subscription: Resource, filter_: dict[str, Any]
    ) -> tuple[list[tuple[str, str, str]], list[Finding]]:
        """The (container, blob prefix, blob suffix) filters a subscription (or each of a for-expression) has."""
        where = f"{subscription.symbol} in infra/{subscription.file.name}"
        problems = []
        if filter_.get("includedEventTypes") != ["Microsoft.Storage.BlobCreated"]:
            problems.append(
                Finding("event grid", f"{where}: includedEventTypes must be ['Microsoft.Storage.BlobCreated']")
            )
        advanced = filter_.get("advancedFilters") or []
        if not any(
            f.get("operatorType") == "NumberGreaterThan"
            and f.get("key") == "data.contentLength"
            and f.get("value") == 0
            for f in advanced
        ):
            problems.append(
                Finding(
                    "event grid",
                    f"{where}: add the advanced filter NumberGreaterThan data.contentLength 0 "
                    "(an ADLS Gen2 CreateFile raises BlobCreated for an empty file)",
                )
            )
        begins, ends = filter_.get("subjectBeginsWith"), filter_.get("subjectEndsWith")
        if subscription.loop is None:
            match = re.fullmatch(r"/blobServices/default/containers/([^/]+)/blobs/(.*)", str(begins))
            return ([(match.group(1), match.group(2), str(ends or ""))] if match else []), problems
        item = subscription.loop["detail"].get("item_name")
        pattern = f"/blobServices/default/containers/${{{item}.container}}/blobs/${{{item}.blobPrefix}}"
        if begins != pattern or dotted(ends) != f"{item}.blobSuffix":
            problems.append(
                Finding(
                    "event grid",
                    f"{where}: filter must be subjectBeginsWith '{pattern}', subjectEndsWith {item}.blobSuffix",
                )
            )
            return [], problems
        found = self.infra.arrays(subscription.file, subscription.loop["detail"].get("array_name"))
        if found is None:
            return [], [*problems, Finding("event grid", f"{where}: cannot find the list it loops over")]
        file, _, entries = found
        return [
            (
                str(self.infra.literal(file, e.get("container"))),
                str(self.infra.literal(file, e.get("blobPrefix")) or ""),
                str(self.infra.literal(file, e.get("blobSuffix")) or ""),
            )
            for e in entries
            if isinstance(e, dict)
        ], problems

    # -- dead-lettering ----------------------------------------------------------------------------------

    def _dead_letter(self, subscription: Resource, properties: dict[str, Any]) -> list[Finding]:
        """A blob event that cannot be delivered within its time to live is written to a container of the training
        account by the system topic's own identity (shared keys are off), which holds a role there."""
        where = f"subscription {subscription.symbol} in infra/{subscription.file.name}"
        dead = properties.get("deadLetterWithResourceIdentity") or {}
        destination = dead.get("deadLetterDestination") or {}
        target = destination.get("properties") or {}
        if (
            (dead.get("identity") or {}).get("type") != "SystemAssigned"
            or destination.get("endpointType") != "StorageBlob"
            or not target.get("resourceId")
            or not target.get("blobContainerName")
        ):
            return [
                Finding(
                    "event grid",
                    f"{where} has no dead-letter destination: events are dropped after their time to live; add "
                    "deadLetterWithResourceIdentity { identity: { type: 'SystemAssigned' }, deadLetterDestination: "
                    "{ endpointType: 'StorageBlob', properties: { resourceId, blobContainerName } } }",
                )
            ]
        topics = [
            t
            for t in self.infra.of_type(SYSTEM_TOPIC_TYPE)
            if not t.existing and (t.body.get("properties") or {}).get("topicType") == STORAGE_TOPIC
        ]
        findings = []
        for topic in topics:
            if (topic.body.get("identity") or {}).get("type") != "SystemAssigned":
                findings.append(
                    Finding(
                        "event grid",
                        f"system topic {topic.symbol} in infra/{topic.file.name} needs identity SystemAssigned to "
                        "write dead-lettered events",
                    )
                )
            writer = f"{topic.symbol}.identity.principalId"
            if not any(
                "ba92f5b4-2d11-453d-a403-e96b0029c9fe" in guids and who == writer and pfile is topic.file
                for _, guids, _, (pfile, who) in self.assignments()
            ):
                findings.append(
                    Finding(
                        "event grid",
                        f"system topic {topic.symbol}'s identity has no Storage Blob Data Contributor on the "
                        "dead-letter container: add a role assignment with principalId "
                        f"{writer} in infra/{topic.file.name}",
                    )
                )
        return findings
