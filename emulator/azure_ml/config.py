"""Azure ML configuration: workspaces, the storage accounts they may use, and every duration.

A config file's `azure_ml` object has the shape of `AzureMlConfig` (snake_case field names, lists
for tuples). Storage connection strings usually come from `--storage-connection-string` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

API_VERSION = "2024-04-01"


@dataclass(frozen=True)
class DatastoreConfig:
    """A blob datastore: a container in one of the configured storage accounts."""

    name: str
    container: str
    default: bool = False
    account: str | None = None  # storage account name; None: the first configured account


@dataclass(frozen=True)
class OnlineEndpointConfig:
    name: str
    auth_mode: str = "Key"


@dataclass(frozen=True)
class WorkspaceConfig:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    tenant: str
    client_id: str  # the service principal with Contributor on the workspace
    client_secret: str
    compute: str = "cpu-cluster"
    environment: str = "sklearn-env"
    environment_version: str = "1"
    datastores: tuple[DatastoreConfig, ...] = (
        DatastoreConfig("workspaceblobstore", "azureml-blobstore", default=True),
    )
    online_endpoints: tuple[OnlineEndpointConfig, ...] = ()
    batch_endpoints: tuple[str, ...] = ()
    event_webhooks: tuple[str, ...] = ()  # Event Grid subscribers from the start (all event types)

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )

    @property
    def default_datastore(self) -> DatastoreConfig:
        return next((d for d in self.datastores if d.default), self.datastores[0])


@dataclass(frozen=True)
class Timings:
    """Every duration the service would take, in seconds; small by default so tests run fast."""

    job_step_s: float = 0.02  # each of Starting, Preparing, Queued, Finalizing
    job_running_s: float = 0.1  # least time a job spends Running (training may take longer)
    cancel_s: float = 0.05  # CancelRequested -> Canceled
    lro_s: float = 0.1  # endpoint/deployment Creating/Updating/Scaling -> Succeeded/Failed
    delete_s: float = 0.05  # Deleting -> gone
    busy_after_s: float = 0.0  # resource stays non-terminal this long after its operation Succeeded
    event_delay_s: float = 0.0  # before each Event Grid delivery
    event_retry_s: float = 0.1  # first retry back-off; it doubles per attempt
    retry_after_s: int = 1  # Retry-After on 202s (the service sends 10-600)


@dataclass(frozen=True)
class AzureMlConfig:
    workspaces: tuple[WorkspaceConfig, ...] = ()
    storage_connection_strings: tuple[str, ...] = ()
    timings: Timings = field(default_factory=Timings)
    routing_seed: int | None = None  # None: routing and mirroring draw from an unseeded generator
    page_size: int = 100  # items per page of a list before nextLink
    event_max_attempts: int = 5


def default_azure_ml() -> AzureMlConfig:
    """One workspace, `retrain-ws`, with an online and a batch endpoint that have no deployments yet."""
    return AzureMlConfig(
        workspaces=(
            WorkspaceConfig(
                subscription_id="00000000-0000-0000-0000-000000000000",
                resource_group="retrain-rg",
                name="retrain-ws",
                location="eastus",
                tenant="mycompany.com",
                client_id="6b1f3c2e-7a44-4d0b-9c1e-5a8f2d3b4c61",
                client_secret="amlEmu8Q~lr3tZ0wYkN5vX2pHs7cJ4dF9gB6mA1eRq",
                online_endpoints=(OnlineEndpointConfig("retrain-online", "Key"),),
                batch_endpoints=("retrain-batch",),
            ),
        )
    )
