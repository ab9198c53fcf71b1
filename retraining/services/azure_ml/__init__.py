"""Azure Machine Learning (v2), the successor of Studio (classic): REST on `requests` + azure-identity.

    workspace   the ARM client: one credential per process, pooled sessions, ARM errors, long-running operations
    training    `aml-command`: a command job per run, its outputs in a datastore folder of the run
    registry    model versions with lineage in tags and properties; the champion tag
    endpoints   what online and batch targets share: deployments of a version, one operation at a time, rollback
    online      `aml-online`: blue/green, smoke test, optional mirror, canary traffic steps with health checks
    batch       `aml-batch`: a new deployment, then the endpoint's default switched to it
    probe       scoring requests for smoke tests and health checks
    events      Event Grid job events from the workspace, for the monitor's early wake-up

The azure-ai-ml SDK is not used: 63 packages and a 3-5 s import would cost every cold start.
"""

from .batch import BatchEndpointTarget
from .online import OnlineEndpointTarget
from .training import AmlCommandJobs

__all__ = ["AmlCommandJobs", "BatchEndpointTarget", "OnlineEndpointTarget"]
