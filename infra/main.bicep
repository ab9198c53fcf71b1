// The retraining Function App on Azure, for `azd up`: what to fill in, and what the code reads.
//
// This file holds the parameters and the lists that must match the code; resources.bicep holds the
// resources. `make test` (tests/infra) compares these lists with retraining/settings.py APP_SETTINGS
// and pipelines.json and names, for anything missing or extra, the line to add or remove here.
// Managed identity everywhere: no account keys, no connection strings with keys.
targetScope = 'subscription'

// ---- Environment (azd fills these in) -------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; part of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person running azd (azd sets AZURE_PRINCIPAL_ID); gets data access to upload training data and to manage the Key Vault secrets. Empty: none.')
param principalId string = ''

@description('Resource group to create or reuse; empty: rg-<environmentName>.')
param resourceGroupName string = ''

// ---- The app's own settings (retraining/settings.py APP_SETTINGS) ---------------------------------

@description('NCRONTAB schedule of the retrain timer, six fields, seconds first (RETRAIN_SCHEDULE).')
param retrainSchedule string = '0 0 3 * * 0'

@description('Durable task hub name (TASK_HUB_NAME): a letter, then letters and digits, 3 to 45 characters (Azure Storage provider\'s rule; tests/infra checks the pattern); also the Durable Task Scheduler task hub when that provider is on.')
@minLength(3)
@maxLength(45)
param taskHubName string = 'retrain'

@description('Pipeline definitions file, relative to the app root (RETRAIN_PIPELINES_FILE).')
param pipelinesFile string = 'pipelines.json'

@description('Container for run records (RETRAIN_RUN_RECORDS_CONTAINER).')
param runRecordsContainer string = 'runrecords'

@description('Extra SAS lifetime beyond a job timeout, minutes (RETRAIN_SAS_MINUTES_MARGIN).')
param sasMinutesMargin int = 15

@description('Per-request timeout towards the ML services, seconds (RETRAIN_HTTP_TIMEOUT_SECONDS).')
param httpTimeoutSeconds int = 30

@description('Finished orchestration history kept in the task hub, days; run records are kept (RETRAIN_HISTORY_RETENTION_DAYS).')
@minValue(1)
param historyRetentionDays int = 30

@description('How long an update waits to see the new model served, seconds (RETRAIN_UPDATE_WAIT_SECONDS).')
param updateWaitSeconds int = 300

@description('App Service authentication (Easy Auth) is configured in front of the app (RETRAIN_EASY_AUTH): only then is the x-ms-client-principal-name header trusted to say who decided. This template does not configure it.')
param easyAuthInFront bool = false

// ---- What pipelines.json reads: one param per %NAME% it refers to ---------------------------------

@description('pipelines.json %TRAINING_ML_ENDPOINT%: the training web service\'s BES jobs URL.')
param trainingMlEndpoint string

@description('pipelines.json %SCORING_UPDATE_RESOURCE_ENDPOINT%: the classic scoring endpoint\'s Update Resource URL.')
param scoringUpdateResourceEndpoint string

@description('pipelines.json %ARM_WEB_SERVICE_URL%: the ARM web service URL, with its api-version.')
param armWebServiceUrl string

@description('pipelines.json %ARM_TENANT%: tenant of the ARM target\'s service principal.')
param armTenant string

@description('pipelines.json %ARM_SERVICE_PRINCIPAL_ID%: client id of the ARM target\'s service principal.')
param armServicePrincipalId string

@description('pipelines.json %AZURE_AUTHORITY_HOST%: Microsoft Entra authority of this cloud.')
param azureAuthorityHost string = environment().authentication.loginEndpoint

@description('pipelines.json %AZURE_RESOURCE_MANAGER_ENDPOINT%: Azure Resource Manager of this cloud, where the Azure ML workspace is managed.')
param azureResourceManagerEndpoint string = environment().resourceManager

@description('pipelines.json %AML_TENANT%: tenant of the identity that signs in to Azure ML.')
param amlTenant string = tenant().tenantId

// ---- Secrets pipelines.json names (apiKeySetting, servicePrincipalKeySetting, clientSecretSetting) --
// Each becomes a Key Vault secret and its app setting a Key Vault reference. Empty: the secret is not
// written (set it in the vault yourself); the reference is set either way, so provisioning again
// without the value never removes a secret.

@secure()
@description('pipelines.json training.apiKeySetting TRAINING_API_KEY: the training web service\'s API key.')
param trainingApiKey string = ''

@secure()
@description('pipelines.json targets[].apiKeySetting SCORING_API_KEY: the classic scoring endpoint\'s API key.')
param scoringApiKey string = ''

@secure()
@description('pipelines.json targets[].servicePrincipalKeySetting ARM_SERVICE_PRINCIPAL_KEY: the service principal\'s secret.')
param armServicePrincipalKey string = ''

@secure()
@description('pipelines.json workspace.credential.clientSecretSetting AML_CLIENT_SECRET: optional; a service principal\'s secret for Azure ML (with amlClientId). Empty: the app\'s identity signs in.')
param amlClientSecret string = ''

// ---- Azure ML pipelines -----------------------------------------------------------------------------

@description('pipelines.json %AML_WORKSPACE_ID%: resource id of the Azure ML workspace the Azure ML pipelines use; the app\'s identity gets a least-privilege custom role on it (aml-access.bicep) and Storage Blob Data Reader on its storage account. Empty: the Azure ML pipelines are unavailable (the app says so), the others run.')
param amlWorkspaceId string = ''

@description('pipelines.json %AML_CLIENT_ID%: client id of a service principal whose secret is amlClientSecret. Empty: the app\'s user-assigned identity\'s client id (set in resources.bicep).')
param amlClientId string = ''

@description('Assign the built-in AzureML Data Scientist role on the workspace instead of the least-privilege custom role (which needs permission to create role definitions). The built-in role also lets the app read the workspace storage\'s account key (datastores/listsecrets).')
param amlUseBuiltInRole bool = false

@description('Principal id of the identity Azure ML jobs read training data with (the compute cluster\'s managed identity); gets Storage Blob Data Reader on the training storage account. Empty: none (grant it yourself).')
param amlComputePrincipalId string = ''

// ---- Durable Functions storage provider --------------------------------------------------------------

@description('Put the task hub on the Durable Task Scheduler instead of Azure Storage (host.json stays as is; app settings override its storage provider).')
param useDurableTaskScheduler bool = false

@allowed(['Consumption', 'Dedicated'])
@description('Durable Task Scheduler SKU, when useDurableTaskScheduler is on (Dedicated: one capacity unit).')
param durableTaskSchedulerSku string = 'Consumption'

// ---- Key Vault ----------------------------------------------------------------------------------------

@allowed(['default', 'recover'])
@description('Key Vault createMode. `azd down` without --purge leaves the vault soft-deleted for 7 days under its name, and `azd up` then fails to create it: set recover (KEY_VAULT_CREATE_MODE=recover) for that one `azd up` to take the deleted vault back with its secrets, or purge it (az keyvault purge --name kv-<token>). recover fails when no deleted vault exists.')
param keyVaultCreateMode string = 'default'

// ---- Flex Consumption scale --------------------------------------------------------------------------

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
@description('Memory of each instance, MB.')
param instanceMemoryMB int = 2048

// ==== What the code reads ============================================================================

// The settings retraining/settings.py APP_SETTINGS lists (local_only ones stay local; TrainingStorage,
// a connection string, is replaced by its identity form in resources.bicep).
var appSettings = {
  TASK_HUB_NAME: taskHubName
  RETRAIN_SCHEDULE: retrainSchedule
  RETRAIN_PIPELINES_FILE: pipelinesFile
  RETRAIN_RUN_RECORDS_CONTAINER: runRecordsContainer
  RETRAIN_SAS_MINUTES_MARGIN: string(sasMinutesMargin)
  RETRAIN_HTTP_TIMEOUT_SECONDS: string(httpTimeoutSeconds)
  RETRAIN_UPDATE_WAIT_SECONDS: string(updateWaitSeconds)
  RETRAIN_HISTORY_RETENTION_DAYS: string(historyRetentionDays)
  RETRAIN_EASY_AUTH: easyAuthInFront ? 'true' : 'false'
  // RETRAIN_PAGE_URL is set in resources.bicep from the site's defaultHostName (known once the site exists).
}

// Every %NAME% pipelines.json refers to.
var pipelineSettings = {
  TRAINING_ML_ENDPOINT: trainingMlEndpoint
  SCORING_UPDATE_RESOURCE_ENDPOINT: scoringUpdateResourceEndpoint
  ARM_WEB_SERVICE_URL: armWebServiceUrl
  ARM_TENANT: armTenant
  ARM_SERVICE_PRINCIPAL_ID: armServicePrincipalId
  AZURE_AUTHORITY_HOST: azureAuthorityHost
  AML_WORKSPACE_ID: amlWorkspaceId // empty: the pipeline is set aside as unavailable, naming this setting
  AZURE_RESOURCE_MANAGER_ENDPOINT: azureResourceManagerEndpoint
  AML_TENANT: amlTenant
  // AML_CLIENT_ID is set in resources.bicep: by default it is the app identity's client id.
}

// Every secret pipelines.json names: app setting -> value (a @secure() param).
var secrets = {
  TRAINING_API_KEY: trainingApiKey
  SCORING_API_KEY: scoringApiKey
  ARM_SERVICE_PRINCIPAL_KEY: armServicePrincipalKey
  AML_CLIENT_SECRET: amlClientSecret // optional: without it the app's identity signs in to Azure ML
}

// Every container the code names in the training storage account: each pipeline's data.container and
// output.container, and the run records container.
var trainingContainers = [
  'labeledexamples' // weekly-retrain data.container
  'trainingoutput' // weekly-retrain output.container
  'mldata' // aml-retrain data.container (Azure ML jobs write to the workspace's datastore: no output container)
  runRecordsContainer // RETRAIN_RUN_RECORDS_CONTAINER
]

// ==== Resources ======================================================================================

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'retrain-resources'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    appSettings: appSettings
    pipelineSettings: pipelineSettings
    secrets: secrets
    trainingContainers: trainingContainers
    amlClientId: amlClientId
    amlComputePrincipalId: amlComputePrincipalId
    taskHubName: taskHubName
    useDurableTaskScheduler: useDurableTaskScheduler
    durableTaskSchedulerSku: durableTaskSchedulerSku
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    keyVaultCreateMode: keyVaultCreateMode
  }
}

// The workspace's subscription, resource group and name. ARM resolves a module's scope even when its
// condition is false, so without a workspace they name this deployment's resource group instead.
var amlWorkspace = split(empty(amlWorkspaceId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${rg.name}/providers/Microsoft.MachineLearningServices/workspaces/none' : amlWorkspaceId, '/')

// Azure ML workspace access, in the workspace's own subscription and resource group.
module amlAccess 'aml-access.bicep' = if (!empty(amlWorkspaceId)) {
  name: 'retrain-aml-access'
  scope: resourceGroup(amlWorkspace[2], amlWorkspace[4])
  params: {
    workspaceName: amlWorkspace[8]
    principalId: resources.outputs.appIdentityPrincipalId
    useBuiltInRole: amlUseBuiltInRole
  }
}

// azd keeps these in the environment (.azure/<env>/.env); infra/hooks/postdeploy uses them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output TRAINING_STORAGE_ACCOUNT string = resources.outputs.trainingStorageAccountName
output KEY_VAULT_NAME string = resources.outputs.keyVaultName
output EVENT_GRID_SYSTEM_TOPIC string = resources.outputs.eventGridSystemTopicName
output EVENT_GRID_DEAD_LETTER_CONTAINER string = resources.outputs.deadLetterContainerName
output DURABLE_TASK_SCHEDULER_ENDPOINT string = resources.outputs.durableTaskSchedulerEndpoint
output AML_WORKSPACE_ID string = amlWorkspaceId
