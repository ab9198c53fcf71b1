// The app's identity on the storage account of its Azure ML workspace: aml-access.bicep passes the
// workspace's properties.storageAccount, and this deploys the role assignment in that account's own
// subscription and resource group (a parameter is known when this deployment starts; the workspace's
// property was not when aml-access.bicep's started).
targetScope = 'resourceGroup'

@description('Resource id of the workspace\'s storage account, from the workspace\'s properties.storageAccount.')
param storageAccountId string
@description('Principal id of the app\'s user-assigned identity.')
param principalId string

// /subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}
var storageAccount = split(storageAccountId, '/')

module workspaceStorageRole 'aml-storage-role.bicep' = {
  name: 'retrain-aml-storage-role'
  scope: resourceGroup(storageAccount[2], storageAccount[4])
  params: {
    storageAccountId: storageAccountId
    principalId: principalId
  }
}
