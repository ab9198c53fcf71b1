"""The api-versions the service accepts, per resource type: the one list the emulator checks against.

Source: `specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/
MachineLearningServices/readme.md` of Azure/azure-rest-api-specs (read at commit 1d1c10b1), whose
`### Tag:` sections name each version's input files. A resource type is served by a version when that
version's files define it:

- the workspace itself and its computes are in `machineLearningServices.json` (later `workspaceRP.json`,
  then the single `openapi.json`): every stable and preview tag since 2018;
- the v2 resources (jobs, models, codes, environments, datastores, online and batch endpoints and their
  deployments, and the `locations/…/mfeOperationsStatus|mfeOperationResults` polls) are in `mfe.json`
  (later `openapi.json`): the tags from 2021-03-01-preview on, except 2022-01-01-preview, which has no
  `mfe.json`.

Every accepted version is served the same shape, the emulator's model of 2024-04-01: the fields the
later versions add (e.g. `assetName` on job outputs, `startupProbe` on deployments) are accepted and
ignored, and none of the fields the emulator returns was removed in a later version. An unknown version
answers ARM's 400 InvalidApiVersionParameter, as the service does.
"""

from __future__ import annotations

# Versions whose spec files define the v2 (mfe) resource types.
MFE_API_VERSIONS: tuple[str, ...] = (
    "2021-03-01-preview",
    "2022-02-01-preview",
    "2022-05-01",
    "2022-06-01-preview",
    "2022-10-01",
    "2022-10-01-preview",
    "2022-12-01-preview",
    "2023-02-01-preview",
    "2023-04-01",
    "2023-04-01-preview",
    "2023-06-01-preview",
    "2023-08-01-preview",
    "2023-10-01",
    "2024-01-01-preview",
    "2024-04-01",
    "2024-04-01-preview",
    "2024-07-01-preview",
    "2024-10-01",
    "2024-10-01-preview",
    "2025-01-01-preview",
    "2025-04-01",
    "2025-04-01-preview",
    "2025-06-01",
    "2025-07-01-preview",
    "2025-09-01",
    "2025-10-01-preview",
    "2025-12-01",
    "2026-01-15-preview",
    "2026-03-01",
    "2026-03-15-preview",
    "2026-05-01",
    "2026-05-15-preview",
    "2026-07-01",
    "2026-07-15-preview",
)

# Versions that define only the workspace resource provider (workspaces, computes): the older tags.
_WORKSPACE_ONLY: tuple[str, ...] = (
    "2018-03-01-preview",
    "2018-11-19",
    "2019-05-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2020-02-18-preview",
    "2020-03-01",
    "2020-04-01",
    "2020-04-01-preview",
    "2020-05-01-preview",
    "2020-05-15-preview",
    "2020-06-01",
    "2020-08-01",
    "2020-09-01-preview",
    "2021-01-01",
    "2021-04-01",
    "2021-07-01",
    "2022-01-01-preview",
)

WORKSPACE_API_VERSIONS: tuple[str, ...] = tuple(sorted(_WORKSPACE_ONLY + MFE_API_VERSIONS))

# Path segments (after `workspaces/{name}`) that the workspace resource provider's files define.
_WORKSPACE_TYPES = frozenset({"", "computes"})


def resource_type(path: str) -> str:
    """The resource type a Microsoft.MachineLearningServices path addresses, as `versions_for` reads it:
    "" for a workspace, else the first segment after it (`jobs`, `onlineEndpoints`, ...), or
    `locations` for the operation polls."""
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "workspaces" in lowered:
        i = lowered.index("workspaces")
        return parts[i + 2] if len(parts) > i + 2 else ""
    return "locations"


def versions_for(kind: str) -> tuple[str, ...]:
    """The api-versions the service accepts for a resource type (see `resource_type`)."""
    return WORKSPACE_API_VERSIONS if kind in _WORKSPACE_TYPES else MFE_API_VERSIONS
