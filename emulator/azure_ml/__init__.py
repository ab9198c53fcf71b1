"""A local stand-in for Azure Machine Learning (v2) over its ARM REST API (modelled on api-version 2024-04-01).

Spec: shared/reference/aml-v2-contracts.md. Routes live under the TLS base that stands in for
https://management.azure.com: `{base}/subscriptions/{s}/resourceGroups/{rg}/providers/
Microsoft.MachineLearningServices/workspaces/{ws}/...?api-version=…`, any version the service
accepts for the resource type (`api_versions`). Modules: `arm` (what ARM checks first: api-version,
token audience, tenant, role), `jobs` + `runner` + `trainer` (command jobs that really train),
`models` (registry), `codes` (code assets), `endpoints` + `deployments` + `lro` (online and batch
endpoints, long-running operations), `scoring` (data planes), `tracking` (MLflow, discovery),
`history` (run details and logs), `events` (Event Grid), `workspaces` (read-only workspace
resources), `admin` (seeding, settings, listings).

Microsoft's SDK (`azure.ai.ml.MLClient`, tested with 1.35.2 in tests/emulator/test_mlclient.py)
works unchanged when pointed at the emulator as a custom cloud (`cloud_metadata` with
`resource_manager` = `managementEndpoint`, `active_directory` = `authorityHost`; TLS trusting the
emulator's CA, e.g. `REQUESTS_CA_BUNDLE`): workspaces, datastores, jobs (create without local code,
get, list, stream, cancel), models (from a job output), online endpoints and deployments (no-code
MLflow deployments, traffic, keys, invoke, logs) and batch endpoints (list, get). What the SDK does
that the emulator does not serve, and why:
- Uploading local files (a job's or deployment's local `code`, a local model or data `path`): the SDK
  builds the blob URL itself as `https://{accountName}.blob.{storage_endpoint}` from the datastore and
  the cloud's storage suffix (`_artifacts/_artifact_utilities.py`). Azurite is addressed path-style
  (`http://127.0.0.1:10000/{account}`), which that template cannot express, and the datastores are
  identity-based (`credentialsType: None`), so the SDK would present its Entra token, which Azurite
  does not take. Refer to files already in storage instead (azureml:// URIs, code assets by ARM id).
- Registries (`registry_name=`, `azureml://registries/...` models) and registry discovery: not
  modelled (environments from registries are accepted as ids, never resolved).
- Creating or changing workspaces, computes, environments and datastores: they are read-only,
  defined by the emulator's config.
- Job kinds other than command jobs (pipelines, sweeps, AutoML, Spark), Kubernetes deployments, and
  `online_endpoints.invoke` against AADToken endpoints (no `ml.azure.com` data-plane audience).
- Studio (`services.Studio` links to https://ml.azure.com) and Application Insights.

`GET /_emulator/services` lists each workspace under `azureMl.workspaces[]`:

    {"name", "subscriptionId", "resourceGroup", "location", "resourceId" (ARM id),
     "managementEndpoint" (TLS base; resource URL = managementEndpoint + resourceId + path),
     "apiVersion", "tenant", "servicePrincipalId", "servicePrincipalKey", "authorityHost",
     "computeId", "environmentId", "mlFlowTrackingUri",
     "datastores": [{"name", "default", "accountUrl", "container"}],
     "onlineEndpoints": [{"name", "scoringUri", "authMode"}],
     "batchEndpoints": [{"name", "scoringUri"}]}

`GET /_emulator/state` shows under `azureMl`: per workspace its jobs (status, error, output URIs,
metrics), model versions, online endpoints (traffic as PUT and as routed, mirror traffic, and per
deployment its state, the model version it serves with its content id, requests, errors, mirrored
copies), batch endpoints and Event Grid subscribers; plus counters (events_published, _delivered,
_retried, _lost, _duplicated, _delayed, _dead_lettered, scoring_requests, mirrored_requests, ...)
and the current settings.

Fault kinds (`POST /_emulator/faults`): `call` with `target` = workspace name and `op` one of
`read`, `jobs.read|write|cancel|delete`, `models.read`, `models.versions.read|write|delete`,
`onlineEndpoints.read|write|delete|listkeys|regenerateKeys|token`, `batchEndpoints.*`,
`onlineEndpoints.deployments.read|write|delete|getLogs`, `batchEndpoints.deployments.*`,
`operations.read`, `mlflow.read`, `score`, `batch.invoke` (globs allowed; `status: 429` sends
`Retry-After`, `retry_after_s` sets it; `drop: true` breaks the connection); `aml_job`
(`resources.JobFault`), `aml_deployment` (`resources.DeploymentFault`), `aml_events`
(`resources.EventFault`), and `token` (short-lived tokens, `emulator.aad`).

Choices where the contracts say INFER or UNDOC, or say nothing:
- Jobs: a new name is 201 and starts the job; a known name with the same create-only fields is
  200 (description, displayName, tags (replaced), properties (merged), isArchived applied), else
  400 UserError / JobPropertyImmutable with MessageParameters {property}. A round-tripped GET body
  counts as unchanged (read-only fields and service-filled output URIs are ignored).
- Only `jobType: Command` is accepted; `environmentId` must be the workspace's environment version
  (or an azureml://registries/ URI), `computeId` (nullable) its compute. `${{inputs.x}}` and
  `${{outputs.x}}` must name declared inputs/outputs. Unknown body fields are ignored.
- The command is not executed; the built-in trainer runs instead (see `trainer`). Training data:
  the first uri_file input, else the first CSV/TSV/ARFF under the first uri_folder input.
- Status path NotStarted -> Starting -> Preparing -> Queued -> Running -> Finalizing -> Completed;
  Failed from Running or Finalizing; CancelRequested -> Canceled. Cancel of an ended job is 200
  with nothing changed. DELETE of a job cancels it and forgets it (202, Location answers 204).
- Output URIs left null are filled when the job completes: `azureml://datastores/{default}/paths/
  azureml/{job}/{output}/` (a uri_file output: that folder + `metrics.json`). Outputs the trainer
  does not write are reported but hold nothing. A failed or canceled job reports no filled URIs.
- The ARM job carries no error; a failed job's `{code, message}` is at run history's
  `…/runs/{job}/details` (`tracking`), as the SDK reads it.
- Models: PUT auto-creates the container; properties are add-only (existing keys keep their value);
  `jobName` must name a job of the workspace; `stage` defaults to Development; files are not
  checked until a deployment loads them. `$orderBy` supports `createdtime desc|asc` only.
- Endpoints: the update of an endpoint is 200 with `Azure-AsyncOperation` as well (the spec shows
  the header on 201 only). Traffic violations, a location other than the workspace's, and a name
  taken in the region (online and batch share host names) are 400 UserError; traffic to a
  deployment still provisioning is 409. PATCH with anything but tags/identity is 400.
  listKeys/regenerateKeys on a non-Key endpoint, and token on a non-AMLToken one, are 400.
  Endpoint and deployment names are matched without case; batch endpoints accept AADToken only.
- Deployments: a model reference to an unknown version is 400 (registries are not supported);
  missing or corrupt model files make provisioning Failed (code from storage, e.g. ModelNotFound)
  rather than the PUT a 4xx. Deleting a deployment with live or mirror traffic, or a batch
  endpoint's default, is 400. A deployment being updated keeps serving its old model until the
  update succeeds; a failed update keeps it too.
- LRO: operation ids look like `{kind}:{guid}:{guid}`; the Location poll of a failed operation
  answers 400 with its error. `Retry-After` is `retry_after_s` (default 1, not the spec's 10-600,
  so tests do not wait) on 202s, on PUTs with Azure-AsyncOperation and on status polls in progress
  (see `lro`); `x-ms-async-operation-timeout` is PT1H.
- Scoring: request and response shapes are the emulator's (see `scoring`): the service defines
  neither (they are score.py's). Unknown deployment in the header: 404; one that serves nothing
  yet: 503. Batch invocation with no default and no header: 400 with the "No valid deployments to
  route to" text (online: 404, as third-party reports show).
- AMLToken tokens are the emulator's own JWTs (audience bound to the endpoint), expiring in 1 h,
  refresh after 30 min; `expiryTimeUtc`/`refreshAfterTimeUtc` are epoch seconds.
- RBAC: only the workspace's own service principal holds a role; other principals of the tenant
  get 403 AuthorizationFailed, tokens of another tenant 401 InvalidAuthenticationTokenTenant.
- Event Grid: runStatus is lower case, as in the docs example; RunStatusChanged is sent for every
  transition including Failed and Canceled (an `aml_events` drop fault with `run_status: failed`
  gives the "no event on failure" behaviour the how-to describes); ModelDeployed is sent when a
  managed deployment succeeds (data: ServiceName = endpoint, ServiceComputeType Managed, ModelIds
  "name:version"); dataVersion "" and metadataVersion "1", as in the docs example.
- Run history: `…/runs/{job}/details` has `logFiles` with one log the emulator writes,
  `user_logs/std_log.txt` (a summary; the job's command is not run), readable through its `sig`.
- Code assets: versions record `codeUri` (not checked); a job's `codeId` is not checked either.
- MLflow: run id = job name; metrics appear once training is done; no metric history beyond one
  point per key.
"""
