#!/usr/bin/env pwsh
# azd postdeploy hook (Windows; infra/hooks/postdeploy.sh is the same for posix): subscribe
# training_data_arrived to new training data and, with an Azure ML workspace, aml_job_event to its jobs'
# ends (infra/events.bicep); remove the subscriptions of pipelines no longer in events.bicep; then name any
# Key Vault secret the app's settings refer to that is not in the vault yet.
#
# Event Grid checks that the function exists when a subscription is created (Azure/bicep#11656), so this
# runs after the code is deployed, waits until the functions are listed, and retries the deployment. It
# needs the Azure CLI, signed in to the same tenant (az login). Run it again on its own with:
# azd hooks run postdeploy
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
  Write-Error "postdeploy: the Azure CLI (az) is needed to create the Event Grid subscriptions: install it, az login, then: azd hooks run postdeploy"
  exit 1
}

# azd passes its environment's values to hooks; read them from azd as well, for older azd versions.
if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
  foreach ($line in (azd env get-values)) {
    if ($line -match '^(AZURE_SUBSCRIPTION_ID|AZURE_RESOURCE_GROUP|AZURE_FUNCTION_APP_NAME|EVENT_GRID_SYSTEM_TOPIC|EVENT_GRID_DEAD_LETTER_CONTAINER|TRAINING_STORAGE_ACCOUNT|KEY_VAULT_NAME|AML_WORKSPACE_ID)="?(.*?)"?$') {
      Set-Item -Path "env:$($Matches[1])" -Value $Matches[2]
    }
  }
}
$subscription = $env:AZURE_SUBSCRIPTION_ID
$group = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_APP_NAME
$topic = $env:EVENT_GRID_SYSTEM_TOPIC
$workspace = if ($env:AML_WORKSPACE_ID) { $env:AML_WORKSPACE_ID } else { '' }

# The functions the subscriptions deliver to: listed once the host has synced its triggers after deploy.
$functions = @('training_data_arrived')
if ($workspace) { $functions += 'aml_job_event' }
foreach ($function in $functions) {
  $tries = 0
  while ($true) {
    az functionapp function show --subscription $subscription --resource-group $group --name $app --function-name $function --query name --output none 2>$null
    if ($LASTEXITCODE -eq 0) { break }
    $tries++
    if ($tries -ge 20) {
      Write-Error "postdeploy: function $function is not listed on $app after 10 minutes: check the deployment, then: azd hooks run postdeploy"
      exit 1
    }
    Write-Host "postdeploy: waiting for function $function to be listed ($tries/20)"
    Start-Sleep -Seconds 30
  }
}

# Event Grid validates the function endpoint when it creates the subscription; a just-synced app can still
# refuse it, so the deployment is retried (it is idempotent).
for ($attempt = 1; ; $attempt++) {
  az deployment group create `
    --subscription $subscription `
    --resource-group $group `
    --name retrain-events `
    --template-file infra/events.bicep `
    --parameters functionAppName=$app systemTopicName=$topic `
      trainingStorageAccountName=$env:TRAINING_STORAGE_ACCOUNT deadLetterContainerName=$env:EVENT_GRID_DEAD_LETTER_CONTAINER `
      amlWorkspaceId=$workspace `
    --output none
  if ($LASTEXITCODE -eq 0) { break }
  if ($attempt -ge 5) {
    Write-Error "postdeploy: the Event Grid subscriptions failed 5 times: see the error above, then: azd hooks run postdeploy"
    exit 1
  }
  Write-Warning "postdeploy: Event Grid refused the subscriptions (attempt $attempt/5); retrying in $($attempt * 30) s"
  Start-Sleep -Seconds ($attempt * 30)
}
Write-Host "postdeploy: Event Grid delivers BlobCreated events to training_data_arrived (infra/events.bicep)"
if ($workspace) {
  Write-Host "postdeploy: Event Grid delivers the Azure ML workspace's job events to aml_job_event (infra/aml-events.bicep)"
}

# A pipeline removed from events.bicep leaves its subscription behind (an incremental deployment removes
# nothing): delete each training-data-* subscription the deployment no longer declares.
$keep = @(az deployment group show --subscription $subscription --resource-group $group --name retrain-events `
    --query "properties.outputs.trainingDataSubscriptions.value" --output tsv)
$existing = @(az eventgrid system-topic event-subscription list --subscription $subscription --resource-group $group `
    --system-topic-name $topic --query "[?starts_with(name, 'training-data-')].name" --output tsv)
foreach ($name in $existing) {
  if (-not $name -or $keep -contains $name) { continue }
  az eventgrid system-topic event-subscription delete --subscription $subscription --resource-group $group `
    --system-topic-name $topic --name $name --yes --output none
  Write-Host "postdeploy: removed Event Grid subscription $name (its pipeline is no longer in infra/events.bicep)"
}

# A secret left empty at provisioning is not written; its setting still refers to it. Say which, except
# the optional ones: without AML_CLIENT_SECRET the app signs in to Azure ML with its own identity.
$optional = @('aml-client-secret')
$missing = @()
$references = @(az functionapp config appsettings list --subscription $subscription --resource-group $group --name $app `
    --query "[?starts_with(value, '@Microsoft.KeyVault(')].value" --output tsv)
foreach ($reference in $references) {
  if ($reference -notmatch 'SecretName=([A-Za-z0-9-]+)') { continue }
  $name = $Matches[1]
  if ($optional -contains $name) { continue }
  az keyvault secret show --vault-name $env:KEY_VAULT_NAME --name $name --query id --output none 2>$null
  if ($LASTEXITCODE -ne 0) { $missing += $name }
}
if ($missing.Count -gt 0) {
  Write-Warning "postdeploy: not in Key Vault $($env:KEY_VAULT_NAME) yet (runs that need them fail until set): $($missing -join ' ')"
  Write-Warning "postdeploy: set each with: az keyvault secret set --vault-name $($env:KEY_VAULT_NAME) --name <name> --value <secret>"
}
