"""Studio (classic) web services: BES, RRS, classic management, ARM webServices.

It mirrors, on the wire, the Batch Execution Service (BES, api-version 2.0), the Request-Response
Service (RRS), classic endpoint management with "Update Resource" (PATCH) and Azure Resource Manager
`Microsoft.MachineLearning/webServices`. Tokens for ARM come from `emulator.aad`.

Choices where the contracts are inferred or undocumented (see shared/reference/studio-classic-contracts.md):
- Submit returns 200 with the job id as a JSON string; start returns 200 with no body.
- StatusCode is sent as the string name; Results is null until Finished.
- A start beyond 40 running jobs per endpoint waits in a FIFO queue (status NotStarted); a start
  beyond `max_queued_jobs_per_endpoint` gets 503 ServiceUnavailable/RequestThrottled.
- DELETE of a running or queued job makes it Cancelled (still queryable); DELETE of an ended job
  forgets it (a later GET is 404 JobNotFound).
- Output overrides are required for every output: the emulator has no storage account of its own.
- Results mint a fresh 24-hour read SAS on every GET when the output was given by ConnectionString;
  outputs given by SAS echo the caller's SAS (the service would hold no key to mint another).
- Classic Update Resource (PATCH) downloads and validates the model at once (a bad SAS or a corrupt
  model is a 400), answers 200 with no body, and swaps the model in after `update_delay_seconds`;
  a GET of the endpoint then shows the new resource location.
- ARM PATCH/PUT take the trained-model asset's `locationInfo.uri` plus, for a private blob, a SAS in
  `locationInfo.credentials`; `provisioningState` goes Provisioning -> Succeeded (or Failed). GET
  never returns keys or credentials; keys come from GET .../listKeys.
- Oversized bodies get 413 MemoryQuotaViolation; malformed JSON gets 400 BadArgument/RequestBodyInvalid.
- RRS responses carry `x-ms-emulator-model-version`, the served model's id, so callers can see which
  model serves.
"""

from fastapi import APIRouter

from . import admin, arm, bes, management
from .context import StudioContext

__all__ = ["StudioContext", "build_router"]


def build_router(ctx: StudioContext) -> APIRouter:
    """Every Studio (classic) route, admin seeding included."""
    router = APIRouter()
    for module in (bes, management, arm, admin):
        router.include_router(module.build_router(ctx))
    return router
