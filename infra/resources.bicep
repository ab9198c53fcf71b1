// The resources of the retraining Function App, in one resource group. main.bicep passes the lists of
// what the code reads (settings, secrets, containers); this file turns them into resources.
// Every role assignment below names the code call that needs it; tests/infra checks each is here.

param location string
param tags object
param resourceToken string
@description('Object id of the person running azd; empty: no role for them.')
param principalId string

@description('The app\'s own settings (retraining/settings.py APP_SETTINGS), from main.bicep.')
param appSettings object
@description('The settings pipelines.json refers to as %NAME%, from main.bicep.')
param pipelineSettings object
@secure()
@description('The secrets pipelines.json names: app setting -> value (empty: not written to the vault).')
param secrets object
@description('The containers the code names in the training storage account, from main.bicep.')
param trainingContainers array
@description('AML_CLIENT_ID: a service principal\'s client id for Azure ML; empty: the app identity\'s.')
param amlClientId string
@description('The identity Azure ML jobs read training data with; empty: no role for it.')
param amlComputePrincipalId string

param taskHubName string
param useDurableTaskScheduler bool
param durableTaskSchedulerSku string
param maximumInstanceCount int
param instanceMemoryMB int
@description('Key Vault createMode (main.bicep keyVaultCreateMode): recover takes back a soft-deleted vault of the same name.')
param keyVaultCreateMode string

// Event Grid writes events it could not deliver within their time to live here (events.bicep).
var deadLetterContainerName = 'eventgrid-deadletter'

var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package'

// Built-in role definitions (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
}

// ---- Identity: one user-assigned identity for everything the app calls -------------------------------

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

// ---- Host storage: AzureWebJobsStorage (host, task hub on the Azure Storage provider) and the package --

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet in this template: the Flex Consumption app (no VNet integration) and the ML services reaching blobs through SAS come over public endpoints; access needs Entra ID (shared keys are off)
  // checkov:skip=CKV_AZURE_43: the name is 'st' plus a letter plus uniqueString(), 16 lowercase letters and digits; checkov cannot evaluate the interpolation
  // checkov:skip=CKV_AZURE_206: holds only the task hub (in-flight runs) and the deployment package: a redeploy recreates them and the next trigger starts a fresh run, so geo-replication would add cost and protect nothing durable
  name: 'sth${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }

  resource blobService 'blobServices' = {
    name: 'default'

    // Flex Consumption's deployment package (functionAppConfig.deployment below).
    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }
  }
}

// ---- Training storage: data, models and run records (TrainingStorage__blobServiceUri) ------------------

resource trainingStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet in this template: the Flex Consumption app (no VNet integration) and the ML services reaching blobs through SAS come over public endpoints; access needs Entra ID (shared keys are off)
  // checkov:skip=CKV_AZURE_43: the name is 'st' plus a letter plus uniqueString(), 16 lowercase letters and digits; checkov cannot evaluate the interpolation
  name: 'stt${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' } // training data, every model and every run record: geo-replicated
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: { enabled: true, days: 7 }
      containerDeleteRetentionPolicy: { enabled: true, days: 7 }
    }
  }
}

// Dead-lettered blob events (events.bicep deadLetterWithResourceIdentity), written by the system topic's identity.
resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: trainingStorage::blobService
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

// Every container the code names (main.bicep trainingContainers).
resource trainingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in trainingContainers: {
  parent: trainingStorage::blobService
  name: name
  properties: { publicAccess: 'None' }
}]

// ---- Monitoring: Application Insights with Microsoft Entra authentication only ------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// ---- Key Vault: the secrets pipelines.json names -------------------------------------------------------

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: App Service resolves Key Vault references from outside any VNet here (no VNet integration); access needs Entra ID and RBAC
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109
  // checkov:skip=CKV_AZURE_110: purge protection would keep the name for the retention days after `azd down --purge`, so the same environment could not be created again; the secrets are copies of keys the ML services can reissue
  // checkov:skip=CKV_AZURE_42: soft delete is on (7 days); the check also requires purge protection, see CKV_AZURE_110
  // Soft delete: `azd down` without --purge keeps this name for 7 days, and creating it again fails; main.bicep
  // keyVaultCreateMode=recover (KEY_VAULT_CREATE_MODE) takes the deleted vault back, or purge it (README).
  name: 'kv-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    createMode: keyVaultCreateMode
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

// A secret per app setting; its name is the setting's, lower case with dashes. Empty values are skipped.
resource secretValues 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in items(secrets): if (!empty(secret.value)) {
  // checkov:skip=CKV_AZURE_41: the ML services decide when their keys expire; an expiry here would break every run at that date without the key having changed
  parent: keyVault
  name: toLower(replace(secret.key, '_', '-'))
  properties: {
    value: secret.value
    contentType: 'text/plain'
  }
}]

// ---- Durable Task Scheduler (when useDurableTaskScheduler) ---------------------------------------------

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = if (useDurableTaskScheduler) {
  name: 'dts-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: durableTaskSchedulerSku == 'Dedicated' ? { name: 'Dedicated', capacity: 1 } : { name: 'Consumption' }
    ipAllowlist: ['0.0.0.0/0'] // required; an empty list denies everyone. Access still needs the data role below.
  }

  resource taskHub 'taskHubs' = {
    name: taskHubName
  }
}

// ---- The Function App: Flex Consumption, Python 3.11 ---------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is offered in some regions only; a scheduled batch workload resumes from the task hub after a zone outage
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the HTTP starters (function keys) and Event Grid's delivery to training_data_arrived need the public endpoint
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys (HTTP) or Event Grid's own key; neither presents a client certificate
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero between runs by design; Durable resumes orchestrations from the task hub on any new instance
  // checkov:skip=CKV_AZURE_213: a health check needs instances that keep running; this app scales to zero between runs and the platform replaces failed instances
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${appIdentity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: appIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Every app setting but RETRAIN_PAGE_URL (pageUrlSetting below); this file is the source of truth
      // (settings set by hand are removed).
      appSettings: concat(hostSettings, useDurableTaskScheduler ? durableTaskSchedulerSettings : [], identitySettings, codeSettings, definitionSettings, secretReferences)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// ---- App settings ---------------------------------------------------------------------------------------

// Read by the Functions host, not by the app (tests/infra allow-lists them, with reasons).
var hostSettings = [
  { name: 'AzureWebJobsStorage__blobServiceUri', value: hostStorage.properties.primaryEndpoints.blob }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: hostStorage.properties.primaryEndpoints.queue }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: hostStorage.properties.primaryEndpoints.table }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: appIdentity.properties.clientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${appIdentity.properties.clientId};Authorization=AAD' }
]

// host.json keeps the Azure Storage provider; these override it when the scheduler is on.
var durableTaskSchedulerSettings = [
  { name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type', value: 'azureManaged' }
  { name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName', value: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING' }
  {
    name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    value: 'Endpoint=${useDurableTaskScheduler ? scheduler.properties.endpoint : ''};Authentication=ManagedIdentity;ClientID=${appIdentity.properties.clientId}'
  }
]

// The identity form of TrainingStorage (retraining/storage.py: DefaultAzureCredential with this client id),
// and pipelines.json %AML_CLIENT_ID%: retraining/services/azure_ml/workspace.py credential_of signs in as
// the user-assigned identity with this client id while AML_CLIENT_SECRET holds no secret.
var identitySettings = [
  { name: 'TrainingStorage__blobServiceUri', value: trainingStorage.properties.primaryEndpoints.blob }
  { name: 'TrainingStorage__clientId', value: appIdentity.properties.clientId }
  { name: 'AML_CLIENT_ID', value: empty(amlClientId) ? appIdentity.properties.clientId : amlClientId }
]

// main.bicep's lists, as the name/value pairs siteConfig.appSettings takes.
var codeSettings = [for setting in items(appSettings): { name: setting.key, value: setting.value }]
var definitionSettings = [for setting in items(pipelineSettings): { name: setting.key, value: setting.value }]

// Each secret's setting is a Key Vault reference, resolved with keyVaultReferenceIdentity.
var secretReferences = [for secret in items(secrets): {
  name: secret.key
  value: '@Microsoft.KeyVault(VaultName=${keyVault.name};SecretName=${toLower(replace(secret.key, '_', '-'))})'
}]

// RETRAIN_PAGE_URL, the status page for links in notifications: the site's own defaultHostName (right in
// sovereign clouds and with unique default host names), known only once the site exists. It is merged into
// the settings the site was created with, read back with list(): a config/appsettings PUT replaces them all.
resource pageUrlSetting 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  // checkov:skip=CKV_AZURE_63: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  // checkov:skip=CKV_AZURE_65: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  // checkov:skip=CKV_AZURE_66: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  // checkov:skip=CKV_AZURE_80: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  // checkov:skip=CKV_AZURE_88: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  // checkov:skip=CKV_AZURE_222: checkov reads this appsettings child as a whole site config; the site's own settings are on functionApp above
  parent: functionApp
  name: 'appsettings'
  properties: union(list('${functionApp.id}/config/appsettings', '2024-04-01').properties, {
    RETRAIN_PAGE_URL: 'https://${functionApp.properties.defaultHostName}/api/status'
  })
}

// ---- Role assignments: each names the call that needs it ----------------------------------------------

// Functions host on AzureWebJobsStorage: host keys and locks, the timer's schedule monitor
// (triggers/schedule.py use_monitor=True), Durable's blobs and leases, and reading the Flex
// Consumption deployment package. The host needs Owner, not Contributor, on blobs.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appIdentity.id, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Durable Functions, Azure Storage provider: the task hub's control and work-item queues.
resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appIdentity.id, roles.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Durable Functions, Azure Storage provider: the task hub's History and Instances tables.
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appIdentity.id, roles.storageTableDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// retraining/storage.py TrainingStorage: get_blob_properties, download_blob and upload_blob on data,
// models and run records, create_container (ensure_container), and get_user_delegation_key, which
// signs the SAS tokens handed to the ML services (the role includes generateUserDelegationKey).
resource trainingBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(trainingStorage.id, appIdentity.id, roles.storageBlobDataContributor)
  scope: trainingStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// App Service resolving the @Microsoft.KeyVault(...) settings that Settings.secret() reads.
resource keyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, appIdentity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The Functions host sending telemetry with APPLICATIONINSIGHTS_AUTHENTICATION_STRING (local auth is off).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appIdentity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Durable Functions, Durable Task Scheduler provider (azureManaged): orchestrations and activities on
// the task hub, through DURABLE_TASK_SCHEDULER_CONNECTION_STRING. Scoped to the one task hub.
resource taskHubContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useDurableTaskScheduler) {
  name: guid(scheduler::taskHub.id, appIdentity.id, roles.durableTaskDataContributor)
  scope: scheduler::taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The person running azd: upload training data (az storage blob upload --auth-mode login), manage the
// vault's secrets (az keyvault secret set), and see the scheduler's dashboard.
resource userTrainingData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(trainingStorage.id, principalId, roles.storageBlobDataContributor)
  scope: trainingStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
  }
}

resource userSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
  }
}

resource userTaskHub 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useDurableTaskScheduler && !empty(principalId)) {
  name: guid(scheduler::taskHub.id, principalId, roles.durableTaskDataContributor)
  scope: scheduler::taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: principalId
  }
}

// Azure ML jobs: the training data goes in as a uri_file input, the blob's URL without a SAS
// (retraining/services/azure_ml/training.py), which the job reads with the compute's identity.
resource amlComputeTrainingData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(amlComputePrincipalId)) {
  name: guid(trainingStorage.id, amlComputePrincipalId, roles.storageBlobDataReader)
  scope: trainingStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: amlComputePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Event Grid: BlobCreated on the training account. The subscriptions to training_data_arrived
// need the function to exist, so infra/hooks/postdeploy deploys events.bicep after the code.

resource trainingEvents 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${resourceToken}'
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' } // writes dead-lettered events (shared keys are off)
  properties: {
    source: trainingStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Event Grid dead-lettering (events.bicep deadLetterWithResourceIdentity): the system topic's identity writes
// undeliverable BlobCreated events to the dead-letter container, and only there.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, trainingEvents.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: trainingEvents.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output functionAppName string = functionApp.name
output appIdentityPrincipalId string = appIdentity.properties.principalId
output trainingStorageAccountName string = trainingStorage.name
output keyVaultName string = keyVault.name
output eventGridSystemTopicName string = trainingEvents.name
output deadLetterContainerName string = deadLetterContainer.name
output durableTaskSchedulerEndpoint string = useDurableTaskScheduler ? scheduler.properties.endpoint : ''
