// Storage Blob Data Reader for the app's identity on its Azure ML workspace's storage account, deployed
// by aml-storage-access.bicep in that account's resource group.
targetScope = 'resourceGroup'

@description('Resource id of the workspace\'s storage account; it is in this resource group.')
param storageAccountId string
@description('Principal id of the app\'s user-assigned identity.')
param principalId string

var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource workspaceStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: last(split(storageAccountId, '/'))
}

// retraining/services/azure_ml/training.py collect: the job's model folder (TrainingStorage.list, then
// .digest of each file) and metrics.json (.read_small), read from the workspace's default datastore with
// the credential the pipeline signs in to Azure ML with (credential_of). Reading is all it does there.
resource workspaceStorageReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspaceStorage.id, principalId, storageBlobDataReader)
  scope: workspaceStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
